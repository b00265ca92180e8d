#!/usr/bin/env python3
"""dbsync's benchmark (issue 7): sync and restore against the seed's pipeline, a raw-COPY floor,
pg_dump/pg_restore and pgcopydb, on two throwaway local clusters and the same data.

    python bench/benchmark.py --scale N [--rounds R] [--jobs J] [--out DIR]

It measures; it optimises nothing. What it does, in order:

1. Starts two clusters ("production" and "UAT") on free loopback ports in a temp dir, as the
   ``postgres`` OS user when run as root, with identical settings (``SERVER_SETTINGS``:
   modest memory, and fsync, synchronous_commit and full_page_writes ON, unlike the test
   suite's clusters, so that commits and checkpoints cost what they cost in real life).
2. Loads ``tests/sample`` into production (``schema.sql`` with Django's deferrable foreign keys,
   ``prod_data.sql`` at ``--scale``) and builds, once, the template databases every variant
   starts from on UAT (see ``Bench.setup``).
3. Runs each round's variants one after the other, each on a fresh copy of its template (or a
   fresh empty database), after a CHECKPOINT of both clusters; every variant runs in a fresh
   subprocess whose wall time, peak RSS (its whole process tree, sampled from /proc, and
   ``getrusage(RUSAGE_CHILDREN)``) and CPU are recorded.
4. Writes ``latest.md`` and ``latest.json`` (and ``scale-N.*``) into ``--out``.

Internal entry point: ``benchmark.py _floor SPEC OUT`` is the floor's copier, run in its own
process like every other variant.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fnmatch
import json
import os
import platform
import pwd
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "sample"
PASSWORD = "bench-pw"
SUPERUSER = "postgres"
MIB = 1024 * 1024

# Identical on both clusters. Durability is ON (the PostgreSQL defaults, written out so the
# results say so): the test suite turns fsync off for speed, a benchmark must not.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "50",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "effective_cache_size": "2GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "replica",
    "max_worker_processes": "8",
    "max_parallel_workers_per_gather": "2",
    "log_min_messages": "warning",
}

# The seed workflow's `pg_dump --exclude-table` patterns, verbatim (shared/seeds/000...txt).
# Note `auth_group*` does not match `auth_user_groups`: the seed dumps that table.
SEED_EXCLUDES = [
    "auth_user",
    "auth_permission",
    "auth_group*",
    "django_session",
    "authtoken_token",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
]

# The floor: for each table dbsync syncs on this sample schema, the filter that keeps exactly
# the rows it copies (production's test tenants, schema_name starting with 'test_', and
# everything that belongs to them through tenant_id or foreign keys, are left out). Written
# for tests/sample; starts_with() is literal, unlike LIKE 'test_%'.
_TEST_TENANTS = "SELECT id FROM apps_tenants_tenant WHERE starts_with(schema_name, 'test_')"
_TEST_ORDERS = f"SELECT id FROM apps_orders_order WHERE tenant_id IN ({_TEST_TENANTS})"
_TEST_LINES = f"SELECT id FROM apps_orders_orderline WHERE order_id IN ({_TEST_ORDERS})"
FLOOR_FILTERS: dict[str, str] = {
    "apps_tenants_tenant": "NOT starts_with(schema_name, 'test_')",
    "apps_tenants_tenantuser": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_catalog_category": "true",
    "apps_catalog_product": "true",
    "apps_catalog_tag": "true",
    "apps_suppliers_supplier": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_customers_customer": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_plants_plant": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_orders_order": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_notes_note": f"tenant_id NOT IN ({_TEST_TENANTS})",
    "apps_orders_orderline": f"order_id NOT IN ({_TEST_ORDERS})",
    "apps_orders_shipment": f"order_line_id NOT IN ({_TEST_LINES})",
    "apps_orders_orderline_tags": f"orderline_id NOT IN ({_TEST_LINES})",
}

VARIANTS: dict[str, str] = {
    "sync": "dbsync sync (backup to folder store included)",
    "resync": "dbsync sync again, a day later: 1% of orders edited (unchanged tables left in place)",
    "resync_reload": "the same with skip_unchanged = false (every table loaded again)",
    "seed": "seed: pg_dump --data-only | psql",
    "floor": "floor: COPY filtered rows (1 src + 1 tgt conn)",
    "restore": "dbsync restore (backups + verification included)",
    "dump_pipe": "pg_dump -Fc | pg_restore",
    "dump_pipe_z1": "pg_dump -Fc --compress=1 | pg_restore",
    "dump_dir": "pg_dump -Fd -j {n}; pg_restore -j {n}",
    "pgcopydb": "pgcopydb clone --table-jobs {n} --index-jobs {n}",
}
SYNC_GROUP = ("sync", "seed", "floor")
RESYNC_GROUP = ("resync", "resync_reload")
# The day's change for the resync variants, made on the synced UAT (production stays as every
# other variant reads it): one order in a hundred of the real tenants differs from production's,
# as if production had edited them since the last sync. The orders table is then loaded again;
# the others hold production's rows already.
RESYNC_DRIFT = """
UPDATE apps_orders_order o SET total = o.total + 1
FROM apps_tenants_tenant t
WHERE t.id = o.tenant_id AND t.schema_name NOT LIKE 'test\\_%' AND o.id % 100 = 0
"""
RESTORE_GROUP = ("restore", "dump_pipe", "dump_pipe_z1", "dump_dir", "pgcopydb")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Throwaway clusters
# --------------------------------------------------------------------------------------------


def pg_bindir() -> Path:
    """The newest /usr/lib/postgresql/N/bin with initdb, else initdb's directory on PATH."""
    root = Path("/usr/lib/postgresql")
    found = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.isdigit() and (entry / "bin" / "initdb").is_file():
                found.append((int(entry.name), entry / "bin"))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    sys.exit("benchmark: no PostgreSQL server binaries (initdb); run bench/run, which installs them")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the forked child, after the uid switch
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGQUIT, 0, 0, 0)  # PR_SET_PDEATHSIG


