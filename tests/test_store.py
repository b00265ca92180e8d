"""The backup store contract (``dbsync.store.BackupStore``), one suite run against both backends.

The semantics come from the docstrings of ``dbsync/store.py``: put_stream is all or nothing and
measures what it wrote; read_stream returns exactly the bytes; list is complete and filters by
prefix; head is None for a missing object; delete is idempotent; every failure is a
``StoreError`` with a sentence an operator can act on (and never a secret). The S3 backend runs
against moto's standalone server (``tests/fix_s3.py``) with authentication on, 5 MiB multipart
parts (``DBSYNC_S3_PART_SIZE``) and listings paginated every few keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dbsync.errors import ConfigError, StoreError
from dbsync.store import BackupStore, ObjectInfo, Written, open_store
from tests.fix_s3 import LIST_PAGE_SIZE, STORE_PREFIX, S3Server, free_port

MiB = 1024 * 1024
PART_SIZE = 5 * MiB  # moto's (and AWS's) smallest part but the last
WRONG_SECRET = "Wrong-Secret-Qz9xK7pLm2"


class Boom(Exception):
    """What the chunk iterator raises to simulate a failing dump."""


@dataclass
class Backend:
    kind: str
    url: str
    store: BackupStore
    root: Path | None = None  # file
    s3: S3Server | None = None  # s3
    bucket: str | None = None  # s3


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "file":
        root = tmp_path / "store"
        root.mkdir()
        url = f"file://{root}"
        return Backend("file", url, open_store(url), root=root)
    url = request.getfixturevalue("s3_store_url")
    monkeypatch.setenv("DBSYNC_S3_PART_SIZE", str(PART_SIZE))
    server: S3Server = request.getfixturevalue("s3_server")
    return Backend("s3", url, open_store(url), s3=server, bucket=urlsplit(url).netloc)


@pytest.fixture
def store(backend: Backend) -> BackupStore:
    return backend.store


# -- helpers ---------------------------------------------------------------------------------


def read_all(store: BackupStore, key: str) -> bytes:
    chunks = list(store.read_stream(key))
    assert all(isinstance(c, bytes) for c in chunks), "read_stream must yield bytes"
    return b"".join(chunks)


def listing(store: BackupStore, prefix: str = "") -> dict[str, int]:
    infos = store.list(prefix)
    assert isinstance(infos, list) and all(isinstance(i, ObjectInfo) for i in infos)
    keys = [i.key for i in infos]
    assert len(keys) == len(set(keys)), f"list({prefix!r}) repeats keys: {keys}"
    return {i.key: i.size for i in infos}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A one-shot generator, as a dump pipe would give (no len(), no second pass)."""
    yield from chunks


