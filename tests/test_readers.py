"""--jobs: parallel readers of production in one exported snapshot, against real PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsync import fingerprint
from dbsync.connect import endpoint
from dbsync.readers import SnapshotReaders
from tests.checksum import snapshot
from tests.test_restore import restore
from tests.test_sync import ok, rows, sync


def _exported(url: str) -> tuple[psycopg.Connection[Any], str]:
    conn = psycopg.connect(url)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return conn, str(row[0])


def test_every_reader_sees_the_snapshot_and_they_run_at_once(prod_url: Any) -> None:
    """Three readers: a write committed after the export is invisible to all of them, and three
    pieces of work meet at a barrier, which only three concurrent workers can reach."""
    owner, exported = _exported(prod_url)
    try:
        with psycopg.connect(prod_url, autocommit=True) as writer:
            writer.execute("DELETE FROM apps_orders_shipment")
        barrier = threading.Barrier(3, timeout=30)

        def count(conn: psycopg.Connection[Any]) -> int:
            barrier.wait()
            row = conn.execute("SELECT count(*) FROM apps_orders_shipment").fetchone()
            assert row is not None
            return int(row[0])

        with SnapshotReaders(endpoint("source", prod_url), exported, 3) as readers:
            counts = [f.result() for f in [readers.submit(count) for _ in range(3)]]
        assert counts[0] > 0 and counts == [counts[0]] * 3
    finally:
        owner.close()


def test_readers_without_parallel_workers(prod_url: Any) -> None:
    """Readers made with parallel_workers=False (the restore's fingerprint and the sync's
    digests pass it) ask production for no parallel workers: the server's own plan says so (a
    Gather node only with workers). This checks the flag, not each caller's one-line use."""
    owner, exported = _exported(prod_url)
    plan = "EXPLAIN SELECT count(*), sum(hashtextextended(t::text, 0)) FROM apps_orders_orderline t"
    setting = "SELECT current_setting('max_parallel_workers_per_gather')"

    def look(conn: psycopg.Connection[Any]) -> tuple[str, str]:
        conn.execute("SET LOCAL parallel_setup_cost = 0")  # a Gather whenever workers may run
        conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
        lines = " ".join(str(r[0]) for r in conn.execute(plan).fetchall())
        row = conn.execute(setting).fetchone()
        assert row is not None
        return lines, str(row[0])

    try:
        source = endpoint("source", prod_url)
        with SnapshotReaders(source, exported, 1) as readers:
            default_plan, default_setting = readers.submit(look).result()
        with SnapshotReaders(source, exported, 1, parallel_workers=False) as readers:
            serial_plan, serial_setting = readers.submit(look).result()
    finally:
        owner.close()
    assert "Gather" in default_plan and default_setting != "0"
    assert "Gather" not in serial_plan and serial_setting == "0"


def test_close_from_another_thread_stops_running_and_queued_work(prod_url: Any) -> None:
    """What an interrupted restore relies on to leave production at once: close(), called
    from another thread while a reader runs a long query and more work is queued, cancels the
    running statement, drops the queued work and closes every connection, in seconds."""
    owner, exported = _exported(prod_url)
    try:
        readers = SnapshotReaders(endpoint("source", prod_url), exported, 1)
        pid = readers.submit(lambda conn: conn.info.backend_pid).result()
        started = threading.Event()

        def slow(conn: psycopg.Connection[Any]) -> None:
            started.set()
            conn.execute("SELECT pg_sleep(60)")

        running = readers.submit(slow)
        queued = [readers.submit(lambda conn: conn.execute("SELECT 1")) for _ in range(3)]
        assert started.wait(10)
        time.sleep(0.2)  # the statement is on the server
        begun = time.monotonic()
        readers.close()
        assert time.monotonic() - begun < 10
        with pytest.raises(psycopg.errors.QueryCanceled):
            running.result()
        assert all(f.cancelled() for f in queued)
        for _ in range(50):  # the backend exits just after the client's goodbye
            if rows(prod_url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == [(0,)]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the reader's backend is still there")
    finally:
        owner.close()


def test_two_readers_cannot_reach_a_barrier_of_three(prod_url: Any) -> None:
    """The barrier above is a real test of concurrency: with two readers it breaks."""
    owner, exported = _exported(prod_url)
    try:
        barrier = threading.Barrier(3, timeout=2)
        with SnapshotReaders(endpoint("source", prod_url), exported, 2) as readers:
            futures = [readers.submit(lambda conn: barrier.wait()) for _ in range(3)]
            with pytest.raises(threading.BrokenBarrierError):
                futures[0].result()
    finally:
        owner.close()


def test_parallel_fingerprint_equals_the_serial_one(prod_url: Any) -> None:
    owner, exported = _exported(prod_url)
    try:
        serial = fingerprint.take(owner)
        with SnapshotReaders(endpoint("source", prod_url), exported, 3) as readers:
            parallel = fingerprint.take_parallel(readers.submit)
        assert parallel.to_json() == serial.to_json() and parallel.tables
    finally:
        owner.close()


def test_jobs_change_nothing_in_the_result(make_db: Any, tmp_path: Path) -> None:
    """A sync with --jobs 1 and one with --jobs 4 give the same database and report; so do
    restores with --jobs 1 and --jobs 4."""
    prod = make_db(0, "prod")
    a, b = make_db(1, "uat"), make_db(1, "uat")
    proc, one = sync(prod, a, tmp_path, "--jobs", "1")
    ok(proc)
    proc, four = sync(prod, b, tmp_path, "--jobs", "4")
    ok(proc)
    assert snapshot(a).checksum == snapshot(b).checksum
    strip = [{k: v for k, v in t.items() if k != "seconds"} for t in one["tables"]]
    assert strip == [{k: v for k, v in t.items() if k != "seconds"} for t in four["tables"]]
    c, d = make_db(2, "uat"), make_db(2, "uat")
    ok(restore(c, tmp_path, "--jobs", "1", source=prod)[0])
    ok(restore(d, tmp_path, "--jobs", "4", source=prod)[0])
    assert snapshot(c).tables == snapshot(d).tables == snapshot(prod).tables
