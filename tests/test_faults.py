"""Failures at every step leave the target exactly as it was, and production is never changed.

Each run injects a fault through ``DBSYNC_FAULT`` (see ``dbsync.faults``): an exception, or a
SIGKILL of the whole process as an OOM killer or a cancelled CI job would deliver. The proof is
a whole-database checksum (rows, sequences, schema) of both databases before and after, computed
by ``tests.checksum``, which shares no code with dbsync.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.checksum import snapshot
from tests.fix_pg import DbUrl
from tests.test_sync import dbsync_env, execute, ok, rows, sync

CHECKPOINTS = [
    "connect",
    "inspect",
    "plan",
    "lock",
    "backup",
    "backup.stream",
    "backup.check",
    "preserve",
    "stage",
    "stage.load",
    "scope",
    "remap",
    "rekey",
    "apply",
    "apply.insert",
    "sequences",
    "prove",
    "prove.end",
    "commit",
]
# Before the target transaction opens nothing can have changed, and the run fails as an
# internal error (exit 1); from "lock" on, the transaction is rolled back (exit 4).
BEFORE_TRANSACTION = {"connect", "inspect", "plan"}


@pytest.fixture(scope="module")
def databases(sample_databases: Any) -> Any:
    """One production and one UAT database shared by the fault runs: a failed run must leave
    them unchanged, which each test checks, so sharing them is itself part of the proof."""
    prod = sample_databases.create(0, "prod", "deferrable", 1)
    uat = sample_databases.create(1, "uat", "deferrable", 1)
    yield prod, uat
    prod.cluster.drop_database(prod.dbname)
    uat.cluster.drop_database(uat.dbname)


@pytest.fixture(scope="module")
def checksums(databases: Any) -> tuple[str, str]:
    prod, uat = databases
    return snapshot(prod).checksum, snapshot(uat).checksum


@pytest.mark.parametrize("how", ["raise", "kill", "term"])
@pytest.mark.parametrize("where", CHECKPOINTS)
def test_fault_leaves_target_unchanged(
    databases: Any, checksums: tuple[str, str], tmp_path: Path, where: str, how: str
) -> None:
    """An exception, a SIGKILL, and a SIGTERM (a cancelled CI job: the run unwinds, rolls back
    and exits 130) at each checkpoint."""
    prod, uat = databases
    fault = where if how == "raise" else f"{where}:{how}"
    proc, report = sync(prod, uat, tmp_path, env={"DBSYNC_FAULT": fault})
    if how == "kill":
        assert proc.returncode == -signal.SIGKILL
    elif how == "term":
        assert proc.returncode == 130, proc.stderr
        assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
        assert report["status"] == "interrupted", report
        if where not in ("backup.stream", "backup.check"):  # those run on the backup's threads:
            assert report["error"]["step"] == where.split(".")[0]  # the main thread may be past
        for url in (uat, prod):  # pg_dump's sessions and the readers' too, not only dbsync's own
            wait_for_no_sessions(url)
    else:
        assert proc.returncode == (1 if where in BEFORE_TRANSACTION else 4), proc.stderr
        assert f"fault injected at {where}" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert report["error"]["step"] == where.split(".")[0]
        if where not in BEFORE_TRANSACTION:
            assert report["status"] == "rolled_back"
            assert "rolled back" in proc.stderr
    prod_after, uat_after = snapshot(prod), snapshot(uat)
    assert prod_after.checksum == checksums[0], prod_after.diff(snapshot(prod))
    assert uat_after.checksum == checksums[1]
    # No session of ours is left holding locks on the target.
    assert rows(uat, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbsync%'") == [(0,)]


def test_after_the_faults_a_clean_run_succeeds(databases: Any, tmp_path: Path) -> None:
    prod, uat = databases
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["status"] == "committed"


def test_failed_proof_rolls_back_and_names_the_table(make_db: Any, tmp_path: Path) -> None:
    """A UAT trigger that touches a user whenever an order is inserted: the "untouched" proof
    catches the change to auth_user, and everything is rolled back."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat,
        """
        CREATE FUNCTION touch_user() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE auth_user SET last_login = now() WHERE id = (SELECT min(id) FROM auth_user);
              RETURN NEW; END $$;
        CREATE TRIGGER touch AFTER INSERT ON apps_orders_order FOR EACH STATEMENT EXECUTE FUNCTION touch_user();
        """,
    )
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "proof" in proc.stderr and "auth_user" in proc.stderr
    failed = [p for p in report["proofs"] if not p["ok"]]
    assert [(p["name"], p["subject"]) for p in failed] == [("untouched", "auth_user")]
    assert report["status"] == "rolled_back"
    assert snapshot(uat).checksum == before.checksum