def failing(chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield from chunks
    raise Boom("the dump died")


def store_error(action: Callable[[], object]) -> StoreError:
    """Run ``action``; it must raise StoreError (any other exception fails the test)."""
    with pytest.raises(StoreError) as info:
        action()
    return info.value


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        for secret in secrets:
            assert secret not in text, f"the error message reveals a secret: {text!r}"


# -- the fixture itself ----------------------------------------------------------------------


def test_moto_server_is_real(s3_server: S3Server) -> None:
    from botocore.exceptions import ClientError

    assert s3_server.proc is not None and s3_server.proc.poll() is None
    assert s3_server.proc.pid != os.getpid()
    assert s3_server.endpoint == f"http://127.0.0.1:{s3_server.port}"
    client = s3_server.client()
    bucket = s3_server.new_bucket()
    assert bucket != s3_server.new_bucket()
    client.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello moto")
    assert client.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello moto"
    # Authentication is enforced: another secret is refused.
    with pytest.raises(ClientError) as info:
        s3_server.client(secret_key=WRONG_SECRET).list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # Listings are paginated every LIST_PAGE_SIZE keys.
    for i in range(LIST_PAGE_SIZE + 1):
        client.put_object(Bucket=bucket, Key=f"page/{i}", Body=b"")
    page = client.list_objects_v2(Bucket=bucket, Prefix="page/")
    assert page["IsTruncated"] and page["KeyCount"] == LIST_PAGE_SIZE
    env = s3_server.env()
    assert env == {
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "DBSYNC_S3_ENDPOINT": s3_server.endpoint,
    }


# -- writing and reading ---------------------------------------------------------------------


def test_put_many_chunks_then_read_head_list(store: BackupStore) -> None:
    chunks = [os.urandom(n) for n in (1, 1000, 0, 65536, 3, MiB + 7, 10)]
    data = b"".join(chunks)
    before = datetime.now(UTC)

    written = store.put_stream("dump.bin", generate(chunks))

    assert written == Written(key="dump.bin", size=len(data), sha256=sha256(data))
    assert read_all(store, "dump.bin") == data
    info = store.head("dump.bin")
    assert info is not None and info.key == "dump.bin" and info.size == len(data)
    assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None, (
        f"modified must be timezone-aware to compare across backends, got {info.modified!r}"
    )
    assert before - timedelta(minutes=5) <= info.modified <= datetime.now(UTC) + timedelta(minutes=5)
    assert listing(store) == {"dump.bin": len(data)}


def test_put_multipart(backend: Backend) -> None:
    """12 MiB in 1 MiB chunks: more than two 5 MiB parts on S3."""
    store = backend.store
    chunks = [os.urandom(MiB) for _ in range(12)]
    data = b"".join(chunks)

    written = store.put_stream("big/dump.bin", generate(chunks))

    assert written == Written(key="big/dump.bin", size=12 * MiB, sha256=sha256(data))
    assert read_all(store, "big/dump.bin") == data
    head = store.head("big/dump.bin")
    assert head is not None and head.size == 12 * MiB
    assert listing(store, "big/") == {"big/dump.bin": 12 * MiB}
    if backend.s3 is not None:  # the bytes really went up in parts
        etag = backend.s3.client().head_object(Bucket=backend.bucket, Key=f"{STORE_PREFIX}/big/dump.bin")["ETag"]
        parts = int(etag.strip('"').partition("-")[2] or "1")
        assert parts >= 3, f"expected a multipart upload of >= 3 parts at DBSYNC_S3_PART_SIZE={PART_SIZE}, ETag {etag}"


def test_zero_byte_object(store: BackupStore) -> None:
    written = store.put_stream("empty.bin", generate([]))
    assert written == Written(key="empty.bin", size=0, sha256=sha256(b""))
    assert read_all(store, "empty.bin") == b""
    head = store.head("empty.bin")
    assert head is not None and head.size == 0
    assert listing(store) == {"empty.bin": 0}


def test_overwrite_replaces(store: BackupStore) -> None:
    store.put_stream("k.bin", [b"first version, longer"])
    written = store.put_stream("k.bin", [b"second"])
    assert written == Written("k.bin", 6, sha256(b"second"))
    assert read_all(store, "k.bin") == b"second"
    head = store.head("k.bin")
    assert head is not None and head.size == 6
    assert listing(store) == {"k.bin": 6}


def test_nested_keys_and_prefix_listing(store: BackupStore) -> None:
    objects = {"a/b/c.bin": b"abc", "a/d.bin": b"dddd", "ab.bin": b"x", "b/e.bin": b"eeeeeeee"}
    for key, data in objects.items():
        assert store.put_stream(key, [data]) == Written(key, len(data), sha256(data))

    assert listing(store) == {k: len(v) for k, v in objects.items()}
    assert listing(store, "a/") == {"a/b/c.bin": 3, "a/d.bin": 4}
    assert listing(store, "a/b/") == {"a/b/c.bin": 3}
    assert listing(store, "b/") == {"b/e.bin": 8}
    for key, data in objects.items():
        assert read_all(store, key) == data
        head = store.head(key)
        assert head is not None and head.key == key and head.size == len(data)
    # A "folder" is not an object.
    assert store.head("a") is None
    assert store.head("a/b") is None
    store_error(lambda: read_all(store, "a/b"))


def test_list_is_complete_across_pages(store: BackupStore) -> None:
    count = 3 * LIST_PAGE_SIZE + 1
    for i in range(count):
        store.put_stream(f"many/{i:03d}.bin", [b"x" * i])
    assert listing(store, "many/") == {f"many/{i:03d}.bin": i for i in range(count)}


def test_list_empty_and_nonexistent_prefix(store: BackupStore) -> None:
    assert store.list() == []
    assert store.list("nothing/here/") == []
    store.put_stream("a/x.bin", [b"x"])
    assert store.list("b/") == []
    assert store.list("a/x.bin/") == []


# -- all or nothing ---------------------------------------------------------------------------

FAILURES = {
    "at-once": [],
    "after-small-chunks": [b"partial ", b"dump"],
    "after-a-part": [os.urandom(MiB) for _ in range(7)],  # one 5 MiB part already up on S3
}


@pytest.mark.parametrize("sent", FAILURES.values(), ids=FAILURES.keys())
def test_failed_stream_leaves_no_object(store: BackupStore, sent: list[bytes]) -> None:
    store.put_stream("keep.bin", [b"neighbour"])

    with pytest.raises((Boom, StoreError)):
        store.put_stream("new/dump.bin", failing(sent))

    assert store.head("new/dump.bin") is None
    store_error(lambda: read_all(store, "new/dump.bin"))
    assert listing(store) == {"keep.bin": 9}, "a failed upload (or its temporary file) is visible"
    assert store.list("new/") == []
    assert read_all(store, "keep.bin") == b"neighbour"


@pytest.mark.parametrize("sent", FAILURES.values(), ids=FAILURES.keys())
def test_failed_stream_keeps_old_object(store: BackupStore, sent: list[bytes]) -> None:
    old = b"the good backup of yesterday"
    store.put_stream("dump.bin", [old])

    with pytest.raises((Boom, StoreError)):
        store.put_stream("dump.bin", failing(sent))

    assert read_all(store, "dump.bin") == old
    head = store.head("dump.bin")
    assert head is not None and head.size == len(old)
    assert listing(store) == {"dump.bin": len(old)}


def test_object_invisible_while_being_written(store: BackupStore) -> None:
    """A reader sees the old object or nothing until put_stream returns, never a part."""
    old = b"old"
    store.put_stream("old.bin", [old])
    seen: list[tuple[str, ObjectInfo | None, dict[str, int], bytes]] = []

    def watched(key: str) -> Iterator[bytes]:
        for _ in range(7):  # 7 MiB: on S3 one part is already up before the last look
            yield os.urandom(MiB)
            seen.append((key, store.head(key), listing(store), read_all(store, "old.bin")))

    store.put_stream("new.bin", watched("new.bin"))
    store.put_stream("old.bin", watched("old.bin"))

    assert len(seen) == 14
    for key, head, objects, old_bytes in seen:
        if key == "new.bin":
            assert head is None and objects == {"old.bin": len(old)}, (key, head, objects)
        else:
            assert head is not None and head.size == len(old), (key, head)
            assert objects == {"old.bin": len(old), "new.bin": 7 * MiB}, (key, objects)
        assert old_bytes == old, key
    assert listing(store) == {"old.bin": 7 * MiB, "new.bin": 7 * MiB}


def test_store_usable_after_failed_stream(store: BackupStore) -> None:
    with pytest.raises((Boom, StoreError)):
        store.put_stream("dump.bin", failing([b"half"]))
    assert store.put_stream("dump.bin", [b"whole"]) == Written("dump.bin", 5, sha256(b"whole"))
    assert read_all(store, "dump.bin") == b"whole"


def test_s3_failed_stream_aborts_its_multipart_upload(
    s3_server: S3Server, s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the docstring: an abandoned multipart upload is invisible but billed."""
    monkeypatch.setenv("DBSYNC_S3_PART_SIZE", str(PART_SIZE))
    store = open_store(s3_store_url)
    with pytest.raises((Boom, StoreError)):
        store.put_stream("dump.bin", failing(FAILURES["after-a-part"]))
    bucket = urlsplit(s3_store_url).netloc
    uploads = s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == []


# -- delete and missing keys ------------------------------------------------------------------


def test_delete(store: BackupStore) -> None:
    store.put_stream("x/doomed.bin", [b"bye"])
    store.put_stream("x/kept.bin", [b"stay"])

    store.delete("x/doomed.bin")

    assert store.head("x/doomed.bin") is None
    assert listing(store) == {"x/kept.bin": 4}
    store_error(lambda: read_all(store, "x/doomed.bin"))
    store.delete("x/doomed.bin")  # again: not an error
    store.delete("never/existed.bin")
    assert read_all(store, "x/kept.bin") == b"stay"


def test_read_missing_key_names_it(store: BackupStore) -> None:
    exc = store_error(lambda: read_all(store, "missing/dump-2024.bin"))
    assert "missing/dump-2024.bin" in str(exc)


def test_head_missing_key_is_none(store: BackupStore) -> None:
    assert store.head("missing.bin") is None
    assert store.head("deep/missing.bin") is None


# -- S3: layout and configuration -------------------------------------------------------------


def test_s3_keys_are_relative_to_the_prefix(s3_server: S3Server, s3_store_url: str) -> None:
    bucket = urlsplit(s3_store_url).netloc
    store = open_store(s3_store_url)
    assert s3_server.secret_key not in store.url
    store.put_stream("a/b/c.bin", [b"abc"])
    client = s3_server.client()
    raw = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in raw] == [f"{STORE_PREFIX}/a/b/c.bin"]
    client.put_object(Bucket=bucket, Key=f"{STORE_PREFIX}/direct.bin", Body=b"12345")
    client.put_object(Bucket=bucket, Key="elsewhere/outside.bin", Body=b"no")
    assert listing(store) == {"a/b/c.bin": 3, "direct.bin": 5}
    assert read_all(store, "direct.bin") == b"12345"
    other = open_store(s3_server.store_url(bucket, prefix="other"))
    assert other.list() == []
    assert other.head("a/b/c.bin") is None


def test_s3_endpoint_from_environment(
    s3_server: S3Server, s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = urlsplit(s3_store_url).netloc
    monkeypatch.setenv("DBSYNC_S3_ENDPOINT", s3_server.endpoint)
    store = open_store(f"s3://{bucket}/{STORE_PREFIX}?region={s3_server.region}")
    store.put_stream("env.bin", [b"via env"])
    assert read_all(store, "env.bin") == b"via env"


def test_s3_spaces_credentials(s3_server: S3Server, s3_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("SPACES_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", s3_server.secret_key)
    store = open_store(s3_store_url)
    store.put_stream("spaces.bin", [b"via spaces"])
    assert read_all(store, "spaces.bin") == b"via spaces"


# -- S3: errors an operator can act on --------------------------------------------------------


@pytest.mark.parametrize("wrong", ["secret", "key-id"])
def test_s3_wrong_credentials(
    s3_server: S3Server, s3_store_url: str, monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    if wrong == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    actions: dict[str, Callable[[], object]] = {
        "list": lambda: open_store(s3_store_url).list(),
        "put_stream": lambda: open_store(s3_store_url).put_stream("k.bin", [b"data"]),
        "read_stream": lambda: read_all(open_store(s3_store_url), "k.bin"),
    }
    for name, action in actions.items():
        exc = store_error(action)
        assert "credential" in str(exc).lower(), f"{name}: {exc}"
        assert_no_secret(exc, WRONG_SECRET, s3_server.secret_key)
    # head must not mistake "refused" for "missing"
    exc = store_error(lambda: open_store(s3_store_url).head("k.bin"))
    assert_no_secret(exc, WRONG_SECRET, s3_server.secret_key)
    assert s3_server.client().list_objects_v2(Bucket=urlsplit(s3_store_url).netloc).get("KeyCount") == 0


def test_s3_missing_bucket(s3_server: S3Server, s3_store_url: str) -> None:
    bucket = "dbsync-no-such-bucket"
    url = s3_server.store_url(bucket)
    for name, action in {
        "list": lambda: open_store(url).list(),
        "put_stream": lambda: open_store(url).put_stream("k.bin", [b"data"]),
    }.items():
        exc = store_error(action)
        assert bucket in str(exc), f"{name}: {exc}"
        assert_no_secret(exc, s3_server.secret_key)


@pytest.mark.slow  # the backend retries before giving up: about 13 s per operation
def test_s3_unreachable_endpoint(s3_server: S3Server, s3_store_url: str) -> None:
    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    url = s3_server.store_url(urlsplit(s3_store_url).netloc, endpoint=endpoint)
    for name, action in {
        "list": lambda: open_store(url).list(),
        "put_stream": lambda: open_store(url).put_stream("k.bin", [b"data"]),
        "head": lambda: open_store(url).head("k.bin"),
    }.items():
        started = time.monotonic()
        exc = store_error(action)
        message = str(exc)
        assert f"127.0.0.1:{port}" in message or "unreachable" in message.lower(), f"{name}: {message}"
        assert_no_secret(exc, s3_server.secret_key)
        assert time.monotonic() - started < 60, f"{name} took minutes to give up"


# -- file: errors -----------------------------------------------------------------------------


def test_file_root_is_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-folder"
    plain.write_bytes(b"precious")
    url = f"file://{plain}"

    exc = store_error(lambda: open_store(url).put_stream("k.bin", [b"data"]))

    assert str(plain) in str(exc), str(exc)
    assert plain.read_bytes() == b"precious"
    # The other operations fail (or answer) the same way: a StoreError, never an OSError.
    for action in (
        lambda: open_store(url).list(),
        lambda: open_store(url).head("k.bin"),
        lambda: open_store(url).delete("k.bin"),
    ):
        with contextlib.suppress(StoreError):
            action()
    store_error(lambda: read_all(open_store(url), "k.bin"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_file_root_unwritable(tmp_path: Path) -> None:
    root = tmp_path / "readonly"
    root.mkdir()
    url = f"file://{root}"
    root.chmod(0o500)
    try:
        exc = store_error(lambda: open_store(url).put_stream("k.bin", [b"data"]))
        assert str(root) in str(exc), str(exc)
        assert list(root.iterdir()) == []
    finally:
        root.chmod(0o700)


# -- open_store --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://x", "file://host/x", "file:relative", "s3:///nobucket"])
def test_open_store_rejects(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert url in str(info.value)
