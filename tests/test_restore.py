"""``dbsync restore`` between real clusters: staging becomes production's exact copy, or stays
exactly as it was. Checked with the independent checksums of ``tests.checksum``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from dbsync.psql_session import stopped_reason
from tests.checksum import snapshot
from tests.test_backup import (
    corrupt,
    hangs_behind_a_queued_alter,
    restamp,
    run_paused,
    wait_for_exclusive_lock,
    wait_for_lock,
)
from tests.test_faults import term_while_committing, terminate_the_waiting_commit, wait_for_no_sessions
from tests.test_sync import dbsync, execute, ok, rows

STEPS = [
    "connect",
    "inspect",
    "backup",
    "backup.stream",
    "backup.check",
    "target-backup",
    "target-backup.locked",
    "target-backup.stream",
    "target-backup.check",
    "replace",
    "replace.stream",
    "verify",
    "verify.end",
    "commit",
]


def restore(
    target: str, tmp_path: Path, *extra: str, source: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report_path = tmp_path / f"restore-{len(list(tmp_path.glob('restore-*')))}.json"
    args = ["restore", "--target", target, "--report", str(report_path)]
    if source is not None:
        args += ["--source", source]
    if "--backup-store" not in extra:
        args += ["--backup-store", f"file://{tmp_path}/store"]
    proc = dbsync(*args, *extra, env=env)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return proc, report


def same_data(a: str, b: str) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sa.tables == sb.tables, sa.diff(sb)
    assert sa.sequences == sb.sequences
    assert sa.schema_checksum == sb.schema_checksum, sa.diff(sb)


def test_staging_becomes_an_exact_copy_without_leftovers(make_db: Any, tmp_path: Path) -> None:
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    execute(
        staging,
        "CREATE SCHEMA scratch; CREATE TABLE scratch.notes (x int); CREATE TABLE public.leftover (y int);"
        "CREATE VIEW public.leftover_view AS SELECT 1 AS one",
    )
    prod_before = snapshot(prod)
    proc, report = restore(staging, tmp_path, source=prod)
    ok(proc)
    assert report["status"] == "committed"
    assert snapshot(prod).checksum == prod_before.checksum
    same_data(prod, staging)
    assert rows(
        staging,
        "SELECT to_regclass('public.leftover'), to_regclass('public.leftover_view'), "
        "to_regnamespace('scratch')",
    ) == [(None, None, None)]
    checked = {t["table"] for t in report["restore"]["tables"]}
    assert "public.apps_orders_order" in checked and all(
        t["digest_equal"] for t in report["restore"]["tables"]
    )
    assert all(p["ok"] for p in report["proofs"])
    # Both the production backup and staging's previous contents are in the store.
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    assert sorted(b["series"].endswith("-pre-restore") for b in listing) == [False, True]
    assert sorted(b["series"].endswith("-production") for b in listing) == [False, True]


def test_rich_schema_survives(make_db: Any, tmp_path: Path) -> None:
    """Sequences, views, functions, triggers, partitions, enums, domains and large objects."""
    prod, staging = make_db(0, "rich"), make_db(1, "uat")
    proc, report = restore(staging, tmp_path, source=prod)
    ok(proc)
    same_data(prod, staging)
    lo = "SELECT count(*), coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '') FROM pg_largeobject_metadata"
    assert rows(staging, lo) == rows(prod, lo) and rows(prod, lo)[0][0] > 0
    kinds = {line.split("|")[0] for line in report_schema_lines(prod)}
    for kind in ("sequence", "view", "function", "trigger", "partition", "enum", "domain"):
        assert kind in kinds
    assert report["restore"]["large_objects"] == rows(prod, lo)[0][0]


def test_backups_restore_in_place_over_partitioned_keys(make_db: Any, tmp_path: Path) -> None:
    """``dbsync backups restore`` into a database that holds the backup's objects, when tables
    are partitioned with primary keys (the rich schema's billing.payments, audit.event_log):
    pg_restore --clean drops each partition's key before the partition, PostgreSQL refuses to
    drop a key a partition inherits, and every such restore stopped ("cannot drop inherited
    constraint"), the plain pg_restore fallback too. Both ways back work now: the week's
    production backup over its own copy, and staging's pre-restore backup over the copy (its
    tables come back as they were; production's tables it lacks stay, as the README says)."""
    prod, staging = make_db(0, "rich"), make_db(1, "uat")
    staging_before = snapshot(staging)
    proc, _ = restore(staging, tmp_path, source=prod)
    ok(proc)
    store = f"file://{tmp_path}/store"
    listing = json.loads(dbsync("backups", "list", "--backup-store", store, "--json").stdout)
    series = {b["series"].rsplit("-", 1)[-1]: b["series"] for b in listing}

    def back_to_latest(kind: str) -> None:
        args = ("--backup-store", store, "--series", series[kind], "--target", staging, "latest")
        ok(dbsync("backups", "restore", *args))

    back_to_latest("production")
    same_data(prod, staging)
    back_to_latest("restore")
    after = snapshot(staging)
    assert {t: after.tables.get(t) for t in staging_before.tables} == staging_before.tables
    assert {q: after.sequences.get(q) for q in staging_before.sequences} == staging_before.sequences


def report_schema_lines(url: str) -> list[str]:
    import psycopg

    from dbsync.sqlfiles import text_of

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = ''")
        return [r[0] for r in conn.execute(text_of("select_schema_description")).fetchall()]


def test_restore_from_a_stored_backup_with_production_stopped(make_db: Any, tmp_path: Path) -> None:
    prod, staging = make_db(0, "prod"), make_db(2, "uat")
    first_staging = make_db(1, "uat")
    ok(restore(first_staging, tmp_path, source=prod)[0])
    expected = snapshot(prod)
    prod.cluster.stop()
    series = next(
        b["series"]
        for b in json.loads(
            dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
        )
        if b["series"].endswith("-production")
    )
    proc, report = restore(staging, tmp_path, "--from-backup", "latest", "--series", series)
    ok(proc)
    assert report["source"]["backup"].startswith(series)
    after = snapshot(staging)
    assert after.tables == expected.tables and after.sequences == expected.sequences


def production_backup(tmp_path: Path) -> dict[str, Any]:
    """The one production backup in the test's store, as ``backups list --json`` shows it."""
    [backup] = [b for b in json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    ) if b["series"].endswith("-production")]
    return backup


@pytest.mark.parametrize("compress", ["zstd", "1"])
def test_restore_from_a_stored_backup_of_either_layout_and_a_damaged_frame(
    make_db: Any, tmp_path: Path, compress: str
) -> None:
    """A production backup restores with --from-backup whether dbsync compressed it (zstd) or
    pg_dump did (a level 0-9, and every backup taken before zstd). A zstd frame damaged in a
    way its manifest agrees with (a byte flipped before the upload, say) is refused by the
    verification before anything streams: exit 6, staging unchanged."""
    prod, staging = make_db(0, "prod"), make_db(2, "uat")
    ok(restore(make_db(1, "uat"), tmp_path, "--compress", compress, source=prod)[0])
    backup = production_backup(tmp_path)
    folder = tmp_path / "store" / backup["folder"]
    manifest = json.loads((folder / "manifest.json").read_text())
    dump = folder / ("dump.pgdump.zst" if compress == "zstd" else "dump.pgdump")
    assert manifest["dump_key"].endswith(dump.name)
    assert manifest["compression"] == ("zstd" if compress == "zstd" else None)
    proc, _ = restore(staging, tmp_path, "--from-backup", backup["folder"])
    ok(proc)
    assert snapshot(staging).tables == snapshot(prod).tables
    if compress != "zstd":
        return
    execute(staging, "UPDATE apps_catalog_tag SET name = name || ' (staging)'")
    before = snapshot(staging)
    corrupt(dump)
    restamp(folder, dump)
    proc, _ = restore(staging, tmp_path, "--from-backup", backup["folder"])
    assert proc.returncode == 6 and "Traceback" not in proc.stderr, proc.stderr
    assert "damaged" in proc.stderr or "corrupt" in proc.stderr
    assert snapshot(staging).checksum == before.checksum


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_a_frame_damaged_after_its_verification_is_caught_while_it_streams(
    make_db: Any, tmp_path: Path, damage: str
) -> None:
    """--from-backup verifies the stored backup, then reads it again for the load. Damaged in
    between (paused before the replace), the load's own checks refuse it: zstd's checksum, the
    archive's sha256, or pg_restore stopping on a cut archive. Nothing is committed and staging
    is as it was."""
    prod, staging = make_db(0, "prod"), make_db(2, "uat")
    ok(restore(make_db(1, "uat"), tmp_path, source=prod)[0])
    backup = production_backup(tmp_path)
    dump = tmp_path / "store" / backup["folder"] / "dump.pgdump.zst"
    before = snapshot(staging)
    thread, release, result = run_paused(
        lambda env: restore(staging, tmp_path, "--from-backup", backup["folder"], env=env), "replace", tmp_path
    )
    wait_for_lock(staging, "ShareRowExclusiveLock", "apps_orders_order", thread)  # at the pause
    data = dump.read_bytes()
    if damage == "flipped":
        corrupt(dump)
    else:
        dump.write_bytes(data[: len(data) * 2 // 3])
    release.touch()
    thread.join(300)
    proc, report = result["run"]
    assert proc.returncode in (4, 6), proc.stderr
    assert "Traceback" not in proc.stderr and report["status"] == "rolled_back"
    assert snapshot(staging).checksum == before.checksum


def test_latest_backup_of_a_store_shared_by_two_databases_needs_a_series(
    make_db: Any, tmp_path: Path
) -> None:
    """``--from-backup latest`` without ``--series`` took the newest backup of any series: with
    two production databases backed up into one store, staging was committed with the other
    database's data (found on AdventureWorks). Now that is refused, naming the series; a run
    id, shared by a production backup and staging's pre-restore one, picks the production one."""
    prod, other = make_db(0, "prod"), make_db(0, "rich")
    first = make_db(1, "uat")
    proc, first_report = restore(first, tmp_path, source=prod)
    ok(proc)
    ok(restore(make_db(2, "uat"), tmp_path, source=other)[0])  # the newest backup: another database's
    staging = make_db(1, "uat")
    before = snapshot(staging)

    proc, _ = restore(staging, tmp_path, "--from-backup", "latest")
    assert proc.returncode == 14, proc.stderr
    assert "latest is ambiguous" in proc.stderr and "name one with --series" in proc.stderr
    assert snapshot(staging).checksum == before.checksum

    proc, report = restore(staging, tmp_path, "--from-backup", first_report["run_id"])
    ok(proc)
    assert report["source"]["backup"] == first_report["backup"]["key"].rsplit("/", 1)[0]
    same_data(staging, prod)


def test_publications_are_replaced_like_everything_else(make_db: Any, tmp_path: Path) -> None:
    """A publication is database-wide: dropping the schemas left staging's own in place, the
    schema proof saw it, and every restore failed until a DBA dropped it (found on
    AdventureWorks with a CDC publication on staging). Staging's go, production's come."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    execute(prod, "CREATE PUBLICATION prod_cdc FOR TABLE apps_orders_order")
    execute(staging, "CREATE PUBLICATION staging_cdc FOR TABLE apps_orders_order")
    proc, _ = restore(staging, tmp_path, source=prod)
    ok(proc)
    assert rows(staging, "SELECT pubname FROM pg_publication") == [("prod_cdc",)]
    assert rows(staging, "SELECT tablename FROM pg_publication_tables") == [("apps_orders_order",)]
    same_data(staging, prod)


def test_same_database_is_refused(make_db: Any, tmp_path: Path) -> None:
    prod = make_db(0, "prod")
    before = snapshot(prod)
    proc, report = restore(str(prod).replace("127.0.0.1", "localhost"), tmp_path, source=prod)
    assert proc.returncode == 3 and "same database" in proc.stderr
    assert report["status"] == "refused"
    assert snapshot(prod).checksum == before.checksum


def test_source_or_backup_must_be_named(make_db: Any, tmp_path: Path) -> None:
    staging = make_db(1, "uat")
    proc, _ = restore(staging, tmp_path)
    assert proc.returncode == 2 and "either --source" in proc.stderr


@pytest.fixture
def fake_extension(make_db: Any) -> Any:
    """An extension production has and staging's server does not offer: installed into
    production from control files that are then removed (both clusters share one installation,
    so that is the only way to make one side lack it)."""
    import os

    bindir = make_db(0, "empty").cluster.bindir
    sharedir = (
        Path(
            subprocess.run(
                [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        / "extension"
    )
    if not os.access(sharedir, os.W_OK):
        pytest.skip("cannot write the PostgreSQL extension directory")
    control, script = sharedir / "dbsync_fake.control", sharedir / "dbsync_fake--1.0.sql"
    control.write_text("default_version = '1.0'\nrelocatable = true\ncomment = 'dbsync test extension'\n")
    script.write_text("CREATE FUNCTION dbsync_fake_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n")
    prod = make_db(0, "prod")
    try:
        execute(prod, "CREATE EXTENSION dbsync_fake")
    finally:
        control.unlink()
        script.unlink()
    return prod


def test_missing_extension_is_refused_before_anything_changes(
    fake_extension: Any, make_db: Any, tmp_path: Path
) -> None:
    staging = make_db(1, "uat")
    before = snapshot(staging)
    proc, report = restore(staging, tmp_path, source=fake_extension)
    assert proc.returncode == 3, proc.stderr
    assert "dbsync_fake" in proc.stderr
    assert report["error"]["step"] == "inspect"
    assert snapshot(staging).checksum == before.checksum


def test_failed_verification_rolls_back(make_db: Any, tmp_path: Path) -> None:
    """A stored production backup whose manifest promises other content than its dump holds
    (the SHA-256 covers the dump, not the manifest): the restore runs, the fingerprint taken
    inside the transaction differs, the report names what differs, and nothing is committed."""
    prod, first, staging = make_db(0, "prod"), make_db(1, "uat"), make_db(2, "uat")
    ok(restore(first, tmp_path, source=prod)[0])
    store = tmp_path / "store"
    [manifest_path] = [p for p in store.glob("*-production/*/manifest.json")]
    manifest = json.loads(manifest_path.read_text())
    manifest["fingerprint"]["tables"]["public.apps_orders_order"][0] += 1
    manifest["fingerprint"]["schema"].append("index|public.apps_orders_order|CREATE INDEX promised ON x")
    manifest_path.write_text(json.dumps(manifest))
    before = snapshot(staging)
    proc, report = restore(staging, tmp_path, "--from-backup", "latest", "--series", manifest["series"])
    assert proc.returncode == 4, proc.stderr
    assert "proof" in proc.stderr
    differences = report["restore"]["differences"]
    assert any("public.apps_orders_order" in d for d in differences["tables"])
    assert differences["schema"] == ["- index|public.apps_orders_order|CREATE INDEX promised ON x"]
    assert report["status"] == "rolled_back"
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum


def test_restore_that_stops_mid_stream_still_completes_the_production_backup(
    make_db: Any, tmp_path: Path
) -> None:
    """psql stops on an error while most of the dump is still to come (a CHECK constraint
    calling a function that reads a table whose rows pg_restore loads later: a classic
    restore failure). pg_restore stops reading, and the dump (48 MB uncompressed, three
    times the 16 MiB the tee may hold) must go on into the store alone: the run rolls back
    with psql's own reason, staging is unchanged, and the week's production backup is
    complete. Before the fix the dump waited for room in the queue for ever."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    execute(
        prod,
        """
        CREATE TABLE public.z_allowed (k int PRIMARY KEY);
        INSERT INTO public.z_allowed VALUES (1);
        CREATE FUNCTION public.allowed(int) RETURNS boolean LANGUAGE sql STABLE
            AS $$ SELECT EXISTS (SELECT 1 FROM public.z_allowed WHERE k = $1) $$;
        CREATE TABLE public.a_checked (k int CHECK (public.allowed(k)));
        INSERT INTO public.a_checked VALUES (1);
        CREATE TABLE public.b_bulk AS
            SELECT i, repeat(md5(i::text), 1000) AS body FROM generate_series(1, 1500) AS i;
        """,
    )
    before = snapshot(staging)
    proc, report = restore(staging, tmp_path, "--compress", "0", source=prod)
    assert proc.returncode == 4, proc.stderr
    assert "a_checked" in proc.stderr and "Traceback" not in proc.stderr
    assert report["error"]["step"] == "replace"
    assert report["status"] == "rolled_back"
    assert report["backup"]["verified"] is True and report["backup"]["size"] > 48_000_000
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    assert any(b["series"].endswith("-production") and b["complete"] for b in listing), listing


@pytest.fixture(scope="module")
def pair(sample_databases: Any) -> Any:
    prod = sample_databases.create(0, "prod", "deferrable", 1)
    staging = sample_databases.create(1, "uat", "deferrable", 1)
    yield prod, staging, snapshot(prod).checksum, snapshot(staging).checksum
    prod.cluster.drop_database(prod.dbname)
    staging.cluster.drop_database(staging.dbname)


@pytest.mark.parametrize("how", ["raise", "kill", "term"])
@pytest.mark.parametrize("where", STEPS)
def test_fault_at_each_step_leaves_staging_unchanged(pair: Any, tmp_path: Path, where: str, how: str) -> None:
    """An exception, a SIGKILL, and a SIGTERM (a cancelled CI job) at each step. The SIGTERM is
    sent from whichever thread reaches the step, so at the streaming steps it lands in the main
    thread wherever that is, as a signal from outside would."""
    prod, staging, prod_sum, staging_sum = pair
    fault = where if how == "raise" else f"{where}:{how}"
    proc, report = restore(staging, tmp_path, source=prod, env={"DBSYNC_FAULT": fault})
    if how == "kill":
        assert proc.returncode == -signal.SIGKILL
    elif how == "term":
        assert proc.returncode == 130, proc.stderr
        assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
        assert report["status"] == "interrupted", report
        wait_for_no_sessions(prod)  # pg_dump's and the fingerprint's sessions are gone too
    else:
        assert proc.returncode == 4, proc.stderr
        assert f"fault injected at {where}" in proc.stderr and "Traceback" not in proc.stderr
        assert report["error"]["step"] == where.split(".")[0]
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == staging_sum
    assert snapshot(prod).checksum == prod_sum
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    complete = [b["series"] for b in listing if b["complete"]]
    # no complete production backup of this run, when it died before its manifest (staging's
    # own backup runs while production's dump starts: it may be complete)
    if where in ("backup", "backup.stream", "backup.check"):
        assert not any(s.endswith("-production") for s in complete), listing
    if where == "backup":
        assert complete == []
    # the production dump streams into the store while pg_restore reads it: a restore that
    # fails from there on still completes the week's production backup (a kill cannot)
    if how == "raise" and where.split(".")[0] in ("replace", "verify", "commit"):
        assert any(s.endswith("-production") for s in complete), listing


def test_a_backup_fingerprinted_with_md5_by_an_older_dbsync_is_verified_with_md5(
    make_db: Any, tmp_path: Path
) -> None:
    """Fingerprints now digest rows with hashtextextended and say so in the manifest; one
    written before (md5, no "digest" key) is still verified as it was taken, and a wrong md5
    digest in it is still caught."""
    import psycopg

    from dbsync import fingerprint

    prod, first, staging = make_db(0, "prod"), make_db(1, "uat"), make_db(2, "uat")
    ok(restore(first, tmp_path, source=prod)[0])
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    folder = next(b["folder"] for b in listing if b["series"].endswith("-production"))
    manifest_path = tmp_path / "store" / folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["fingerprint"]["digest"] == "hashtextextended"
    assert manifest["format"] == "pg_dump custom (-Fc) --compress=0 --no-owner --no-privileges | zstd -1"
    with psycopg.connect(prod) as conn:
        old = fingerprint.take(conn, digest="md5").to_json()
    del old["digest"]  # as an older dbsync wrote it
    assert old["tables"] != manifest["fingerprint"]["tables"]  # really another digest
    manifest["fingerprint"] = old
    manifest_path.write_text(json.dumps(manifest))
    proc, report = restore(staging, tmp_path, "--from-backup", folder)
    ok(proc)
    assert snapshot(staging).tables == snapshot(prod).tables

    name, (count, digest) = next(iter(old["tables"].items()))
    old["tables"][name] = [count, str(int(digest) + 1)]
    manifest["fingerprint"] = old
    manifest_path.write_text(json.dumps(manifest))
    before = snapshot(staging)
    proc, report = restore(staging, tmp_path, "--from-backup", folder)
    assert proc.returncode == 4, proc.stderr
    assert any(p["name"] == "table" and p["subject"] == name and not p["ok"] for p in report["proofs"])
    assert snapshot(staging).checksum == before.checksum


def test_timeouts_meant_for_applications_do_not_stop_a_restore(make_db: Any, tmp_path: Path) -> None:
    """Both databases carry timeouts a DBA sets for applications (statement_timeout 50ms,
    idle_in_transaction_session_timeout 100ms): dbsync's whole-table statements and its
    snapshot held open while the load runs are long by design, so its sessions (and pg_dump's,
    which does the same) switch them off for themselves; the restore completes and verifies."""
    prod, staging = make_db(0, "prod"), make_db(2, "uat")
    for url in (prod, staging):
        dbname = rows(url, "SELECT current_database()")[0][0]
        execute(url, f"ALTER DATABASE \"{dbname}\" SET statement_timeout = '50ms'")
        execute(url, f"ALTER DATABASE \"{dbname}\" SET idle_in_transaction_session_timeout = '100ms'")
    proc, report = restore(staging, tmp_path, source=prod)
    ok(proc)
    assert report["status"] == "committed"
    assert all(p["ok"] for p in report["proofs"])


def children_named(pid: int, name: str, argument: str) -> list[int]:
    """Child processes of ``pid`` running ``name`` with ``argument`` on their command line (the
    restore's psql session reads --file=-; the `psql --version` dbsync runs to check the tool
    must not be taken for it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if comm == name and int(rest[1]) == pid and argument.encode() in argv:
            found.append(int(entry))
    return found


def test_a_psql_killed_without_a_word_is_named_as_the_reason(make_db: Any, tmp_path: Path) -> None:
    """psql killed while the dump streams into it (as the OOM killer does: no message on
    stderr). The run must say what happened instead of an empty reason after "rolled back:",
    exit 4 without a traceback, and leave staging unchanged."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    release = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["XDG_DATA_HOME"] = os.path.join(tempfile.gettempdir(), "dbsync-test-xdg")
    env["DBSYNC_FAULT"] = f"replace.stream:pause={release}"  # pg_restore is writing into psql
    run = subprocess.Popen(
        [
            *(sys.executable, "-m", "dbsync.cli", "restore", "--source", prod, "--target", staging),
            *("--backup-store", f"file://{tmp_path}/store", "--report", str(tmp_path / "r.json"), "-q"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # psql opens at target-backup; wait until the replace has dropped staging's tables in
        # it (the run is then paused with the dump streaming; pg_restore itself may already
        # have written all of a small script and exited, so it is not waited for)
        while not ((psql := children_named(run.pid, "psql", "--file=-")) and replacing(staging)):
            assert run.poll() is None and time.monotonic() < deadline, "the replace never started"
            time.sleep(0.05)
        os.kill(psql[0], signal.SIGKILL)
        release.touch()
        _, err = run.communicate(timeout=120)
    finally:
        release.touch()
        if run.poll() is None:
            run.kill()
            run.wait()
        for pipe in (run.stdout, run.stderr):  # a failed wait must not leak them into later tests
            if pipe is not None:
                pipe.close()
    assert run.returncode == 4, err
    assert "psql was killed by SIGKILL and wrote no error" in err and "Traceback" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "rolled_back" and "SIGKILL" in report["error"]["message"]
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum


def replacing(url: str) -> bool:
    """Whether another session holds ACCESS EXCLUSIVE on the sample's orders table: the
    restore's replace has dropped it inside its transaction."""
    return bool(
        rows(
            url,
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND l.mode = 'AccessExclusiveLock' AND l.granted "
            "AND l.relation = 'public.apps_orders_order'::regclass",
        )[0][0]
    )


def test_stopped_reason_prefers_the_tools_words() -> None:
    assert (
        stopped_reason("psql", 3, "ERROR:  relation x does not exist") == "ERROR:  relation x does not exist"
    )
    assert stopped_reason("psql", -9, "") == "psql was killed by SIGKILL and wrote no error"
    assert stopped_reason("pg_restore", 1, "") == "pg_restore exited with code 1 and wrote no error"
    assert stopped_reason("psql", None, "") == "psql stopped answering"
    notices = (
        "psql:<stdin>:48: NOTICE:  drop cascades to 2 other objects\n"
        "DETAIL:  drop cascades to table a\ndrop cascades to table b\n"
        "WARNING:  there is no transaction in progress\n"
    )
    assert stopped_reason("psql", -9, notices) == "psql was killed by SIGKILL and wrote no error"
    error = "psql:<stdin>:90: ERROR:  permission denied for table t\nCONTEXT:  COPY t, line 1"
    assert stopped_reason("psql", 3, notices + error) == error
    lost = "psql:<stdin>:91: server closed the connection unexpectedly\npsql:<stdin>:91: error: connection to server was lost"
    assert stopped_reason("psql", 2, notices + lost) == lost
    assert (
        stopped_reason("pg_restore", 1, notices + "pg_restore: error: could not read")
        == "pg_restore: error: could not read"
    )


def test_staging_backup_is_read_back_beside_the_replace_and_gates_its_commit(
    make_db: Any, tmp_path: Path
) -> None:
    """Staging's backup is read back on a thread while the replace runs, and COMMIT waits for
    it. Paused in that read-back, the replace goes on (its session holds ACCESS EXCLUSIVE locks
    on staging's tables); staging's stored dump is then corrupted and the read-back released:
    the run rolls back with the backup's exit code, staging is as it was, staging's backup is
    not complete, and production's (checked on its own) is."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    thread, release, result = run_paused(
        lambda env: restore(staging, tmp_path, source=prod, env=env), "target-backup.check", tmp_path
    )
    wait_for_exclusive_lock(staging, "apps_orders_order", thread)
    [dump] = [p for p in (tmp_path / "store").rglob("dump.pgdump.zst") if "-pre-restore/" in str(p)]
    corrupt(dump)
    release.touch()
    thread.join(300)
    proc, report = result["run"]
    assert proc.returncode == 6, proc.stderr
    assert "reads back as" in proc.stderr and "nothing was committed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert report["status"] == "rolled_back" and report["error"]["step"] == "target-backup"
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    complete = sorted(b["series"].rsplit("-", 1)[-1] for b in listing if b["complete"])
    assert complete == ["production"], listing


def test_writers_are_locked_out_of_staging_from_its_backup_until_commit(make_db: Any, tmp_path: Path) -> None:
    """Staging's backup is taken in the replace's own transaction, after writers are locked
    out: no write can land between the backup and the replace and be kept by neither. Paused
    while pg_dump streams staging's backup, staging still answers a read, a write waits for
    the lock (and gives up after its lock_timeout), and the committed backup's row counts are
    staging's as they were."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    thread, release, result = run_paused(
        lambda env: restore(staging, tmp_path, source=prod, env=env), "target-backup.stream", tmp_path
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "store").rglob("*pre-restore*/*")):
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    import psycopg

    with psycopg.connect(staging, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM apps_orders_order").fetchone() is not None
        conn.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute(
                "UPDATE apps_orders_order SET notes = NULL WHERE id = (SELECT min(id) FROM apps_orders_order)"
            )
    release.touch()
    thread.join(300)
    proc, _ = result["run"]
    ok(proc)
    same_data(prod, staging)
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    [folder] = [b["folder"] for b in listing if b["series"].endswith("-pre-restore") and b["complete"]]
    manifest = json.loads((tmp_path / "store" / folder / "manifest.json").read_text())
    assert manifest["tables"] == before.row_counts


@pytest.mark.parametrize(("extra", "step"), [((), "target-backup"), (("--no-target-backup",), "replace")])
def test_staging_in_use_is_refused_after_the_lock_timeout(
    make_db: Any, tmp_path: Path, extra: tuple[str, ...], step: str
) -> None:
    """A transaction on staging holding a write lock past --lock-timeout: the restore says
    staging is in use, changes nothing and leaves no backup of staging (whether the locks are
    first taken for staging's backup or, without one, by the replace)."""
    import psycopg

    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    with psycopg.connect(staging) as blocker:
        blocker.execute(
            "UPDATE apps_orders_order SET notes = NULL WHERE id = (SELECT min(id) FROM apps_orders_order)"
        )
        proc, report = restore(staging, tmp_path, "--lock-timeout", "1", *extra, source=prod)
        blocker.rollback()
    assert proc.returncode == 4, proc.stderr
    assert "in use" in proc.stderr and "--lock-timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert report["status"] == "rolled_back" and report["error"]["step"] == step
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    assert not any(b["series"].endswith("-pre-restore") and b["complete"] for b in listing), listing


def test_ddl_queued_behind_the_restore_s_lock_cannot_hang_its_backup(make_db: Any, tmp_path: Path) -> None:
    """An ALTER TABLE sent to staging after the restore locked writers out waits for that
    lock; pg_dump's share lock, requested next, queues behind the ALTER, and the restore waits
    for pg_dump: without a bound on pg_dump's lock wait, nothing moves until the ALTER gives
    up (no deadlock detector sees a wait on a client). pg_dump's wait is bounded by
    --lock-timeout: staging is reported in use, nothing changed."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    thread, release, result = run_paused(
        lambda env: restore(staging, tmp_path, "--lock-timeout", "2", source=prod, env=env),
        "target-backup.locked",
        tmp_path,
    )
    assert not hangs_behind_a_queued_alter(staging, thread, release), (
        "the restore hung behind the queued ALTER"
    )
    proc, report = result["run"]
    assert proc.returncode == 4, proc.stderr
    assert "in use" in proc.stderr and "Traceback" not in proc.stderr
    assert report["error"]["step"] == "target-backup"
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum


@pytest.mark.parametrize("from_backup", [False, True], ids=["from-production", "from-backup"])
def test_large_objects_do_not_end_the_restore_s_transaction(
    make_db: Any, tmp_path: Path, from_backup: bool
) -> None:
    """pg_restore's script wraps the large objects' data in a BEGIN and COMMIT of its own, after
    every table's rows: fed into the restore's transaction, that COMMIT made the replaced staging
    permanent there, before the verification, so a failure after it (here injected at verify,
    and at commit) no longer rolled back. Staging with its own rows and large objects must be
    exactly as it was, whether production or a stored backup is restored."""
    prod, staging = make_db(0, "rich"), make_db(1, "uat")
    execute(staging, "SELECT lo_from_bytea(0, 'staging''s own large object')")
    before = snapshot(staging)
    lo = "SELECT count(*), coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '') FROM pg_largeobject_metadata"
    staging_lo = rows(staging, lo)
    source: tuple[str, ...] = ()
    if from_backup:
        ok(restore(make_db(2, "uat"), tmp_path, source=prod)[0])  # the week's production backup
        source = ("--from-backup", "latest", "--series", backup_series(tmp_path, "-production"))
    for where in ("verify", "commit"):
        env = {"DBSYNC_FAULT": where}
        proc, _ = restore(staging, tmp_path, *source, source=None if from_backup else prod, env=env)
        assert proc.returncode == 4, proc.stderr
        assert f"fault injected at {where}" in proc.stderr
        wait_for_no_sessions(staging)
        assert snapshot(staging).checksum == before.checksum, where
        assert rows(staging, lo) == staging_lo, where
    proc, _ = restore(staging, tmp_path, *source, source=None if from_backup else prod)
    ok(proc)
    same_data(prod, staging)
    assert rows(staging, lo) == rows(prod, lo)


def backup_series(tmp_path: Path, suffix: str) -> str:
    listing = json.loads(
        dbsync("backups", "list", "--backup-store", f"file://{tmp_path}/store", "--json").stdout
    )
    [series] = {b["series"] for b in listing if b["series"].endswith(suffix)}
    return str(series)


def test_backups_restore_with_large_objects_stays_one_transaction(make_db: Any, tmp_path: Path) -> None:
    """The same COMMIT in the script of ``backups restore`` (a production backup holds large
    objects, and so does any backup of a target that has them): failing just before its own
    COMMIT, the restore of the week's production backup over staging, which has changed since
    (a large object of its own), leaves staging exactly as it was."""
    prod, staging = make_db(0, "rich"), make_db(1, "uat")
    ok(restore(staging, tmp_path, source=prod)[0])
    execute(staging, "SELECT lo_from_bytea(0, 'staging''s own large object')")
    execute(
        staging,
        "UPDATE public.customers SET bio = 'changed on staging' WHERE id = (SELECT min(id) FROM public.customers)",
    )
    before = snapshot(staging)
    lo = "SELECT count(*), coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '') FROM pg_largeobject_metadata"
    staging_lo = rows(staging, lo)
    series = backup_series(tmp_path, "-production")
    store = f"file://{tmp_path}/store"
    args = ("backups", "restore", "--backup-store", store, "--series", series, "--target", staging, "latest")
    proc = dbsync(*args, env={"DBSYNC_FAULT": "backups-restore.commit"})
    assert proc.returncode == 4, proc.stderr
    wait_for_no_sessions(staging)
    assert snapshot(staging).checksum == before.checksum
    assert rows(staging, lo) == staging_lo
    ok(dbsync(*args))


def restore_args(prod: str, staging: str, tmp_path: Path, report_path: Path) -> tuple[str, ...]:
    """``dbsync restore`` of ``prod`` into ``staging`` with a folder store and a report."""
    return (
        "restore", "--source", prod, "--target", staging, "--backup-store", f"file://{tmp_path}/store",
        "--report", str(report_path),
    )


def test_sigterm_while_commit_is_in_flight_is_settled_by_the_server(make_db: Any, tmp_path: Path) -> None:
    """SIGTERM while psql's COMMIT waits (for a synchronous standby): killing psql then may or
    may not undo it. dbsync said "interrupted; staging was rolled back" (exit 130), which was
    false, then "outcome unknown" (exit 5). Now psql is told to cancel (the wait ends, the
    commit stands) and the server's commit log is asked: committed, exit 130, and the data is
    visible at once (before, the abandoned session kept waiting and hid it)."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    report_path = tmp_path / "report.json"
    args = restore_args(prod, staging, tmp_path, report_path)
    proc, err = term_while_committing(staging, *args)
    assert proc.returncode == 130, err
    assert (
        "interrupted during COMMIT, which the server completed: the run is committed; "
        "old backups were not pruned" in err
    ), err
    assert "rolled back" not in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["status"] == "committed" and report["error"] is None
    assert any(w.startswith("COMMIT was interrupted (a signal)") for w in report["warnings"])
    assert snapshot(staging).checksum != before.checksum
    same_data(prod, staging)


def test_psql_lost_during_commit_is_settled_by_the_server(make_db: Any, tmp_path: Path) -> None:
    """The session psql drives ends while its COMMIT waits (a DBA terminates it; a failover
    looks the same to psql): psql stops without confirming. dbsync said "rolled back" (exit 4),
    which was false: the server had committed. It now asks the commit log: committed, exit 0,
    with a warning naming psql's end."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(staging)
    report_path = tmp_path / "report.json"
    args = restore_args(prod, staging, tmp_path, report_path)
    proc, err = term_while_committing(staging, *args, stop=lambda _proc: terminate_the_waiting_commit(staging))
    assert proc.returncode == 0, err
    report = json.loads(report_path.read_text())
    assert report["status"] == "committed"
    assert any(w.startswith("COMMIT was interrupted (psql stopped:") for w in report["warnings"]), report
    assert snapshot(staging).checksum != before.checksum
    same_data(prod, staging)


def test_sigterm_after_commit_keeps_the_committed_status(make_db: Any, tmp_path: Path) -> None:
    """SIGTERM while old backups are pruned, after COMMIT: exit 130, but staging is restored and
    the run says and reports so."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    proc, report = restore(staging, tmp_path, source=prod, env={"DBSYNC_FAULT": "retain:term"})
    assert proc.returncode == 130, proc.stderr
    assert "interrupted after COMMIT: the run is committed" in proc.stderr and "rolled back" not in proc.stderr
    assert report["status"] == "committed"
    assert "interrupted after COMMIT: old backups were not pruned" in report["warnings"]
    same_data(prod, staging)


def test_a_failure_while_pruning_after_commit_is_a_warning(make_db: Any, tmp_path: Path) -> None:
    """Pruning runs after COMMIT: an exception there (injected, as a bug would be) printed a
    traceback and wrote no report; it is a warning of a committed restore, exit 0."""
    prod, staging = make_db(0, "prod"), make_db(1, "uat")
    proc, report = restore(staging, tmp_path, source=prod, env={"DBSYNC_FAULT": "retain"})
    ok(proc)
    assert report["status"] == "committed" and "Traceback" not in proc.stderr
    assert any("old backups were not pruned: fault injected at retain" in w for w in report["warnings"])
    same_data(prod, staging)