def test_dangling_reference_from_preserved_row_fails_the_foreign_key_proof(
    make_db: Any, tmp_path: Path
) -> None:
    """A UAT test tenant's order that points at another (non-test) tenant's customer: that
    customer is replaced, so the reference would dangle. The anti-join proof names the
    constraint and the run is rolled back."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat,
        "INSERT INTO apps_customers_customer (id, tenant_id, name, email) SELECT 77777777, t.id, 'stale', "
        "'s@example.com' FROM apps_tenants_tenant t WHERE t.schema_name NOT LIKE 'test%' ORDER BY t.id LIMIT 1;"
        "UPDATE apps_orders_order SET customer_id = 77777777 WHERE id = (SELECT min(o.id) FROM apps_orders_order o "
        "JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE t.schema_name LIKE 'test%')",
    )
    assert rows(prod, "SELECT count(*) FROM apps_customers_customer WHERE id = 77777777") == [(0,)]
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    assert proc.returncode == 4, proc.stderr
    failed = [p for p in report["proofs"] if not p["ok"]]
    assert any(p["name"] == "foreign_key" and "apps_orders_order" in p["subject"] for p in failed), failed
    assert snapshot(uat).checksum == before.checksum
    assert json.dumps(report).count("postgres-pw") == 0


def wait_for_no_sessions(url: str) -> None:
    """After a kill, psql may still be draining its input; the server rolls back once it exits."""
    for _ in range(100):
        if rows(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        ) == [(0,)]:
            return
        time.sleep(0.1)
    raise AssertionError("sessions still open on the target")


@contextlib.contextmanager
def commits_wait_for_a_standby(url: DbUrl) -> Iterator[None]:
    """Every COMMIT that wrote something on ``url``'s cluster, in a session with
    ``synchronous_commit = on`` (the test clusters default to off), waits for a synchronous
    standby that does not exist, until it is cancelled; cancelled, it has committed locally
    anyway (PostgreSQL's "the transaction has already committed locally" warning). That is a
    COMMIT in flight long enough for a signal to land in it, and one whose outcome is
    "committed"."""
    execute(url, "ALTER SYSTEM SET synchronous_standby_names = 'dbsync_test_no_such_standby'")
    execute(url, "SELECT pg_reload_conf()")
    try:
        yield
    finally:
        execute(url, "ALTER SYSTEM RESET synchronous_standby_names")
        execute(url, "SELECT pg_reload_conf()")


def term_while_committing(
    url: DbUrl,
    *args: str,
    waiting: str = "wait_event = 'SyncRep'",
    stop: Callable[[subprocess.Popen[str]], object] = lambda proc: proc.send_signal(signal.SIGTERM),
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run dbsync with ``args`` while COMMITs on ``url``'s cluster wait for a standby (see
    commits_wait_for_a_standby); once a session there matches ``waiting`` (its COMMIT is in
    flight), ``stop`` it (by default SIGTERM to dbsync) and return the finished process and its
    stderr."""
    with commits_wait_for_a_standby(url):
        proc = subprocess.Popen(
            [sys.executable, "-m", "dbsync.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dbsync_env({"PGOPTIONS": "-c synchronous_commit=on"}),
        )
        try:
            deadline = time.monotonic() + 120
            query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND {waiting}"
            while rows(url, query) == [(0,)]:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the run's COMMIT never waited"
                time.sleep(0.05)
            stop(proc)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), err


def terminate_the_waiting_commit(url: DbUrl) -> None:
    """End the session whose COMMIT waits for the standby, as a DBA (or a failover) would."""
    execute(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")


def test_sigterm_while_commit_is_in_flight_is_settled_by_the_server(make_db: Any, tmp_path: Path) -> None:
    """A cancelled CI job's SIGTERM during COMMIT: psycopg cancels the statement and re-raises,
    but the server may have committed already (here it has, locally). dbsync said "interrupted;
    the target transaction was rolled back" (exit 130), which was false, then "outcome unknown"
    (exit 5), which was cautious. It now asks the server (txid_status on a fresh connection)
    and says what is true: committed (status committed, exit 130, a warning naming the
    transaction). Run with --no-backup, it has no old backups to prune and does not say it
    left them (it did)."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    report_path = tmp_path / "report.json"
    args = ("sync", "--source", prod, "--target", uat, "--no-backup", "--report", str(report_path))
    proc, err = term_while_committing(uat, *args)
    assert proc.returncode == 130, err
    assert "interrupted during COMMIT, which the server completed: the run is committed\n" in err, err
    assert "pruned" not in err, err
    assert "rolled back" not in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["status"] == "committed" and report["error"] is None
    [settled] = [w for w in report["warnings"] if w.startswith("COMMIT was interrupted (a signal)")]
    xid = settled.rsplit("transaction ", 1)[1].rstrip(")")
    assert rows(uat, f"SELECT txid_status({xid})") == [("committed",)]
    assert snapshot(uat).checksum != before.checksum  # the sync is in UAT


def test_a_connection_lost_during_commit_is_settled_by_the_server(make_db: Any, tmp_path: Path) -> None:
    """The target's session ends while COMMIT waits (a DBA terminates it; a failover would
    look the same): before, "outcome unknown" (exit 5). The server had committed locally, and
    its commit log says so on a fresh connection: the run is committed, exit 0, with a warning
    that names the lost connection. Under --quiet, that warning still goes to stderr (it was
    only in the report): an exit 0 that hides a lost connection would mislead."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    report_path = tmp_path / "report.json"
    args = ("sync", "--source", prod, "--target", uat, "--no-backup", "--quiet", "--report", str(report_path))
    proc, err = term_while_committing(uat, *args, stop=lambda _proc: terminate_the_waiting_commit(uat))
    assert proc.returncode == 0, err
    report = json.loads(report_path.read_text())
    assert report["status"] == "committed"
    [settled] = [w for w in report["warnings"] if w.startswith("COMMIT was interrupted (the connection was lost")]
    assert f"dbsync: warning: {settled}" in err, err
    assert proc.stdout == "", proc.stdout  # no summary table
    assert snapshot(uat).checksum != before.checksum


def test_a_commit_the_server_cannot_be_asked_about_stays_unknown(make_db: Any, tmp_path: Path) -> None:
    """The target's server stops (a crash) while COMMIT waits, and does not come back within
    the few seconds dbsync asks: the outcome stays unknown (exit 5), and the message gives the
    query that settles it. Asked once the server is back, that query says "committed": the
    commit record was flushed before the wait."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    report_path = tmp_path / "report.json"
    args = ("sync", "--source", prod, "--target", uat, "--no-backup", "--report", str(report_path))

    def crash(proc: subprocess.Popen[str]) -> None:
        uat.cluster.stop("immediate")
        try:
            proc.wait(timeout=60)  # dbsync gives up asking while the server is down
        finally:
            uat.cluster.start()

    proc, err = term_while_committing(uat, *args, stop=crash)
    assert proc.returncode == 5, err
    assert "did not say how it ended" in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["status"] == "outcome_unknown" and report["error"]["step"] == "commit"
    found = re.search(r"SELECT txid_status\(\d+\) on the target", err)
    assert found, err
    assert rows(uat, found.group(0).removesuffix(" on the target")) == [("committed",)]


def test_sigterm_while_commit_runs_deferred_checks_is_rolled_back(make_db: Any, tmp_path: Path) -> None:
    """A COMMIT that is still running deferred constraint triggers when SIGTERM comes has not
    committed: the cancel stops it and the server rolls back. dbsync said "outcome unknown"
    (exit 5); the server's commit log now says "aborted", so it is an ordinary interruption:
    exit 130, status interrupted, UAT exactly as it was."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    # A deferred trigger on a table the sync writes: it sleeps once, at COMMIT.
    execute(
        uat,
        """
        CREATE FUNCTION dbsync_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER dbsync_test_slow AFTER INSERT OR UPDATE OR DELETE
        ON public.apps_catalog_tag DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION dbsync_test_slow();
        """,
    )
    before = snapshot(uat)
    report_path = tmp_path / "report.json"
    args = ("sync", "--source", prod, "--target", uat, "--no-backup", "--report", str(report_path))
    proc, err = term_while_committing(uat, *args, waiting="wait_event = 'PgSleep'")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "committed" not in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["status"] == "interrupted" and report["error"]["step"] == "commit"
    wait_for_no_sessions(uat)
    assert snapshot(uat).checksum == before.checksum


def test_a_failure_while_pruning_after_commit_is_a_warning(make_db: Any, tmp_path: Path) -> None:
    """Pruning runs after COMMIT: whatever fails there (here an injected exception, as a bug
    would be) is a warning of a committed run, exit 0, with the report written."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    proc, report = sync(prod, uat, tmp_path, env={"DBSYNC_FAULT": "retain"})
    ok(proc)
    assert report["status"] == "committed"
    assert any("old backups were not pruned: fault injected at retain" in w for w in report["warnings"])


def test_sigterm_after_commit_keeps_the_committed_status(make_db: Any, tmp_path: Path) -> None:
    """SIGTERM while old backups are pruned, after COMMIT: the run exits 130 but says, and
    reports, that it committed; "rolled back" would be false."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path, env={"DBSYNC_FAULT": "retain:term"})
    assert proc.returncode == 130, proc.stderr
    assert "interrupted after COMMIT: the run is committed" in proc.stderr and "rolled back" not in proc.stderr
    assert report["status"] == "committed"
    assert "interrupted after COMMIT: old backups were not pruned" in report["warnings"]
    assert snapshot(uat).checksum != before.checksum


@contextlib.contextmanager
def paused_at(step: str, *args: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """dbsync ``args``, paused as ``step`` begins (its progress line is out) until the yielded
    file exists; killed if the block leaves it running."""
    release = tmp_path / f"release-{step}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dbsync_env({"DBSYNC_FAULT": f"{step}:pause={release}"}),
    )
    assert proc.stderr is not None
    watchdog = threading.Timer(120, proc.kill)  # a run that never reaches the step fails the test
    watchdog.start()
    try:
        for line in proc.stderr:
            if line.rstrip().endswith(f"] {step} ..."):
                break
        else:
            raise AssertionError(f"dbsync ended before {step}: exit {proc.wait()}")
        yield proc, release
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            release.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=120)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def every_slot_taken(url: DbUrl) -> Iterator[None]:
    """Connections to ``url``'s cluster until it takes no more ("sorry, too many clients
    already", superusers included), as an application's pool at its peak would."""
    import psycopg

    held: list[Any] = []
    try:
        for _ in range(300):
            try:
                held.append(url.cluster.connect("postgres"))
            except psycopg.OperationalError as exc:
                assert "too many clients" in str(exc), exc
                break
        else:
            raise AssertionError("the cluster took 300 connections")
        yield
    finally:
        for conn in held:
            conn.close()


