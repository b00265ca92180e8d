"""pytest plugin: a real S3 endpoint, moto's standalone server in its own process.

Loaded by ``pytest_plugins = ["tests.fix_s3"]`` in ``tests/conftest.py``. Provides:

* ``s3_server`` (session): ``python -m moto.server`` listening on a free loopback port, started
  on first use and stopped at the end of the session (or at interpreter exit). It is a real HTTP
  server in another process, so it serves the tests and any ``dbsync`` subprocess alike.
  Attributes: ``endpoint`` (``http://127.0.0.1:PORT``), ``region``, ``access_key`` and
  ``secret_key``; methods ``env()`` (the variables a dbsync subprocess needs), ``client()`` (a
  boto3 S3 client for set-up and inspection) and ``new_bucket()`` (creates a bucket with a unique
  name and returns the name).
* ``s3_store_url`` (function): ``s3://<fresh bucket>/backups?endpoint=...&region=...`` with the
  credential variables set (and any others that could interfere removed) by monkeypatch.

Authentication is ON, unlike moto's default: before enabling it through moto's
``/moto-api/reset-auth`` the fixture creates an IAM user allowed everything, and its access key
pair is the session's credentials. A request signed with any other secret is refused with
``SignatureDoesNotMatch`` and an unknown key id with ``InvalidAccessKeyId``, as on real S3 or
DigitalOcean Spaces, so wrong-credential handling can be tested. moto's IAM generates the key
pair: it is fixed for the session, not across sessions.

Listings come back in pages of ``LIST_PAGE_SIZE`` keys (``MOTO_S3_DEFAULT_MAX_KEYS``) unless the
client asks for another size, so a client that ignores continuation tokens is caught with a
handful of objects. Multipart parts must be at least 5 MiB except the last, as on AWS.

The server is ``moto.server.main`` run by ``python -m tests.fix_s3`` (see the end of this file)
with one fix: moto (5.2.1, getmoto/moto#5948) checks signatures against the URL as werkzeug
decodes it, so any query value holding a ``/`` (``list_objects_v2(Prefix="backups/")``) is
refused with SignatureDoesNotMatch; the fix re-encodes the query the way SigV4 canonicalises it.

Set ``DBSYNC_TEST_KEEP_S3_LOG=1`` to keep the server's log after the session.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

REGION = "us-east-1"
LIST_PAGE_SIZE = 4
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3
STORE_PREFIX = "backups"
TEST_USER = "dbsync-test"
REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables that would make boto3 (in the tests or in dbsync) use something other than the
# credentials and endpoint given here.
_INTERFERING_ENV = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY",
    "DBSYNC_S3_ENDPOINT", "DBSYNC_S3_PART_SIZE",
)


class S3ServerError(RuntimeError):
    """moto's server could not be started."""


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Have the kernel SIGTERM the server if pytest dies without running atexit."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class S3Server:
    """moto's standalone server in a subprocess, with IAM authentication enabled."""

    region = REGION

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="dbsync-moto-"))
        self.log_path = self.workdir / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.access_key = ""
        self.secret_key = ""
        self._buckets = itertools.count(1)
        self._session = uuid.uuid4().hex[:8]
        atexit.register(self.stop)
        try:
            self._start()
            self._enable_auth()
        except BaseException:
            self.stop()
            raise

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<S3Server {self.endpoint} pid={self.proc.pid if self.proc else None}>"

    # -- lifecycle -------------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _INTERFERING_ENV}
        env["MOTO_S3_DEFAULT_MAX_KEYS"] = str(LIST_PAGE_SIZE)
        env.pop("S3_UPLOAD_PART_MIN_SIZE", None)  # the real 5 MiB minimum
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def _start(self) -> None:
        if importlib.util.find_spec("moto") is None:
            raise S3ServerError("the S3 tests need moto's server: pip install 'moto[server]>=5'")
        last = ""
        for _ in range(START_ATTEMPTS):  # another process may take the port between probe and bind
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.fix_s3", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self._server_env(), cwd=self.workdir,
                    start_new_session=True, preexec_fn=_die_with_parent,
                )
            if self._wait_ready():
                return
            last = self._log_tail()
            self._kill()
        raise S3ServerError(f"moto server did not start after {START_ATTEMPTS} attempts; log:\n{last}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        self._kill()
        if os.environ.get("DBSYNC_TEST_KEEP_S3_LOG"):
            print(f"moto server log kept in {self.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _enable_auth(self) -> None:
        """Create an all-powerful IAM user, take its key pair, then make moto check signatures."""
        iam = self._boto_client("iam", "bootstrap-key", "bootstrap-secret")
        iam.create_user(UserName=TEST_USER)
        iam.put_user_policy(
            UserName=TEST_USER,
            PolicyName="everything",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=TEST_USER)["AccessKey"]
        self.access_key = key["AccessKeyId"]
        self.secret_key = key["SecretAccessKey"]
        request = urllib.request.Request(  # a form content type would hide the body from moto
            f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            if resp.status != 200:
                raise S3ServerError(f"moto refused to enable authentication: HTTP {resp.status}")

    # -- helpers for tests -----------------------------------------------------------------

    def _boto_client(self, service: str, access_key: str, secret_key: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def client(self, secret_key: str | None = None) -> Any:
        """A boto3 S3 client with the session's credentials (or another secret, to test refusals)."""
        return self._boto_client("s3", self.access_key, secret_key or self.secret_key)

    def new_bucket(self) -> str:
        """Create a bucket with a name no other test uses and return the name."""
        name = f"dbsync-{self._session}-{next(self._buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """What a dbsync subprocess needs in its environment to use this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "DBSYNC_S3_ENDPOINT": self.endpoint,
        }

    def store_url(self, bucket: str, prefix: str = STORE_PREFIX, endpoint: str | None = None) -> str:
        """``s3://bucket/prefix?endpoint=...&region=...`` for this server (or another endpoint)."""
        query = urlencode({"endpoint": endpoint or self.endpoint, "region": self.region})
        return f"s3://{bucket}/{prefix}?{query}"


def isolate_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Remove every variable that could point boto3 elsewhere, and hide ~/.aws."""
    for name in _INTERFERING_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone server, with authentication, for the whole session."""
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store_url(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """A URL for a store in a fresh bucket, the credentials in the environment."""
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    return s3_server.store_url(s3_server.new_bucket())


# -- the server process ---------------------------------------------------------------------------


def _fix_moto_signature_check() -> None:
    """Make moto canonicalise the query string as SigV4 does: every key and value percent-encoded
    except ``-_.~``. Werkzeug hands moto the URL with ``%2F`` decoded to ``/``, so without this
    a correctly signed request whose query holds a ``/`` fails the signature check."""
    from urllib.parse import quote, unquote, urlsplit, urlunsplit

    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase._create_aws_request

    def _create_aws_request(self: IAMRequestBase) -> Any:
        request = original(self)
        parts = urlsplit(request.url)
        if parts.query:
            pairs = (pair.partition("=") for pair in parts.query.split("&"))
            query = "&".join(
                f"{quote(unquote(key), safe='-_.~')}={quote(unquote(value), safe='-_.~')}"
                for key, _, value in pairs
            )
            request.url = urlunsplit(parts._replace(query=query))
        return request

    IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]


if __name__ == "__main__":  # python -m tests.fix_s3 -H 127.0.0.1 -p PORT
    _fix_moto_signature_check()
    from moto.server import main

    main(sys.argv[1:])