class Cluster:
    """initdb, postgres started directly (it dies with us), stopped with a fast shutdown."""

    def __init__(self, name: str, base: Path, bindir: Path) -> None:
        self.name = name
        self.dir = base / name
        self.data = self.dir / "data"
        self.bindir = bindir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.popen_user: dict[str, Any] = {}
        self.uid = self.gid = -1
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")  # Debian's postgresql package creates it
            self.uid, self.gid = entry.pw_uid, entry.pw_gid
            self.popen_user = {"user": self.uid, "group": self.gid, "extra_groups": []}

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.uid >= 0:
            os.chown(self.dir, self.uid, self.gid)
            os.chown(pwfile, self.uid, self.gid)
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"],
            cwd=self.dir, env=clean_env(), check=True, capture_output=True, **self.popen_user,
        )
        pwfile.unlink()

    def start(self) -> None:
        for _attempt in range(5):
            self.port = _free_port()
            args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                    "-c", f"unix_socket_directories={self.dir}"]
            for key, value in SERVER_SETTINGS.items():
                args += ["-c", f"{key}={value}"]
            logfile = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 - the server keeps it
            self.proc = subprocess.Popen(
                args, cwd=self.dir, env=clean_env(), stdin=subprocess.DEVNULL, stdout=logfile,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **self.popen_user,
            )
            logfile.close()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                ready = subprocess.run(
                    [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                    env=clean_env(), check=False,
                )
                if ready.returncode == 0:
                    return
                time.sleep(0.2)
            tail = (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
            self.stop()
            if "could not bind" not in tail and "already in use" not in tail:
                raise RuntimeError(f"{self.name}: PostgreSQL did not start:\n{tail}")
        raise RuntimeError(f"{self.name}: no free port after 5 attempts")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(30)

    def url(self, db: str) -> str:
        """A libpq URL without the password (children get PGPASSWORD)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def conninfo(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={db} user={SUPERUSER} password={PASSWORD}"

    def execute(self, db: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.conninfo(db), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def psql(self, db: str, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(db), *args],
            env=tool_env(), check=True, stdout=subprocess.DEVNULL,
        )

    def create_db(self, name: str, template: str = "template0") -> None:
        self.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def drop_db(self, name: str) -> None:
        self.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def checkpoint(self) -> None:
        self.execute("postgres", "CHECKPOINT")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBSYNC_"))}
    env["LC_ALL"] = "C"
    return env


def tool_env(**extra: str) -> dict[str, str]:
    """The environment of every client program: the password in PGPASSWORD, never in argv."""
    env = clean_env()
    env["PGPASSWORD"] = PASSWORD
    env["PATH"] = f"{pg_bindir()}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Measuring one variant: a fresh process tree, wall time, peak RSS, CPU
# --------------------------------------------------------------------------------------------

# Runs the variant's command as its child and reports getrusage(RUSAGE_CHILDREN): ru_maxrss is
# the peak RSS of the largest single process of the tree (every descendant that was waited
# for), user/sys the whole tree's CPU. A fresh wrapper per variant, so nothing carries over.
_WRAPPER = """\
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "seconds": seconds, "maxrss_kb": ru.ru_maxrss,
               "cpu_user": ru.ru_utime, "cpu_sys": ru.ru_stime}, f)