def test_pg_dump_that_cannot_connect_mid_run_exits_12_and_changes_nothing(
    make_db: Any, tmp_path: Path
) -> None:
    """UAT's connection slots fill up after dbsync connected, before pg_dump takes its backup:
    pg_dump cannot connect. That was "pg_dump failed ... nothing was changed", exit 4, which
    the launcher does not run again. It is now exit 12 (a later run may pass: the launcher runs
    it again), and UAT is exactly as it was."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    report_path = tmp_path / "report.json"
    args = ("sync", "--source", prod, "--target", uat, "--backup-store", f"file://{tmp_path}/store",
            "--report", str(report_path))
    with paused_at("backup", *args, tmp_path=tmp_path) as (proc, release), every_slot_taken(uat):
        release.touch()
        err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 12, err
    assert "pg_dump could not connect: " in err and "too many clients" in err, err
    assert "a later run may pass" in err and "Traceback" not in err, err
    report = json.loads(report_path.read_text())
    assert report["status"] == "rolled_back"  # the run's transaction was open (its locks)
    assert report["error"]["kind"] == "unreachable" and report["error"]["step"] == "backup"
    assert snapshot(uat).checksum == before.checksum


def test_psql_that_cannot_connect_mid_restore_exits_12_and_changes_nothing(
    make_db: Any, tmp_path: Path
) -> None:
    """The same for the restore's psql session, which opens at target-backup after dbsync's own
    connections: "the restore stopped on an error and was rolled back", exit 4, before; exit 12
    now, staging exactly as it was."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    report_path = tmp_path / "report.json"
    args = ("restore", "--source", prod, "--target", staging, "--backup-store",
            f"file://{tmp_path}/store", "--report", str(report_path))
    with paused_at("target-backup", *args, tmp_path=tmp_path) as (proc, release), every_slot_taken(staging):
        release.touch()
        err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 12, err
    assert "psql could not connect: " in err and "too many clients" in err, err
    assert "Traceback" not in err, err
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed"  # no transaction was opened on staging
    assert report["error"]["kind"] == "unreachable" and report["error"]["step"] == "target-backup"
    assert snapshot(staging).checksum == before.checksum
