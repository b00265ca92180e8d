"""Backups: a verified ``pg_dump -Fc`` streamed into a store, a manifest written last, retention.

Layout in a store: ``<series>/<stamp>-<run id>/dump.pgdump.zst`` (an uncompressed pg_dump
archive in one zstd frame, see :mod:`dbsync.compression`; ``dump.pgdump``, pg_dump's own zlib,
with ``--compress 0``-``9`` and in backups taken before zstd) and, next to it, ``manifest.json``.
A backup exists only once its manifest exists; the manifest is written after the dump has been
uploaded, read back and re-hashed (the whole object, streamed: an S3 ETag is no content hash
for multipart uploads, and a size check alone misses corruption). Retention counts complete
backups only, orders them by the manifest's ``created_at`` (never by key name), and deletes a
backup's data before its manifest so an interrupted prune can simply run again.

Every backup restores with plain PostgreSQL tools and zstd, no dbsync needed::

    zstd -dc dump.pgdump.zst | pg_restore --clean --if-exists --single-transaction -d "$TARGET_URL"
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import faults
from .background import Background
from .compression import DEFAULT, ZSTD, Compression, compress, decompress
from .connect import tool_could_not_connect
from .errors import BackupInvalid, DbsyncError, RolledBack, StoreError
from .pgtools import Tool, split_secret
from .redact import redact_output
from .store import CHUNK, BackupStore, ObjectInfo, Written

if TYPE_CHECKING:
    from .connect import Endpoint

DUMP = "dump.pgdump"
MANIFEST = "manifest.json"
INCOMPLETE_GRACE = timedelta(days=1)


class BackupFailed(RolledBack):
    """Taking the backup failed; nothing was changed."""

    kind = "backup_failed"


@dataclass
class Manifest:
    series: str
    run_id: str
    created_at: str
    kind: str  # the target before a run: "pre-sync", "pre-restore", "pre-backups-restore"; or
    # "production" (a restore's source)
    database: dict[str, Any]
    server_version: str
    pg_dump: str
    format: str
    dump_key: str
    size: int
    sha256: str
    tables: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, Any] | None = None  # production backups: what a restore must reproduce
    format_version: int = 1
    # "zstd": the stored object is pg_dump's archive in a zstd frame; None: the archive itself.
    compression: str | None = None
    content_sha256: str | None = None  # the archive's sha256 inside the frame (zstd only)

    @property
    def archive_sha256(self) -> str:
        """The sha256 of the pg_dump archive pg_restore reads (``sha256`` is the stored
        object's): the same for an uncompressed object, ``content_sha256`` inside a frame."""
        if self.compression is None:
            return self.sha256
        if not self.content_sha256:
            raise BackupInvalid(
                f"the manifest of {self.dump_key} says it is {self.compression}-compressed but "
                "holds no content_sha256, so what it unpacks to cannot be checked"
            )
        return self.content_sha256

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


@dataclass
class Backup:
    """One backup folder of a series, complete (with a manifest) or not."""

    series: str
    folder: str  # "<series>/<stamp>-<run id>"
    objects: list[ObjectInfo]
    manifest: Manifest | None = None

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def modified(self) -> datetime:
        return max(o.modified for o in self.objects)

    @property
    def run_id(self) -> str:
        return self.manifest.run_id if self.manifest else self.folder.rsplit("-", 1)[-1]


def _created(backup: Backup) -> datetime:
    assert backup.manifest is not None
    return backup.manifest.created


#: The kind (and series suffix) of the backup ``backups restore`` takes of its target.
PRE_BACKUPS_RESTORE = "pre-backups-restore"


def series_name(text: str) -> str:
    """A series name safe in object keys."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not name:
        raise ValueError("empty series name")
    return name[:120]


def default_series(target: Endpoint, kind: str, *, port: str | None = None) -> str:
    """A series named after the database it backs up: ``<dbname>-<host>-<kind>`` (with
    ``port``, ``<dbname>-<host>-<port>-<kind>``: see :func:`series_for`)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(target.conninfo)
    host = str(params.get("host") or "local").split(",")[0]
    if port is not None:
        host += f"-{port}"
    # Cut the name, not the kind, to length: a long name and host must not make two kinds of
    # backup (pre-sync, pre-backups-restore) share a series and its retention.
    stem = series_name(f"{params.get('dbname') or 'db'}-{host}")[: 119 - len(kind)].rstrip("-.")
    return f"{stem}-{kind}"


@dataclass(frozen=True)
class Owner:
    """The database a run backs up, as its backups' manifests name it: the cluster's system
    identifier and the database's name. No URL spelling, host, port, service file or PG*
    variable changes them, and two clusters never share an identifier unless one was copied
    from the other. A manifest written without the identifier is matched by its name and
    its URL's ``host:port/dbname`` instead."""

    system_identifier: str | None  # None: the role may not read pg_control_system()
    dbname: str
    description: str

    def owns(self, manifest: Manifest) -> bool:
        database = manifest.database
        if str(database.get("dbname", self.dbname)) != self.dbname:
            return False
        if database.get("system_identifier") is not None and self.system_identifier is not None:
            return str(database["system_identifier"]) == self.system_identifier
        return _place(str(database.get("description", ""))) == _place(self.description)


def _place(description: str) -> str:
    """``host:port/dbname`` of an endpoint's description (``user@host:port/dbname``): one
    database may be reached as different roles."""
    return description.rsplit("@", 1)[-1]


def _others_in(store: BackupStore, series: str, owner: Owner) -> list[str]:
    """Where the other databases whose backups ``series`` holds are, as their URLs said.
    Backups without a readable manifest say nothing about their database, and a store that
    cannot be listed now says nothing at all: retention keeps to the owner's own backups
    whatever this finds (:func:`prune`)."""
    try:
        backups = list_backups(store, series)
    except StoreError:
        return []
    return sorted(
        {
            _place(str(b.manifest.database.get("description")))
            for b in backups
            if b.manifest is not None and not owner.owns(b.manifest)
        }
    )


def series_for(
    store: BackupStore, database: Endpoint, kind: str, owner: Owner, port: str
) -> tuple[str, str | None]:
    """The series a run backs ``database`` up into when none is named, and a warning when it is
    not :func:`default_series`.

    The default name holds the database's name and host, not its port, so that it stays short
    and stable; two databases of one name on one host (two clusters, on two ports) would share
    it. Retention never deletes another database's backups (:func:`prune` keeps to the
    owner's), but ``latest`` and the listing would mix them: a database that finds its default
    series holding another database's backups uses ``<dbname>-<host>-<port>-<kind>`` instead
    (``port`` as the connection used it)."""
    series = default_series(database, kind)
    others = _others_in(store, series, owner)
    if not others:
        return series, None
    own = default_series(database, kind, port=port)
    where = (
        f"go to series {own}"
        if own != series
        else "stay there all the same (the name is cut to length); retention keeps to its own"
    )
    return own, (
        f"backup series {series} holds backups of another database of the same name on the same "
        f"host ({', '.join(others)}): {_place(owner.description)}'s backups {where}"
    )


def folder_for(series: str, run_id: str, now: datetime) -> str:
    return f"{series}/{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id}"


# -- taking a backup ----------------------------------------------------------------------------

#: How backups are compressed (see :mod:`dbsync.compression`): pg_dump writes its archive
#: uncompressed and dbsync stores it in a zstd frame, level 1. pg_dump's own zlib, even at
#: level 1, cost three times the CPU inside pg_dump's one loop, and pg_restore more to inflate
#: it; the dump runs on the droplet beside the load (the restore feeds the same bytes to
#: pg_restore), so that CPU is wall time. ``--compress`` changes it.
DEFAULT_COMPRESSION = DEFAULT


def _pg_dump_stream(
    tool: Tool,
    conninfo: str,
    snapshot: str | None,
    options: list[str],
    compression: int,
    step: str,
    lock_wait_seconds: float | None,
) -> Iterator[bytes]:
    """pg_dump's output, chunk by chunk; raises at the end if pg_dump failed, so that the store
    aborts the upload instead of completing it with a truncated dump.

    ``lock_wait_seconds`` bounds pg_dump's wait for its share locks. A run dumps a database
    whose writers it has locked out: a DDL statement queued behind that lock would make
    pg_dump's request queue behind it in turn, and the run, waiting for pg_dump, would never
    release the lock (a wait no deadlock detector sees)."""
    dsn, env = split_secret(conninfo)
    args = [tool.path, "--format=custom", f"--compress={compression}", *options, f"--dbname={dsn}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    if lock_wait_seconds is not None:
        args.append(f"--lock-wait-timeout={max(1, int(lock_wait_seconds * 1000))}ms")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        first = True
        while chunk := proc.stdout.read(CHUNK):
            yield chunk
            if first:
                faults.checkpoint(f"{step}.stream")  # a transfer that dies half-way
                first = False
        code = proc.wait()
        reader.join()
        if code != 0:
            message = redact_output(errors)
            if unreached := tool_could_not_connect("pg_dump", message, "nothing was changed"):
                raise unreached
            raise BackupFailed(f"pg_dump failed (exit {code}): {message}; nothing was changed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class ReadBack:
    """What one read of a stored dump found (see :func:`read_back`)."""

    size: int
    sha256: str
    archive_sha256: str | None  # of what a frame unpacks to; None when not compressed
    damaged: BackupInvalid | None  # the frame would not unpack

    def check_sent(self, written: Written, archive_sha256: str | None) -> None:
        """Raise BackupInvalid unless the object is the one just uploaded: its own bytes first
        (a changed object is said as such, whatever its frame makes of it), then the archive
        its frame unpacks to."""
        if (self.size, self.sha256) != (written.size, written.sha256):
            raise BackupInvalid(
                f"the uploaded backup {written.key} reads back as {self.size} bytes sha256 "
                f"{self.sha256[:12]}..., not the {written.size} bytes sha256 {written.sha256[:12]}... "
                "that were sent"
            )
        if self.damaged is not None:
            raise self.damaged
        if self.archive_sha256 != archive_sha256:
            raise BackupInvalid(
                f"the uploaded backup {written.key} unpacks to an archive with sha256 "
                f"{(self.archive_sha256 or '')[:12]}..., not the {(archive_sha256 or '')[:12]}... "
                "pg_dump wrote"
            )


def read_back(store: BackupStore, key: str, compression: str | None) -> ReadBack:
    """One read of a stored dump: its size, its sha256 and, when it is compressed, the sha256
    of the archive it unpacks to. Bytes after a frame, and after damage that stops the
    decompressor, are read and hashed too: the object's size and hash are the whole
    object's."""
    digest = hashlib.sha256()
    size = 0

    def stored() -> Iterator[bytes]:
        nonlocal size
        for chunk in store.read_stream(key):
            digest.update(chunk)
            size += len(chunk)
            yield chunk

    chunks = stored()
    archive: str | None = None
    damaged: BackupInvalid | None = None
    if compression is not None:
        inner = hashlib.sha256()
        try:
            for piece in _unwrap(compression, chunks, key):
                inner.update(piece)
            archive = inner.hexdigest()
        except BackupInvalid as exc:
            damaged = exc
    for _rest in chunks:  # the whole object (the decompressor stops at its frame's end)
        pass
    return ReadBack(size, digest.hexdigest(), archive, damaged)


@dataclass
class UnsealedBackup:
    """A dump that is in the store but not yet read back, so not yet a backup: it has no
    manifest. :meth:`seal` re-hashes it and writes the manifest. Runs seal it on a thread while
    they work, and wait for it before COMMIT (the read-back of a large dump from Spaces is as
    long as its upload, and needs no lock on the database)."""

    store: BackupStore
    written: Written
    folder: str
    manifest: Callable[[], Manifest]
    step: str
    compression: str | None = None  # "zstd": the object is a frame holding the archive
    content_sha256: str | None = None  # the archive's sha256, as pg_dump wrote it

    def seal(self) -> Manifest:
        """Read the object back: its bytes must be the ones sent and, in a frame, must unpack
        to the archive pg_dump wrote (a frame the compressor got wrong is caught now, not on
        the day the backup is needed)."""
        faults.checkpoint(f"{self.step}.check")
        found = read_back(self.store, self.written.key, self.compression)
        found.check_sent(self.written, self.content_sha256)
        manifest = self.manifest()
        self.store.put_stream(f"{self.folder}/{MANIFEST}", [manifest.to_bytes()])
        return manifest


def dump_backup(
    store: BackupStore,
    *,
    conninfo: str,
    tool: Tool,
    series: str,
    run_id: str,
    kind: str,
    database: dict[str, Any],
    server_version: str,
    tables: dict[str, int] | Callable[[], dict[str, int]],
    snapshot: str | None = None,
    dump_options: Iterable[str] = (),
    now: datetime | None = None,
    fingerprint: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    tap: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
    compression: Compression = DEFAULT_COMPRESSION,
    step: str = "backup",
    lock_wait_seconds: float | None = None,
) -> UnsealedBackup:
    """Dump and upload; :meth:`UnsealedBackup.seal` then reads the dump back, re-hashes it and
    writes the manifest. Nothing is a backup before its manifest exists, so a failure at any
    point is never mistaken for one. It returns once pg_dump has exited, so the database's
    locks and snapshot are no longer held by the dump.

    ``tap`` wraps the dump's chunk stream on its way to the store (a restore feeds the same
    bytes to pg_restore as they are uploaded; raising in it aborts the upload). It sees
    pg_dump's archive itself, before dbsync's zstd compresses it for the store. ``tables`` and
    ``fingerprint`` may be functions: they are called when the backup is sealed, so that they
    can be computed alongside the dump. ``compression``: see DEFAULT_COMPRESSION. ``step``
    names the fault checkpoints ``<step>.stream``, hit once the dump streams, and
    ``<step>.check``, before the read-back (two backups of one restore run at once).
    ``lock_wait_seconds``: see :func:`_pg_dump_stream`."""
    created = now or datetime.now(UTC)
    folder = folder_for(series, run_id, created)
    options = list(dump_options)
    stream = _pg_dump_stream(
        tool, conninfo, snapshot, options, compression.pg_dump_level, step, lock_wait_seconds
    )
    archive = hashlib.sha256()

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            archive.update(chunk)
            yield chunk

    raw = hashed(stream)
    if tap is not None:
        raw = tap(raw)
    stored = compress(raw, compression.level) if compression.wrapped else raw
    written = store.put_stream(f"{folder}/{DUMP}{compression.suffix}", stored)
    wrapping = ZSTD if compression.wrapped else None  # what the manifest records
    content = archive.hexdigest() if wrapping else None  # the stream is consumed by now
    pg_dump_format = " ".join(["pg_dump custom (-Fc)", f"--compress={compression.pg_dump_level}", *options])

    def manifest() -> Manifest:
        return Manifest(
            series=series,
            run_id=run_id,
            created_at=created.isoformat(timespec="microseconds"),
            kind=kind,
            database=database,
            server_version=server_version,
            pg_dump=f"{tool.version} ({tool.path})",
            format=pg_dump_format + (f" | zstd -{compression.level}" if compression.wrapped else ""),
            dump_key=written.key,
            size=written.size,
            sha256=written.sha256,
            tables=tables() if callable(tables) else tables,
            fingerprint=fingerprint() if callable(fingerprint) else fingerprint,
            compression=wrapping,
            content_sha256=content,
        )

    return UnsealedBackup(store, written, folder, manifest, step, wrapping, content)


# -- listing, verifying, retention ------------------------------------------------------------


def list_backups(store: BackupStore, series: str | None = None) -> list[Backup]:
    """Every backup folder (of one series, or all), with its manifest when it has one. A
    manifest that cannot be read is an error: the listing would be partial."""
    objects = store.list(f"{series}/" if series else "")
    folders: dict[str, list[ObjectInfo]] = {}
    for obj in objects:
        parts = obj.key.split("/")
        if len(parts) < 3:
            continue
        folders.setdefault("/".join(parts[:2]), []).append(obj)
    backups = []
    for folder, items in sorted(folders.items()):
        manifest = None
        if any(o.key == f"{folder}/{MANIFEST}" for o in items):
            data = b"".join(store.read_stream(f"{folder}/{MANIFEST}"))
            try:
                manifest = Manifest.from_bytes(data)
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreError(
                    f"the manifest of {folder} cannot be read ({exc}); fix or remove it"
                ) from None
        backups.append(Backup(folder.split("/")[0], folder, items, manifest))
    return backups


def find_backup(
    store: BackupStore, ref: str, series: str | None = None, *, fingerprinted: bool = False
) -> Backup:
    """A complete backup by folder, run id or ``latest`` (of ``series``). ``fingerprinted``
    keeps only backups a verified restore can use (production's, taken by ``dbsync restore``).

    ``latest`` without a series is refused when the candidates span several series: a store
    shared by several databases would otherwise hand out another database's newest backup.
    Nor does it pick the copies ``backups restore`` takes of its target (kind
    ``pre-backups-restore``): they are named by run id or series, so that undoing one restore
    does not change what ``latest`` means for the store's own runs."""
    backups = [b for b in list_backups(store, series) if b.manifest]
    if fingerprinted:
        backups = [b for b in backups if b.manifest and b.manifest.fingerprint]
    what = "complete production backup" if fingerprinted else "complete backup"
    if ref == "latest":
        if series is None:
            backups = [b for b in backups if b.manifest and b.manifest.kind != PRE_BACKUPS_RESTORE]
        if not backups:
            raise BadRef(f"no {what} in {store.url}" + (f" for series {series!r}" if series else ""))
        several = sorted({b.series for b in backups})
        if series is None and len(several) > 1:
            raise BadRef(
                f"latest is ambiguous: {store.url} holds {what}s of {len(several)} series "
                f"({', '.join(several)}); name one with --series"
            )
        return max(backups, key=_created)
    matches = [b for b in backups if ref in (b.folder, b.run_id, b.folder.split("/")[-1])]
    if not matches:
        raise BadRef(f"no {what} matches {ref!r} in {store.url}")
    if len(matches) > 1:
        raise BadRef(
            f"more than one {what} matches {ref!r} in {store.url}: "
            + ", ".join(sorted(b.folder for b in matches))
            + "; name the folder"
        )
    return matches[0]


class BadRef(StoreError):
    """The store holds no single backup that matches what the user asked for (a run id, a
    folder, ``latest`` of a series), or none at all yet (exit 14, as the store's other
    failures: what was asked of it cannot be had)."""


def read_archive(store: BackupStore, manifest: Manifest) -> Iterator[bytes]:
    """The pg_dump archive a backup holds, as pg_restore reads it: decompressed from its zstd
    frame, or the stored object itself. The caller compares the sha256 of what it read with
    :attr:`Manifest.archive_sha256` (a frame cut short is only noticed so)."""
    return _unwrap(manifest.compression, store.read_stream(manifest.dump_key), manifest.dump_key)


def _unwrap(compression: str | None, stored: Iterator[bytes], key: str) -> Iterator[bytes]:
    """The archive in ``stored``, the bytes of the dump object ``key``."""
    if compression is None:
        return stored
    if compression == ZSTD:
        return decompress(stored, key)
    raise BackupInvalid(
        f"{key} is compressed with {compression!r}, which this version of dbsync cannot read"
    )


def verify_backup(store: BackupStore, backup: Backup) -> Manifest:
    """Re-hash the dump against its manifest and, when it is a zstd frame, the archive inside
    it too, in the same read (decompressing costs about a second per 300 MB of archive, less
    than reading it from Spaces again); raises BackupInvalid when they differ."""
    if backup.manifest is None:
        raise BackupInvalid(f"{backup.folder} has no manifest: it is not a complete backup")
    m = backup.manifest
    expected = m.archive_sha256  # a zstd manifest without the archive's hash is refused now
    if store.head(m.dump_key) is None:
        raise BackupInvalid(f"{backup.folder}: the dump {m.dump_key} is missing")
    found = read_back(store, m.dump_key, m.compression)
    if (found.size, found.sha256) != (m.size, m.sha256):
        raise BackupInvalid(
            f"{backup.folder} is corrupt: the dump is {found.size} bytes with sha256 {found.sha256}, "
            f"the manifest says {m.size} bytes with sha256 {m.sha256}"
        )
    if found.damaged is not None:
        raise found.damaged
    if found.archive_sha256 is not None and found.archive_sha256 != expected:
        raise BackupInvalid(
            f"{backup.folder} is corrupt: the archive in {m.dump_key} has sha256 "
            f"{found.archive_sha256}, the manifest says {expected}"
        )
    return m


@dataclass(frozen=True)
class PrunePlan:
    keep: list[Backup]
    delete: list[Backup]  # complete backups beyond the newest N
    leftovers: list[Backup]  # incomplete folders older than the grace period


def plan_retention(
    backups: list[Backup],
    retain: int,
    now: datetime,
    protect: Iterable[str] = (),
    owner: Owner | None = None,
) -> PrunePlan:
    """Which backups of one series to delete: complete ones beyond the newest ``retain`` (by
    the manifest's time), never one in ``protect`` (run ids), never going below ``retain``;
    and incomplete leftovers older than a day. With ``owner`` (a run's own retention), only
    that database's complete backups are counted or deleted: another database's, in a series
    they share, are not the run's to prune. Pure: decides, deletes nothing."""
    if retain < 1:
        raise ValueError("retain must be at least 1")
    protected = set(protect)
    complete = sorted(
        (b for b in backups if b.manifest and (owner is None or owner.owns(b.manifest))),
        key=_created,
        reverse=True,
    )
    keep = complete[:retain] + [b for b in complete[retain:] if b.run_id in protected]
    delete = [b for b in complete[retain:] if b.run_id not in protected]
    leftovers = [
        b
        for b in backups
        if b.manifest is None and b.run_id not in protected and now - b.modified > INCOMPLETE_GRACE
    ]
    return PrunePlan(keep, delete, leftovers)


def prune(
    store: BackupStore,
    series: str,
    retain: int,
    *,
    dry_run: bool = False,
    protect: Iterable[str] = (),
    now: datetime | None = None,
    owner: Owner | None = None,
) -> PrunePlan:
    """Apply :func:`plan_retention` to one series. A failing listing raises before anything is
    deleted. Data objects go first, the manifest last."""
    plan = plan_retention(list_backups(store, series), retain, now or datetime.now(UTC), protect, owner)
    if not dry_run:
        for backup in [*plan.delete, *plan.leftovers]:
            manifest_key = f"{backup.folder}/{MANIFEST}"
            for obj in sorted(backup.objects, key=lambda o: o.key == manifest_key):
                store.delete(obj.key)
    return plan


class Sealing:
    """An :class:`UnsealedBackup` sealed on a thread while a run works, and the run's report
    entry for it: filled from the dump on, ``verified`` once the read-back agrees. The run
    waits for it before COMMIT (:meth:`wait`), or, when it failed for another reason, so that
    its backup is still left complete (:meth:`settle`)."""

    def __init__(self, unsealed: UnsealedBackup, entry: dict[str, Any]) -> None:
        started = time.monotonic()

        def seal() -> float:
            unsealed.seal()
            return time.monotonic() - started

        self._job = Background(seal, f"dbsync-{unsealed.step}-check")
        self.entry = entry
        written = unsealed.written
        entry.update(key=written.key, size=written.size, sha256=written.sha256, verified=False)

    def wait(self, target: str) -> None:
        """Wait for the seal. Its failure is raised; ours say that nothing was committed and
        ``target`` is as it was (the run rolls back)."""
        waited = time.monotonic()
        try:
            seconds = self._job.result()
        except DbsyncError as exc:
            raise type(exc)(f"{exc}; nothing was committed, {target} is as it was") from None
        self._verified(seconds, waited)

    def settle(self) -> Exception | None:
        """:meth:`wait` for a run that failed otherwise: returns the seal's failure, if any."""
        if self.entry["verified"]:
            return None
        waited = time.monotonic()
        try:
            seconds = self._job.result()
        except Exception as exc:
            return exc
        self._verified(seconds, waited)
        return None

    def _verified(self, seconds: float, waited: float) -> None:
        self.entry.update(
            verified=True,
            check_seconds=round(seconds, 3),
            check_waited_seconds=round(time.monotonic() - waited, 3),
        )
