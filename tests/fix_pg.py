"""pytest plugin: throwaway PostgreSQL clusters and sample databases.

Loaded by ``addopts = "-p tests.fix_pg"`` in pyproject.toml. Provides:

* ``pg_clusters`` (session): three independent, running clusters, index 0 being
  "production", 1 "UAT" and 2 a spare. Each is its own initdb, own data
  directory, own postmaster on a free loopback port.
* ``make_db`` (function): ``make_db(cluster_index, kind, variant="deferrable")``
  returns the URL of a brand-new database loaded from ``tests/sample``; kind is
  "prod", "uat" or "empty" (schema only), variant "deferrable" (foreign keys
  DEFERRABLE INITIALLY DEFERRED, as Django makes them) or "immediate" (NOT
  DEFERRABLE). Kind "rich" is ``rich_schema.sql``: every kind of schema object a
  full restore must carry (partitions, enums, domains, triggers, large objects,
  ...) with a little data; it has its own keys and no scale, so the variant is
  ignored (recorded as "deferrable") and scale must be 1. Each (cluster, kind,
  variant, scale) is loaded once per session into a template database; tests
  get copies (CREATE DATABASE ... TEMPLATE). Databases are dropped when the
  test ends.
* ``prod_url`` = ``make_db(0, "prod")``, ``uat_url`` = ``make_db(1, "uat")``.

Authentication: local (unix socket) connections are trusted; TCP connections,
which is what every URL here uses, need a password (scram-sha-256). The
superuser ``postgres`` has password ``postgres-pw``; the role ``secret_user``
(LOGIN, no other rights) has ``s3cr3t-pw``. ``Cluster.url()`` includes the
password by default.

PostgreSQL refuses to run as root: when the tests run as root, initdb and the
server run as the ``postgres`` OS user if it exists, else as ``dbsync-test``
(created with useradd). Set ``DBSYNC_TEST_KEEP_PG=1`` to keep the clusters'
directory (data and server logs) after the session for post-mortems.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres-pw"
SECRET_USER = "secret_user"
SECRET_PASSWORD = "s3cr3t-pw"
KNOWN_PASSWORDS: dict[str, str] = {SUPERUSER: SUPERUSER_PASSWORD, SECRET_USER: SECRET_PASSWORD}

N_CLUSTERS = 3
KINDS = ("prod", "uat", "empty", "rich")
# Kinds that do not load schema.sql: their own file, no fk_mode variant, no scale.
STANDALONE_KINDS: dict[str, str] = {"rich": "rich_schema.sql"}
FK_MODES: dict[str, str] = {
    "deferrable": "DEFERRABLE INITIALLY DEFERRED",
    "immediate": "NOT DEFERRABLE",
}
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}
FALLBACK_OS_USER = "dbsync-test"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries (initdb) on this machine."""