"""


def _ppid_table() -> dict[int, int]:
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        table[int(entry.name)] = int(fields[1])
    return table


def _cpu_ticks(pid: int, with_children: bool = False) -> int:
    """utime + stime of a process (and cutime + cstime: its reaped children's) in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _status_kb(pid: int, key: bytes, name: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Every 100 ms: the sum of VmRSS over the wrapper's descendants (the variant's process
    tree, the wrapper itself left out), and the VmHWM of the wrapper's direct child (the
    variant's main process: dbsync, the floor's copier, or bash for a pipeline). PostgreSQL's
    server processes are not descendants and are not counted. Summed RSS counts pages that
    forked processes share once per process (pgcopydb forks its workers), so the sum of Pss
    (each shared page divided among its sharers) is recorded too."""

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peak_tree_kb = 0
        self.peak_tree_pss_kb = 0
        self.main_hwm_kb = 0
        self.max_processes = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            table = _ppid_table()
            children: dict[int, list[int]] = {}
            for pid, ppid in table.items():
                children.setdefault(ppid, []).append(pid)
            direct = children.get(self.root_pid, [])
            tree, todo = [], list(direct)
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            total = sum(_status_kb(pid, b"VmRSS:") for pid in tree)
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            pss = sum(_status_kb(pid, b"Pss:", "smaps_rollup") for pid in tree)
            self.peak_tree_pss_kb = max(self.peak_tree_pss_kb, pss)
            self.max_processes = max(self.max_processes, len(tree))
            for pid in direct:
                self.main_hwm_kb = max(self.main_hwm_kb, _status_kb(pid, b"VmHWM:"))
            self._done.wait(self.interval)

    def finish(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Measurement:
    seconds: float
    rc: int
    peak_tree_rss_mb: float  # sampled sum over the process tree
    peak_tree_pss_mb: float  # the same with Pss: shared pages divided among their sharers
    main_hwm_mb: float  # the main process's own VmHWM (last sample)
    largest_process_rss_mb: float  # getrusage(RUSAGE_CHILDREN).ru_maxrss
    cpu_user: float
    cpu_sys: float
    processes: int
    log: str


def measure(argv: list[str], env: dict[str, str], log_path: Path) -> Measurement:
    result_path = log_path.with_suffix(".rusage.json")
    with open(log_path, "wb") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WRAPPER, str(result_path), *argv],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        proc.wait()
        sampler.finish()
    result = json.loads(result_path.read_text())
    return Measurement(
        seconds=round(result["seconds"], 3),
        rc=result["rc"],
        peak_tree_rss_mb=round(sampler.peak_tree_kb / 1024, 1),
        peak_tree_pss_mb=round(sampler.peak_tree_pss_kb / 1024, 1),
        main_hwm_mb=round(sampler.main_hwm_kb / 1024, 1),
        largest_process_rss_mb=round(result["maxrss_kb"] / 1024, 1),
        cpu_user=round(result["cpu_user"], 2),
        cpu_sys=round(result["cpu_sys"], 2),
        processes=sampler.max_processes,
        log=str(log_path),
    )


# --------------------------------------------------------------------------------------------
# The floor's copier (its own process): COPY (SELECT ... WHERE filter) TO STDOUT -> COPY FROM STDIN
# --------------------------------------------------------------------------------------------


def floor_worker(spec_path: str, out_path: str) -> int:
    """One source connection (REPEATABLE READ, READ ONLY: one snapshot, like dbsync's) and one
    target connection (one transaction, committed at the end, like dbsync's), table by table.
    The rows pass through the same relay as dbsync's (dbsync.copy_out, 64 KiB pieces), so that
    the floor is what a copy costs done as well as dbsync does it, nothing more."""
    import psycopg
    from psycopg import IsolationLevel, sql

    from dbsync.copy_out import copy_out as read_copy

    spec = json.loads(Path(spec_path).read_text())
    src = psycopg.connect(os.environ["BENCH_FLOOR_SOURCE"])
    tgt = psycopg.connect(os.environ["BENCH_FLOOR_TARGET"])
    src.isolation_level = IsolationLevel.REPEATABLE_READ
    src.read_only = True
    tables = []
    for table in spec["tables"]:
        started = time.perf_counter()
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in table["columns"])
        name = sql.Identifier(table["name"])
        copy_out = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT").format(
            cols, name, sql.SQL(table["filter"])
        )
        copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(name, cols)
        nbytes = 0
        with tgt.cursor() as tcur:
            with tcur.copy(copy_in) as into:
                for piece in read_copy(src, copy_out):
                    nbytes += len(piece)
                    into.write(piece)
            rows = tcur.rowcount
        tables.append({"table": table["name"], "rows": rows, "copy_bytes": nbytes,
                       "seconds": round(time.perf_counter() - started, 3)})
    tgt.commit()
    src.commit()
    src.close()
    tgt.close()
    Path(out_path).write_text(json.dumps({"tables": tables}, indent=2))
    return 0


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    variant: str
    round: int
    measurement: Measurement
    ok: bool
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale: int = args.scale
        self.jobs: int = args.jobs
        self.variants: list[str] = args.variants
        self.bindir = pg_bindir()
        self.work = Path(tempfile.mkdtemp(prefix="dbsync-bench."))
        self.work.chmod(0o755)
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.prod = Cluster("prod", self.work, self.bindir)
        self.uat = Cluster("uat", self.work, self.bindir)
        self.runs: list[Run] = []
        self.notes: list[str] = []
        self.tables: dict[str, dict[str, int]] = {}  # production: rows, heap and total bytes
        self.columns: dict[str, list[str]] = {}
        self.seed_tables: list[str] = []
        self.setup_seconds: dict[str, float] = {}
        self.dbsync = self._find_dbsync()
        self.commit = self._commit()
        self.pgcopydb = shutil.which("pgcopydb")
        if "pgcopydb" in self.variants and self.pgcopydb is None:
            self.variants.remove("pgcopydb")
            self.notes.append(
                "pgcopydb is not installed (Debian package `pgcopydb`): its variant was skipped."
            )

    @staticmethod
    def _commit() -> str:
        """The checkout measured (taken at the start): its commit, "-dirty" if runner/ or sql/
        differ from it."""
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "runner", "sql"],
                               capture_output=True, text=True, check=False).stdout.strip()
        return (commit or "unknown") + ("-dirty" if dirty else "")

    @staticmethod
    def _find_dbsync() -> list[str]:
        beside = Path(sys.executable).parent / "dbsync"
        if beside.exists():
            return [str(beside)]
        found = shutil.which("dbsync")
        if found:
            return [found]
        sys.exit("benchmark: no dbsync command: run bench/run, or pip install -e . into this Python")

    # -- set-up -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def timed(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        log(f"setup: {label} ...")
        yield
        self.setup_seconds[label] = round(time.perf_counter() - started, 2)
        log(f"setup: {label} done in {self.setup_seconds[label]:.1f}s")

    def setup(self) -> None:
        """Templates on UAT, built once; each variant copies one:

        * ``tpl_uat``   schema.sql + uat_data.sql: UAT with its test tenants and id collisions
          (the sync's target, as in the tests).
        * ``tpl_seed``  schema.sql + production's rows of exactly the tables the seed excludes
          (users, content types, ...): a UAT without collisions. The seed's dump holds only the
          other tables, whose foreign keys point at these: into a schema with no data at all its
          first COPY with a user reference fails (and stops psql, ON_ERROR_STOP), so "schema
          only" cannot finish.
        * ``tpl_floor`` schema.sql with its foreign keys dropped: empty tables with their primary
          keys, unique constraints and indexes; the raw copy checks nothing.
        """
        with self.timed("start clusters"):
            for cluster in (self.prod, self.uat):
                cluster.init()
                cluster.start()
        fk = ["-v", "fk_mode=DEFERRABLE INITIALLY DEFERRED", "-f", str(SAMPLE / "schema.sql")]
        with self.timed(f"load production (scale {self.scale})"):
            self.prod.create_db("prod")
            self.prod.psql("prod", *fk)
            self.prod.psql("prod", "-v", f"scale={self.scale}", "-f", str(SAMPLE / "prod_data.sql"))
            self.prod.execute("prod", "VACUUM ANALYZE")
        with self.timed("UAT templates"):
            self.uat.create_db("tpl_uat")
            self.uat.psql("tpl_uat", *fk)
            self.uat.psql("tpl_uat", "-f", str(SAMPLE / "uat_data.sql"))
            self.uat.execute("tpl_uat", "VACUUM ANALYZE")
            self.uat.create_db("tpl_seed")
            self.uat.psql("tpl_seed", *fk)
            patterns = [a for p in SEED_EXCLUDES for a in ("-t", p)]
            subprocess.run(
                ["bash", "-o", "pipefail", "-c",
                 shlex.join(["pg_dump", "--data-only", "--no-owner", "--no-privileges", *patterns,
                             "-d", self.prod.url("prod")])
                 + " | " + shlex.join(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                       self.uat.url("tpl_seed")])],
                env=tool_env(), check=True, stdout=subprocess.DEVNULL,
            )
            self.uat.execute("tpl_seed", "VACUUM ANALYZE")
            self.uat.create_db("tpl_floor")
            self.uat.psql("tpl_floor", *fk)
            self.uat.execute("tpl_floor", """
                DO $$ DECLARE r record; BEGIN
                  FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                           WHERE contype = 'f' AND connamespace = 'public'::regnamespace LOOP
                    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
                  END LOOP; END $$""")
        if any(v in RESYNC_GROUP for v in self.variants):
            with self.timed("UAT template for the resyncs: one sync, then the day's change"):
                self.uat.create_db("tpl_resync", "tpl_uat")
                subprocess.run(
                    [*self.dbsync, "sync", "--quiet", "--no-backup", "--jobs", str(self.jobs)],
                    env=tool_env(DBSYNC_SOURCE_URL=self.prod.url("prod"),
                                 DBSYNC_TARGET_URL=self.uat.url("tpl_resync")),
                    check=True, stdout=subprocess.DEVNULL,
                )
                self.uat.execute("tpl_resync", RESYNC_DRIFT)
                self.uat.execute("tpl_resync", "VACUUM ANALYZE")
        with self.timed("measure production's tables"):
            for (name,) in self.prod.execute(
                "prod", "SELECT relname FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace ORDER BY relname"
            ):
                rows, heap, total = self.prod.execute(
                    "prod",
                    f'SELECT count(*), pg_relation_size(\'"{name}"\'), '
                    f'pg_total_relation_size(\'"{name}"\') FROM "{name}"',
                )[0]
                self.tables[name] = {"rows": rows, "heap_bytes": heap, "total_bytes": total}
                self.columns[name] = [
                    c for (c,) in self.prod.execute(
                        "prod", "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (f'"{name}"',))
                ]
            self.seed_tables = [
                t for t in self.tables if not any(fnmatch.fnmatchcase(t, p) for p in SEED_EXCLUDES)
            ]
            missing = sorted(set(FLOOR_FILTERS) - set(self.tables))
            if missing:
                sys.exit(f"benchmark: the floor's tables are missing from production: {missing}")

    def teardown(self) -> None:
        for cluster in (self.prod, self.uat):
            with contextlib.suppress(Exception):
                cluster.stop()
        if self.args.keep:
            log(f"--keep: everything left in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------------

    def counts(self, cluster: Cluster, db: str, tables: list[str]) -> dict[str, int]:
        query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return {name: n for name, n in cluster.execute(db, query)}

    def same_counts(self, db: str, tables: list[str]) -> tuple[bool, str]:
        got = self.counts(self.uat, db, tables)
        wrong = [f"{t}: {got.get(t)} != {self.tables[t]['rows']}" for t in tables
                 if got.get(t) != self.tables[t]["rows"]]
        return (not wrong, "; ".join(wrong[:5]) or f"{len(tables)} tables, row counts equal production's")

    def fresh(self) -> None:
        """Every variant starts after a checkpoint of both clusters: no earlier variant's dirty
        buffers are flushed on its time."""
        self.prod.checkpoint()
        self.uat.checkpoint()

    def run_variant(self, variant: str, rnd: int, argv: list[str], env: dict[str, str],
                    check: Callable[[Measurement], tuple[bool, str, dict[str, Any]]]) -> Run:
        self.fresh()
        waited, other_cores = self.wait_idle()
        log_path = self.logs / f"r{rnd}-{variant}.log"
        before = self.cpu_snapshot()
        m = measure(argv, env, log_path)
        after = self.cpu_snapshot()
        ok, detail, extra = check(m)
        cpu = {k: round(after[k] - before[k], 2) for k in before}
        # CPU the machine spent on anything but this variant: its client tree, both clusters'
        # servers and this process (the sampler). Other work on a 2-core machine skews times.
        cpu["client"] = round(m.cpu_user + m.cpu_sys, 2)
        cpu["other"] = round(cpu["machine_busy"] - cpu["client"] - cpu["servers"] - cpu["bench"], 2)
        extra["cpu_seconds"] = cpu
        extra["idle_wait"] = {"waited_seconds": waited, "other_cores_at_start": other_cores}
        run = Run(variant, rnd, m, ok and m.rc == 0, detail if m.rc == 0 else f"exit {m.rc}: {detail}", extra)
        self.runs.append(run)
        state = "ok" if run.ok else "FAILED"
        log(f"round {rnd} {variant:9} {m.seconds:8.2f}s  tree RSS {m.peak_tree_rss_mb:7.1f} MB  "
            f"{state}  {run.detail}")
        if not run.ok:
            log(f"  log: {log_path}\n" + log_path.read_text(errors="replace")[-3000:])
        return run

    def other_cores(self, window: float = 2.0) -> float:
        """Cores' worth of CPU that processes other than ours used over the last ``window`` s."""
        a = self.cpu_snapshot()
        time.sleep(window)
        b = self.cpu_snapshot()
        delta = {k: b[k] - a[k] for k in a}
        other = delta["machine_busy"] - delta["servers"] - delta["bench"]
        return round(max(other, 0.0) / window, 2)

    def wait_idle(self) -> tuple[float, float | None]:
        """With --idle-wait S: wait up to S seconds for the rest of the machine to be quiet (under
        a fifth of a core) before a variant starts, so other work skews fewer runs."""
        if self.args.idle_wait <= 0:
            return 0.0, None
        started = time.monotonic()
        while True:
            load = self.other_cores()
            waited = round(time.monotonic() - started, 1)
            if load < 0.2 or waited >= self.args.idle_wait:
                if load >= 0.2:
                    log(f"the machine is still busy ({load} cores of other work) after {waited}s: going on")
                return waited, load
            time.sleep(3)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far: the whole machine's busy time (/proc/stat), both clusters' server
        processes (the postmasters' own, their reaped children's, their live children's), and
        this process."""
        tick = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
        servers = 0
        table = _ppid_table()
        for cluster in (self.prod, self.uat):
            if cluster.proc is None:
                continue
            pm = cluster.proc.pid
            servers += _cpu_ticks(pm, with_children=True)
            servers += sum(_cpu_ticks(pid) for pid, ppid in table.items() if ppid == pm)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {"machine_busy": busy / tick, "servers": servers / tick, "bench": own.ru_utime + own.ru_stime}

    # -- the variants -------------------------------------------------------------------------

    def v_sync(self, rnd: int, variant: str = "sync") -> None:
        """dbsync sync into a copy of UAT; the resync variants into a copy of UAT synced once
        and changed a little since (``RESYNC_DRIFT``)."""
        db = f"{variant}_r{rnd}"
        self.uat.create_db(db, "tpl_uat" if variant == "sync" else "tpl_resync")
        report = self.logs / f"r{rnd}-{variant}.report.json"
        env = tool_env(
            DBSYNC_SOURCE_URL=self.prod.url("prod"), DBSYNC_TARGET_URL=self.uat.url(db),
            DBSYNC_BACKUP_STORE=f"file://{self.work}/store-{variant}",
        )
        config: list[str] = []
        if variant == "resync_reload":
            path = self.work / "reload.toml"
            path.write_text("skip_unchanged = false\n")
            config = ["--config", str(path)]

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            if not report.exists():
                return False, "no report", {}
            data = json.loads(report.read_text())
            extra = {
                "status": data["status"],
                "report_seconds": data["seconds"],
                "steps": {s["name"]: s["seconds"] for s in data["steps"]},
                "tables": {t["table"].split(".")[-1].strip('"'): t for t in data["tables"]},
                "backup_bytes": (data.get("backup") or {}).get("size"),
                "unchanged": sorted(t for t, how in data.get("load", {}).items() if how == "unchanged"),
            }
            rows = sum(t["rows_copied"] for t in data["tables"])
            left = f", {len(extra['unchanged'])} table(s) left in place" if extra["unchanged"] else ""
            return data["status"] == "committed", f"{data['status']}, {rows:,} rows copied{left}", extra

        argv = [*self.dbsync, "sync", "--jobs", str(self.jobs), "--report", str(report), *config]
        self.run_variant(variant, rnd, argv, env, check)
        self.uat.drop_db(db)

    def v_seed(self, rnd: int) -> None:
        db = f"seed_r{rnd}"
        self.uat.create_db(db, "tpl_seed")
        dump = ["pg_dump", "-d", self.prod.url("prod"), "--no-owner", "--no-privileges", "--data-only",
                *[f"--exclude-table={p}" for p in SEED_EXCLUDES]]
        load = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.uat.url(db)]
        argv = ["bash", "-o", "pipefail", "-c", f"{shlex.join(dump)} | {shlex.join(load)} >/dev/null"]

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            ok, detail = self.same_counts(db, self.seed_tables)
            return ok, detail, {}

        self.run_variant("seed", rnd, argv, tool_env(), check)
        self.uat.drop_db(db)

    def v_floor(self, rnd: int) -> None:
        db = f"floor_r{rnd}"
        self.uat.create_db(db, "tpl_floor")
        spec = self.work / "floor-spec.json"
        spec.write_text(json.dumps({"tables": [
            {"name": t, "columns": self.columns[t], "filter": f} for t, f in FLOOR_FILTERS.items()
        ]}))
        out = self.logs / f"r{rnd}-floor.json"
        env = tool_env(
            BENCH_FLOOR_SOURCE=self.prod.conninfo("prod"), BENCH_FLOOR_TARGET=self.uat.conninfo(db)
        )

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            if not out.exists():
                return False, "no output", {}
            tables = {t["table"]: t for t in json.loads(out.read_text())["tables"]}
            rows = sum(t["rows"] for t in tables.values())
            return True, f"{rows:,} rows copied", {"tables": tables}

        argv = [sys.executable, str(Path(__file__).resolve()), "_floor", str(spec), str(out)]
        self.run_variant("floor", rnd, argv, env, check)
        self.uat.drop_db(db)

    def v_restore(self, rnd: int) -> None:
        db = f"stg_restore_r{rnd}"
        self.uat.create_db(db)
        report = self.logs / f"r{rnd}-restore.report.json"
        env = tool_env(
            DBSYNC_SOURCE_URL=self.prod.url("prod"), DBSYNC_TARGET_URL=self.uat.url(db),
            DBSYNC_BACKUP_STORE=f"file://{self.work}/store-restore",
        )

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            if not report.exists():
                return False, "no report", {}
            data = json.loads(report.read_text())
            ok, detail = self.same_counts(db, list(self.tables))
            extra = {
                "status": data["status"],
                "report_seconds": data["seconds"],
                "steps": {s["name"]: s["seconds"] for s in data["steps"]},
                "backup_bytes": (data.get("backup") or {}).get("size"),
            }
            return ok and data["status"] == "committed", f"{data['status']}; {detail}", extra

        argv = [*self.dbsync, "restore", "--jobs", str(self.jobs), "--report", str(report)]
        self.run_variant("restore", rnd, argv, env, check)
        self.uat.drop_db(db)

    def v_dump_pipe(self, rnd: int, variant: str = "dump_pipe") -> None:
        """pg_dump -Fc | pg_restore into a fresh database. The issue's baseline compresses at
        pg_dump's default level (6); ``dump_pipe_z1`` at its cheapest zlib level (1), the
        cheapest compression pg_dump 15 offers: dbsync's backups are zstd level 1, which
        pg_dump 15 cannot write."""
        db = f"stg_{variant}_r{rnd}"
        self.uat.create_db(db)
        level = ["--compress=1"] if variant == "dump_pipe_z1" else []
        dump = ["pg_dump", "-Fc", *level, "--no-owner", "--no-privileges", "-d", self.prod.url("prod")]
        load = ["pg_restore", "--no-owner", "--no-privileges", "-d", self.uat.url(db)]
        argv = ["bash", "-o", "pipefail", "-c", f"{shlex.join(dump)} | {shlex.join(load)}"]

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            ok, detail = self.same_counts(db, list(self.tables))
            return ok, detail, {}

        self.run_variant(variant, rnd, argv, tool_env(), check)
        self.uat.drop_db(db)

    def v_dump_dir(self, rnd: int) -> None:
        db = f"stg_dir_r{rnd}"
        self.uat.create_db(db)
        folder = self.work / f"dumpdir-r{rnd}"
        n = str(self.jobs)
        dump = ["pg_dump", "-Fd", "-j", n, "--no-owner", "--no-privileges", "-f", str(folder),
                "-d", self.prod.url("prod")]
        load = ["pg_restore", "-j", n, "--no-owner", "--no-privileges", "-d", self.uat.url(db), str(folder)]
        # Two phases in one timed command; the phases' boundaries are written to the log.
        script = (f"s=$EPOCHREALTIME; {shlex.join(dump)}; m=$EPOCHREALTIME; {shlex.join(load)}; "
                  'echo "phase-stamps $s $m $EPOCHREALTIME"')
        argv = ["bash", "-e", "-o", "pipefail", "-c", script]
        log_path = self.logs / f"r{rnd}-dump_dir.log"

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            ok, detail = self.same_counts(db, list(self.tables))
            extra: dict[str, Any] = {}
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("phase-stamps"):
                    s, mid, e = (float(x) for x in line.split()[1:4])
                    extra = {"dump": round(mid - s, 3), "restore": round(e - mid, 3)}
            return ok, detail, {"phases": extra}

        self.run_variant("dump_dir", rnd, argv, tool_env(), check)
        shutil.rmtree(folder, ignore_errors=True)
        self.uat.drop_db(db)

    def v_pgcopydb(self, rnd: int) -> None:
        db = f"stg_copydb_r{rnd}"
        self.uat.create_db(db)
        folder = self.work / f"pgcopydb-r{rnd}"
        n = str(self.jobs)
        argv = [str(self.pgcopydb), "clone", "--source", self.prod.url("prod"), "--target", self.uat.url(db),
                "--dir", str(folder), "--table-jobs", n, "--index-jobs", n, "--no-owner", "--no-acl"]

        def check(m: Measurement) -> tuple[bool, str, dict[str, Any]]:
            ok, detail = self.same_counts(db, list(self.tables))
            return ok, detail, {}

        self.run_variant("pgcopydb", rnd, argv, tool_env(), check)
        shutil.rmtree(folder, ignore_errors=True)
        self.uat.drop_db(db)

    def run_all(self) -> None:
        actions = {
            "sync": self.v_sync, "seed": self.v_seed, "floor": self.v_floor, "restore": self.v_restore,
            "dump_pipe": self.v_dump_pipe, "dump_dir": self.v_dump_dir, "pgcopydb": self.v_pgcopydb,
            "dump_pipe_z1": lambda rnd: self.v_dump_pipe(rnd, "dump_pipe_z1"),
            "resync": lambda rnd: self.v_sync(rnd, "resync"),
            "resync_reload": lambda rnd: self.v_sync(rnd, "resync_reload"),
        }
        for rnd in range(1, self.args.rounds + 1):
            for variant in self.variants:
                actions[variant](rnd)
            # The stores keep every round's backups (dbsync prunes beyond 7); they only cost disk.

    # -- results ------------------------------------------------------------------------------

    def volume(self, variant: str) -> tuple[int, int]:
        """(rows, bytes) a variant moves. Bytes: pg_relation_size (the heap's main fork, no
        indexes, no TOAST) of the production tables the variant reads, summed: dbsync and the
        floor read the synced tables (filtering as they go), the seed the tables it does not
        exclude, the restores every table. Rows: what arrived (sync: its report's rows_copied;
        floor: its COPY counts; seed: the dumped tables' rows; restores: every row)."""
        if variant in ("sync", "floor", *RESYNC_GROUP):
            tables = list(FLOOR_FILTERS)
            runs = [r for r in self.runs if r.variant == variant and r.ok]
            if variant != "floor" and runs:
                # Rows COPYed: a table left in place (resync) counts as rows_left_in_place instead.
                rows = sum(t["rows_copied"] for t in runs[0].extra["tables"].values())
            elif runs:
                rows = sum(t["rows"] for t in runs[0].extra["tables"].values())
            else:
                rows = 0
        elif variant == "seed":
            tables = self.seed_tables
            rows = sum(self.tables[t]["rows"] for t in tables)
        else:
            tables = list(self.tables)
            rows = sum(self.tables[t]["rows"] for t in tables)
        return rows, sum(self.tables[t]["heap_bytes"] for t in tables)

    def summarise(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for variant in self.variants:
            runs = [r for r in self.runs if r.variant == variant]
            good = [r for r in runs if r.ok]
            if not good:
                summary[variant] = {"label": VARIANTS[variant], "rounds": 0, "failed": len(runs)}
                continue
            secs = [r.measurement.seconds for r in good]
            median = statistics.median(secs)
            rows, nbytes = self.volume(variant)
            summary[variant] = {
                "label": VARIANTS[variant],
                "rounds": len(good),
                "failed": len(runs) - len(good),
                "median_seconds": round(median, 3),
                "min_seconds": round(min(secs), 3),
                "max_seconds": round(max(secs), 3),
                "rows": rows,
                "source_heap_bytes": nbytes,
                "rows_per_second": round(rows / median) if median else None,
                "mb_per_second": round(nbytes / MIB / median, 2) if median else None,
                "peak_tree_rss_mb": max(r.measurement.peak_tree_rss_mb for r in good),
                "peak_tree_pss_mb": max(r.measurement.peak_tree_pss_mb for r in good),
                "main_process_hwm_mb": max(r.measurement.main_hwm_mb for r in good),
                "largest_process_rss_mb": max(r.measurement.largest_process_rss_mb for r in good),
                "cpu_seconds_median": {
                    k: round(statistics.median(r.extra["cpu_seconds"][k] for r in good), 2)
                    for k in ("client", "servers", "other", "machine_busy")
                },
            }
            if variant == "sync":
                names = list(good[0].extra["tables"])
                summary[variant]["table_seconds_median"] = {
                    n: round(statistics.median(r.extra["tables"][n]["seconds"] for r in good), 3)
                    for n in names
                }
            if variant == "dump_dir" and good[0].extra.get("phases"):
                summary[variant]["phases_median_seconds"] = {
                    k: round(statistics.median(r.extra["phases"][k] for r in good), 3)
                    for k in good[0].extra["phases"]
                }

        def ratio(variant: str, reference: str) -> float | None:
            a, b = summary.get(variant, {}), summary.get(reference, {})
            if a.get("median_seconds") and b.get("median_seconds"):
                return round(a["median_seconds"] / b["median_seconds"], 2)
            return None

        for variant in summary:
            if variant in SYNC_GROUP:
                summary[variant]["ratio_to_floor"] = ratio(variant, "floor")
            if variant in RESTORE_GROUP:
                summary[variant]["ratio_to_dump_pipe"] = ratio(variant, "dump_pipe")
                summary[variant]["ratio_to_pgcopydb"] = ratio(variant, "pgcopydb")
        return summary

    def floor_check(self) -> dict[str, Any]:
        """The floor's rows per table against dbsync's rows_copied: the same rows, except those
        dbsync drops as remap conflicts (rows_dropped_conflicts)."""
        sync = next((r for r in self.runs if r.variant == "sync" and r.ok), None)
        floor = next((r for r in self.runs if r.variant == "floor" and r.ok), None)
        if sync is None or floor is None:
            return {}
        out: dict[str, Any] = {}
        for name, f in floor.extra["tables"].items():
            s = sync.extra["tables"].get(name)
            if s is None:
                out[name] = {"floor_rows": f["rows"], "dbsync": "not synced"}
                continue
            out[name] = {
                "floor_rows": f["rows"],
                "dbsync_rows_copied": s["rows_copied"],
                "dbsync_rows_dropped_conflicts": s["rows_dropped_conflicts"],
                "dbsync_rows_source": s["rows_source"],
                "equal": f["rows"] == s["rows_copied"] + s["rows_dropped_conflicts"],
            }
        for name in sync.extra["tables"]:
            if name not in out:
                copied = sync.extra["tables"][name]["rows_copied"]
                out[name] = {"dbsync_rows_copied": copied, "floor": "missing"}
        return out

    def machine(self) -> dict[str, Any]:
        mem_kb = _status_kb_file("/proc/meminfo", b"MemTotal:")
        cpu = ""
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")

        def version(argv: list[str]) -> str:
            try:
                out = subprocess.run(argv, capture_output=True, text=True, env=tool_env(), check=False)
            except OSError:
                return "not installed"
            lines = (out.stdout + out.stderr).splitlines()
            found = [ln for ln in lines if ln.lower().startswith(("pgcopydb version", "pg_dump"))]
            return found[0].strip() if found else (lines[0].strip() if lines else "unknown")

        return {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "ram_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "postgresql": self.prod.execute("postgres", "SELECT version()")[0][0],
            "pg_dump": version([str(self.bindir / "pg_dump"), "--version"]),
            "pgcopydb": version([self.pgcopydb, "--version"]) if self.pgcopydb else "not installed",
            "dbsync_commit": self.commit,
        }

    def write(self) -> Path:
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.summarise()
        data = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale": self.scale,
            "rounds": self.args.rounds,
            "jobs": self.jobs,
            "idle_wait_seconds": self.args.idle_wait,
            "machine": self.machine(),
            "server_settings": SERVER_SETTINGS,
            "setup_seconds": self.setup_seconds,
            "production_tables": self.tables,
            "production_rows": sum(t["rows"] for t in self.tables.values()),
            "production_heap_bytes": sum(t["heap_bytes"] for t in self.tables.values()),
            "production_total_bytes": sum(t["total_bytes"] for t in self.tables.values()),
            "variants": summary,
            "targets": targets(summary),
            "floor_vs_dbsync": self.floor_check(),
            "runs": [
                {"variant": r.variant, "round": r.round, "ok": r.ok, "detail": r.detail,
                 **asdict(r.measurement), **{k: v for k, v in r.extra.items() if k != "tables"}}
                for r in self.runs
            ],
            "notes": self.notes,
        }
        add_run_statistics(data)
        text = json.dumps(data, indent=2, default=str) + "\n"
        md = render_markdown(data)
        for stem in ("latest", f"scale-{self.scale}"):
            (out / f"{stem}.json").write_text(text)
            (out / f"{stem}.md").write_text(md)
        return out / "latest.md"


def add_run_statistics(data: dict[str, Any]) -> None:
    """From the recorded runs: each variant's median run (its round and, for dbsync, its
    report's steps, so that the steps add up to that run's wall time) and how many of its runs
    shared the machine with other work (other processes' CPU above a tenth of the cores)."""
    ncpu = data["machine"]["nproc"] or 1
    for variant, summary in data["variants"].items():
        summary.pop("steps_median_seconds", None)  # older results: medians per step did not add up
        good = [r for r in data["runs"] if r["variant"] == variant and r["ok"]]
        good.sort(key=lambda r: r["seconds"])
        if not good:
            continue
        median_run = good[(len(good) - 1) // 2]
        summary["median_run_round"] = median_run["round"]
        if median_run.get("steps"):
            summary["median_run_steps"] = median_run["steps"]
        summary["runs_with_other_load"] = sum(
            1 for r in good if r["cpu_seconds"]["other"] > 0.1 * ncpu * r["seconds"]
        )


def rerender(json_path: str) -> int:
    """Rebuild a results file's derived statistics and its Markdown from its recorded runs."""
    path = Path(json_path)
    data = json.loads(path.read_text())
    add_run_statistics(data)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(render_markdown(data))
    return 0


def _status_kb_file(path: str, key: bytes) -> int:
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 7's targets, as measured in this run."""

    def med(v: str) -> float | None:
        value: float | None = summary.get(v, {}).get("median_seconds")
        return value

    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: str, ok: bool | None) -> None:
        out.append({"target": name, "measured": value, "limit": limit, "met": ok})

    sync, floor, seed = med("sync"), med("floor"), med("seed")
    restore, pipe, copydb = med("restore"), med("dump_pipe"), med("pgcopydb")
    r = round(sync / floor, 2) if sync and floor else None
    add("sync / floor", r, "<= 1.3", r <= 1.3 if r is not None else None)
    r = round(seed / sync, 2) if sync and seed else None
    add("seed / sync (speed-up over the seed)", r, ">= 3", r >= 3 if r is not None else None)
    r = round(restore / pipe, 2) if restore and pipe else None
    add("dbsync restore / (pg_dump -Fc | pg_restore)", r, "< 1", r < 1 if r is not None else None)
    r = round(restore / copydb, 2) if restore and copydb else None
    add("dbsync restore / pgcopydb clone", r, "<= 1.2", r <= 1.2 if r is not None else None)
    z1 = med("dump_pipe_z1")
    r = round(restore / z1, 2) if restore and z1 else None
    # Not one of the targets: the same comparison with pg_dump's cheapest compression.
    label = "dbsync restore / (pg_dump -Fc --compress=1 | pg_restore), pg_dump's cheapest zlib"
    add(label, r, "not a target", None)
    resync, reload = med("resync"), med("resync_reload")
    r = round(resync / reload, 2) if resync and reload else None
    # Optional in the issue: the daily sync leaving unchanged tables in place, against reloading.
    add("resync leaving unchanged tables in place / resync reloading them (optional)", r, "< 1",
        r < 1 if r is not None else None)
    for v in ("sync", "restore"):
        if v in summary and "peak_tree_rss_mb" in summary[v]:
            rss = summary[v]["main_process_hwm_mb"]
            add(f"dbsync {v}: peak RSS of the dbsync process (MB)", rss, "< 200", rss < 200)
            tree = summary[v]["peak_tree_rss_mb"]
            add(f"dbsync {v}: peak RSS with its children, sampled (MB)", tree, "< 200", tree < 200)
    return out


def _fmt(value: Any, pattern: str = "{:,.2f}") -> str:
    return "" if value is None else pattern.format(value)


def render_markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"# dbsync benchmark: scale {data['scale']}",
        "",
        f"{data['generated_at']}; {data['rounds']} round(s); N = --jobs = {data['jobs']}; "
        f"--idle-wait {data['idle_wait_seconds']:g}. "
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['postgresql'].split(',')[0]}; "
        f"pgcopydb: {m['pgcopydb']}; dbsync {m['dbsync_commit']}.",
        "",
        f"Production: {data['production_rows']:,} rows, {data['production_heap_bytes'] / MIB:,.1f} MB of "
        f"table heap (pg_relation_size), {data['production_total_bytes'] / MIB:,.1f} MB with indexes and "
        "TOAST (pg_total_relation_size). Both clusters on this machine, fsync on; MB = 2^20 bytes.",
        "",
        "| variant | rounds | median s | min s | rows | rows/s | MB/s | peak RSS MB | peak PSS MB "
        "| dbsync process MB | ratio to floor | ratio to pg_dump\\|pg_restore |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, v in data["variants"].items():
        label = v["label"].format(n=data["jobs"]).replace("|", "\\|")
        if not v.get("rounds"):
            lines.append(f"| {label} | 0 ({v['failed']} failed) | | | | | | | | | | |")
            continue
        own = _fmt(v["main_process_hwm_mb"], "{:,.1f}") if key in ("sync", "restore", "floor") else ""
        lines.append(
            f"| {label} | {v['rounds']}{' (+' + str(v['failed']) + ' failed)' if v['failed'] else ''} "
            f"| {v['median_seconds']:.2f} | {v['min_seconds']:.2f} | {v['rows']:,} "
            f"| {_fmt(v['rows_per_second'], '{:,}')} | {_fmt(v['mb_per_second'])} "
            f"| {v['peak_tree_rss_mb']:,.1f} | {v['peak_tree_pss_mb']:,.1f} | {own} "
            f"| {_fmt(v.get('ratio_to_floor'), '{:.2f}')} | {_fmt(v.get('ratio_to_dump_pipe'), '{:.2f}')} |"
        )
    lines += [
        "",
        "- **rows**: what arrived (sync: dbsync's `rows_copied`, less the tables left in place; "
        "floor: its COPY row counts; seed: every "
        "row of the tables it dumps, production's test tenants included; restores: every row). "
        "**MB/s**: pg_relation_size of the production tables the variant reads (synced tables for "
        "sync and floor, dumped tables for the seed, all tables for restores) over the median time.",
        "- **peak RSS MB**: the variant's whole client process tree (dbsync plus its pg_dump, "
        "pg_restore, psql children; or the pipeline's processes), VmRSS summed, sampled every 100 ms; "
        "**peak PSS MB**: the same with Pss, which counts pages shared by forked processes once "
        "(pgcopydb forks its workers: its RSS sum counts shared pages several times); "
        "**dbsync process MB**: the VmHWM of the main process itself (dbsync, or the floor's copier). "
        "Server processes are not counted. The JSON also has getrusage(RUSAGE_CHILDREN).ru_maxrss "
        "(largest single process) and CPU seconds.",
        "",
        "## Targets (issue 7)",
        "",
        "| target | measured | limit | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for t in data["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        name = t["target"].replace("|", "\\|")
        lines.append(f"| {name} | {_fmt(t['measured'])} | {t['limit']} | {met} |")
    for key, title in (("sync", "dbsync sync"), ("restore", "dbsync restore")):
        v = data["variants"].get(key, {})
        steps = v.get("median_run_steps")
        if not steps:
            continue
        total = v["median_seconds"]
        lines += ["", f"## Where {title}'s time goes (its report's steps, median run: round "
                  f"{v['median_run_round']})", "",
                  "| step | seconds | share of wall time |", "| --- | ---: | ---: |"]
        for name, secs in steps.items():
            lines.append(f"| {name} | {secs:.2f} | {100 * secs / total:.0f}% |")
        rest = total - sum(steps.values())
        lines.append(
            f"| (outside the steps: start-up, imports, summary, retention) | {rest:.2f} "
            f"| {100 * rest / total:.0f}% |"
        )
    ncpu = data["machine"]["nproc"] or 1
    lines += [
        "",
        "## CPU (median seconds per run)",
        "",
        "Client: the variant's process tree (getrusage). Servers: both clusters' PostgreSQL "
        "processes. Other: everything else the machine ran meanwhile (this benchmark's sampler "
        "excluded); a large share means other work competed for the cores and skewed the times "
        "(a run counts as loaded when it exceeds a tenth of the cores). "
        "Client + server CPU is the work a variant makes the machine do, which other load "
        "barely changes.",
        "",
        "| variant | wall s | client CPU s | server CPU s | client + server CPU s | other CPU s "
        "| other load | runs with other load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in data["variants"].values():
        if not v.get("rounds"):
            continue
        c = v["cpu_seconds_median"]
        share = max(c["other"], 0) / (ncpu * v["median_seconds"]) if v["median_seconds"] else 0
        lines.append(
            f"| {v['label'].format(n=data['jobs']).replace('|', chr(92) + '|')} | {v['median_seconds']:.2f} "
            f"| {c['client']:.2f} | {c['servers']:.2f} | {c['client'] + c['servers']:.2f} "
            f"| {c['other']:.2f} | {100 * share:.0f}% "
            f"| {v.get('runs_with_other_load', '')} of {v['rounds']} |"
        )
    dd = data["variants"].get("dump_dir", {}).get("phases_median_seconds")
    if dd:
        lines += ["", f"pg_dump -Fd / pg_restore -j phases (median s): dump {dd.get('dump', 0):.2f}, "
                  f"restore {dd.get('restore', 0):.2f}."]
    if data["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"]]
    lines += ["", "Setup (not timed): " + ", ".join(f"{k} {v:.1f}s" for k, v in data["setup_seconds"].items())
              + ".", ""]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, required=True, help="prod_data.sql's scale (100 = ~345k rows)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                        help="N for dbsync --jobs, pg_dump/pg_restore -j and pgcopydb "
                             "(default: the machine's cores)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir (logs, data) in place")
    parser.add_argument("--idle-wait", type=float, default=0, metavar="S",
                        help="before each variant, wait up to S seconds for other work on the machine "
                        "to stop (default 0: do not wait)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if args.scale < 1 or args.rounds < 1 or args.jobs < 1:
        parser.error("--scale, --rounds and --jobs must be at least 1")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["_floor"]:
        return floor_worker(argv[1], argv[2])
    if argv[:1] == ["_render"]:
        return rerender(argv[1])
    args = parse_args(argv)
    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    try:
        log(f"work dir {bench.work}; scale {args.scale}, {args.rounds} round(s), jobs {args.jobs}; "
            f"variants {', '.join(bench.variants)}")
        bench.setup()
        bench.run_all()
        path = bench.write()
    finally:
        bench.teardown()
    log(f"done in {time.perf_counter() - started:.0f}s: {path}")
    print(path.read_text())
    failed = [r for r in bench.runs if not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