def find_pg_bindir() -> Path:
    """The bin directory of the newest PostgreSQL installed.

    The highest ``/usr/lib/postgresql/N/bin`` holding ``initdb``, else the
    directory of the ``initdb`` found on PATH (symlinks resolved, so a
    ``/usr/local/bin/initdb`` link leads to the real bin directory).
    """
    root = Path("/usr/lib/postgresql")
    versions: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for entry in root.iterdir():
            if re.fullmatch(r"\d+(\.\d+)*", entry.name) and (entry / "bin" / "initdb").is_file():
                versions.append((tuple(int(p) for p in entry.name.split(".")), entry / "bin"))
    if versions:
        return max(versions)[1]
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresNotFound(
        "PostgreSQL server binaries not found: no /usr/lib/postgresql/N/bin/initdb and no "
        "initdb on PATH. Install them (Debian: apt-get install postgresql) or run scripts/test, "
        "which does."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The environment for PostgreSQL programs, without the caller's PG* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


class _OsUser:
    """Who runs initdb and postgres: the current user, or an unprivileged one when root."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.uid = os.geteuid()
        self.gid = os.getegid()
        if self.uid != 0:
            return
        try:
            entry = pwd.getpwnam(SUPERUSER)
        except KeyError:
            try:
                entry = pwd.getpwnam(FALLBACK_OS_USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--user-group", "--no-create-home",
                     "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
                    check=True, capture_output=True,
                )
                entry = pwd.getpwnam(FALLBACK_OS_USER)
        self.name = entry.pw_name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid

    @property
    def switching(self) -> bool:
        return self.name is not None

    def popen_kwargs(self) -> dict[str, Any]:
        if not self.switching:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.switching:
            os.chown(path, self.uid, self.gid)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Have the kernel SIGQUIT the postmaster (immediate shutdown) if pytest dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


class Cluster:
    """One throwaway PostgreSQL cluster: its own data directory and postmaster."""

    host = "127.0.0.1"
    superuser = SUPERUSER

    def __init__(self, name: str, bindir: Path, basedir: Path, os_user: _OsUser | None = None):
        self.name = name
        self.bindir = bindir
        self.basedir = basedir / name
        self.datadir = self.basedir / "data"
        self.socket_dir = self.basedir
        self.logfile = self.basedir / "postgres.log"
        self.password = SUPERUSER_PASSWORD
        self.port = 0
        self._os_user = os_user or _OsUser()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Cluster {self.name} {self.host}:{self.port} {state}>"

    # -- lifecycle ---------------------------------------------------------

    def init(self) -> None:
        """initdb: UTF8, C locale, superuser 'postgres' with a password."""
        self.basedir.mkdir(parents=True, exist_ok=True)
        self._os_user.chown(self.basedir)
        pwfile = self.basedir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._os_user.chown(pwfile)
        cmd = [
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.superuser,
            f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C", "--no-sync",
        ]
        proc = subprocess.run(
            cmd, cwd=self.basedir, env=_clean_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, **self._os_user.popen_kwargs(),
        )
        pwfile.unlink()
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.name}:\n{proc.stdout}\n{proc.stderr}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the postmaster (again) and wait until it accepts connections.

        The port is chosen on the first start and kept afterwards, so URLs
        handed out before a stop() work again after start().
        """
        with self._lock:
            if self.running:
                return
            fresh_port = self.port == 0
            for _attempt in range(5):
                if fresh_port:
                    self.port = _free_port()
                self._launch()
                try:
                    self._wait_ready()
                    return
                except _PortTaken:
                    if not fresh_port:
                        raise RuntimeError(
                            f"{self.name}: port {self.port} is taken by another process"
                        ) from None
            raise RuntimeError(f"{self.name}: could not find a free port")

    def _launch(self) -> None:
        cmd = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
               "-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in SERVER_SETTINGS.items():
            cmd += ["-c", f"{key}={value}"]
        # Only a process started from the main thread gets a parent-death signal:
        # the kernel sends it when the *thread* that forked exits.
        in_main = threading.current_thread() is threading.main_thread()
        preexec = _die_with_parent if in_main else None
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, cwd=self.basedir, env=_clean_env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=preexec, **self._os_user.popen_kwargs(),
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                tail = self._log_tail()
                if "could not bind" in tail or "Address already in use" in tail:
                    raise _PortTaken()
                raise RuntimeError(f"{self.name}: postgres exited during start-up:\n{tail}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2, autocommit=True):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    self.stop("immediate")
                    raise RuntimeError(
                        f"{self.name}: not ready after {START_TIMEOUT}s: {exc}\n{self._log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster: mode "smart", "fast" (default) or "immediate"."""
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if mode not in signals:
            raise ValueError(f"unknown stop mode {mode!r}")
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.poll() is not None:
                return
            proc.send_signal(signals[mode])
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGQUIT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while running."""
        return self._proc.pid if self.running and self._proc is not None else None

    # -- connections -------------------------------------------------------

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq URL over TCP. password=None uses the role's known password
        (postgres, secret_user); pass password="" for a URL without one."""
        if password is None:
            password = KNOWN_PASSWORDS.get(user, "")
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection as the superuser (autocommit unless told otherwise)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url(dbname), **kwargs)

    def execute(
        self, dbname: str, query: str | sql.SQL | sql.Composed, params: Any = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement (or several, without params) in autocommit; the
        last result's rows, or [] when it returns none."""
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def create_database(self, name: str, template: str | None = None) -> None:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        self.execute("postgres", query)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, terminating its connections first."""
        self.execute(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self.execute("postgres", query)

    def psql_file(
        self, dbname: str, path: Path | str, variables: Mapping[str, object] | None = None
    ) -> str:
        """Run an SQL file with psql (-X -q, ON_ERROR_STOP=1, -v k=v); its stdout."""
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        for key, value in (variables or {}).items():
            cmd += ["-v", f"{key}={value}"]
        cmd += ["-d", self.url(dbname), "-f", str(path)]
        proc = subprocess.run(
            cmd, env=_clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"psql -f {path} on {self.name}/{dbname} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc.stdout


class _PortTaken(Exception):
    pass


class DbUrl(str):
    """A database URL (a plain str) that also knows where it lives."""

    cluster: Cluster
    dbname: str
    kind: str
    variant: str

    def __new__(cls, cluster: Cluster, dbname: str, kind: str, variant: str) -> DbUrl:
        self = super().__new__(cls, cluster.url(dbname))
        self.cluster = cluster
        self.dbname = dbname
        self.kind = kind
        self.variant = variant
        return self


class ClusterSet:
    """The session's clusters, in one temp dir, torn down at the end."""

    def __init__(self, count: int = N_CLUSTERS) -> None:
        self.bindir = find_pg_bindir()
        for tool in ("initdb", "postgres", "psql"):
            if not (self.bindir / tool).is_file():
                raise PostgresNotFound(f"{self.bindir} has no {tool}")
        self.os_user = _OsUser()
        base = tempfile.mkdtemp(prefix="dbsync-pg-", dir="/tmp" if self.os_user.switching else None)
        self.basedir = Path(base)
        self.os_user.chown(self.basedir)
        self.clusters = [
            Cluster(f"c{i}", self.bindir, self.basedir, self.os_user) for i in range(count)
        ]
        self._closed = False
        atexit.register(self.close)
        _ACTIVE.append(self)
        try:
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(Cluster.init, self.clusters))
            for cluster in self.clusters:  # from this (main) thread: see Cluster._launch
                cluster.start()
            for cluster in self.clusters:
                cluster.execute(
                    "postgres",
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(SECRET_USER), sql.Literal(SECRET_PASSWORD)
                    ),
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        for cluster in self.clusters:
            with contextlib.suppress(Exception):
                cluster.stop("fast")
        if os.environ.get("DBSYNC_TEST_KEEP_PG"):
            print(f"\nDBSYNC_TEST_KEEP_PG: clusters kept in {self.basedir}")
        else:
            shutil.rmtree(self.basedir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)


_ACTIVE: list[ClusterSet] = []


class SampleDatabases:
    """Per-session template databases built from tests/sample, and copies of them."""

    def __init__(self, clusters: list[Cluster]) -> None:
        self.clusters = clusters
        self._templates: set[tuple[int, str, str, int]] = set()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def template_name(kind: str, variant: str, scale: int) -> str:
        suffix = "" if scale == 1 else f"_s{scale}"
        return f"tpl_{kind}_{variant}{suffix}"

    def template(self, index: int, kind: str, variant: str, scale: int = 1) -> str:
        """The name of the template database, built on first use."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        variant = self.effective_variant(kind, variant)
        if kind in STANDALONE_KINDS and scale != 1:
            raise ValueError(f"kind {kind!r} has no scale (got {scale})")
        if variant not in FK_MODES:
            raise ValueError(f"variant must be one of {tuple(FK_MODES)}, not {variant!r}")
        if scale < 1:
            raise ValueError("scale must be >= 1")
        name = self.template_name(kind, variant, scale)
        key = (index, kind, variant, scale)
        with self._lock:
            if key in self._templates:
                return name
            cluster = self.clusters[index]
            cluster.drop_database(name)
            cluster.create_database(name)
            if kind in STANDALONE_KINDS:
                cluster.psql_file(name, SAMPLE_DIR / STANDALONE_KINDS[kind])
            else:
                cluster.psql_file(name, SAMPLE_DIR / "schema.sql", {"fk_mode": FK_MODES[variant]})
            if kind == "prod":
                cluster.psql_file(name, SAMPLE_DIR / "prod_data.sql", {"scale": scale})
            elif kind == "uat":
                cluster.psql_file(name, SAMPLE_DIR / "uat_data.sql")
            cluster.execute(name, "VACUUM (FREEZE, ANALYZE)")
            self._templates.add(key)
            return name

    @staticmethod
    def effective_variant(kind: str, variant: str) -> str:
        """The variant a kind really has: standalone kinds ignore the argument."""
        return "deferrable" if kind in STANDALONE_KINDS else variant

    def create(self, index: int, kind: str, variant: str = "deferrable", scale: int = 1) -> DbUrl:
        if not 0 <= index < len(self.clusters):
            raise IndexError(f"cluster index {index} out of range 0..{len(self.clusters) - 1}")
        cluster = self.clusters[index]
        if not cluster.running:
            raise RuntimeError(f"{cluster.name} is stopped; start() it before make_db()")
        template = self.template(index, kind, variant, scale)
        variant = self.effective_variant(kind, variant)
        name = f"t{next(self._counter)}_{kind}_{variant}"
        cluster.create_database(name, template=template)
        return DbUrl(cluster, name, kind, variant)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_clusters() -> Iterator[list[Cluster]]:
    """Three running clusters: [0] production, [1] UAT, [2] spare."""
    try:
        clusters = ClusterSet()
    except PostgresNotFound as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    try:
        yield clusters.clusters
    finally:
        clusters.close()


@pytest.fixture(autouse=True)
def _restart_stopped_clusters() -> Iterator[None]:
    """After each test, start again any cluster the test left stopped (without
    starting the clusters at all in a session that has not needed them)."""
    yield
    for cluster_set in _ACTIVE:
        for cluster in cluster_set.clusters:
            if not cluster.running:
                cluster.start()


@pytest.fixture(scope="session")
def sample_databases(pg_clusters: list[Cluster]) -> SampleDatabases:
    return SampleDatabases(pg_clusters)


MakeDb = Callable[..., DbUrl]


@pytest.fixture
def make_db(sample_databases: SampleDatabases) -> Iterator[MakeDb]:
    """Factory: make_db(cluster_index, kind, variant="deferrable", *, scale=1) -> URL.

    kind: "prod", "uat", "empty" or "rich" (tests/sample/rich_schema.sql, which
    ignores the variant and has no scale).

    A fresh database per call (a copy of a per-session template), dropped at
    the end of the test; a cluster the test left stopped is started again.
    """
    created: list[DbUrl] = []

    def factory(
        cluster_index: int, kind: str, variant: str = "deferrable", *, scale: int = 1
    ) -> DbUrl:
        url = sample_databases.create(cluster_index, kind, variant, scale)
        created.append(url)
        return url

    yield factory

    for cluster in sample_databases.clusters:
        if not cluster.running:
            cluster.start()
    for url in created:
        url.cluster.drop_database(url.dbname)


@pytest.fixture
def prod_url(make_db: MakeDb) -> DbUrl:
    """A fresh production sample database (deferrable FKs) on cluster 0."""
    return make_db(0, "prod")


@pytest.fixture
def uat_url(make_db: MakeDb) -> DbUrl:
    """A fresh UAT sample database (deferrable FKs) on cluster 1."""
    return make_db(1, "uat")
