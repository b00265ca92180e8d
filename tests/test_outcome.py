"""outcome.resolve against real clusters: what the server's commit log says about a
transaction whose COMMIT dbsync could not see finish (the end-to-end cases, a signal or a lost
connection during a real COMMIT, are in test_faults and test_restore)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import psycopg
import pytest

from dbsync import outcome
from dbsync.connect import endpoint
from dbsync.identity import Identity, identify
from dbsync.outcome import Pending
from tests.test_faults import commits_wait_for_a_standby
from tests.test_sync import rows


def _xid_of(conn: psycopg.Connection[Any]) -> Pending:
    [(xid, pid)] = conn.execute("SELECT txid_current()::text, pg_backend_pid()").fetchall()
    return Pending(str(xid), int(pid))


def _identity(url: str) -> Identity:
    with psycopg.connect(url, autocommit=True) as conn:
        return identify(conn)  # type: ignore[arg-type]


def test_committed_and_aborted_are_told(make_db: Any) -> None:
    url = make_db(1, "empty")
    target, ident = endpoint("target", url), _identity(url)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (a int)")
        committed = _xid_of(conn)
        conn.commit()
        conn.execute("INSERT INTO t VALUES (1)")
        aborted = _xid_of(conn)
        conn.rollback()
    assert outcome.resolve(target, ident, committed) == "committed"
    assert outcome.resolve(target, ident, aborted) == "aborted"


def test_a_transaction_still_in_progress_is_unknown_after_the_deadline(make_db: Any) -> None:
    """Open and idle (no COMMIT running, so the cancel changes nothing): no answer."""
    url = make_db(1, "empty")
    target, ident = endpoint("target", url), _identity(url)
    with psycopg.connect(url) as conn:
        xid = _xid_of(conn)  # open, neither committed nor rolled back while we ask
        started = time.monotonic()
        assert outcome.resolve(target, ident, xid, wait_seconds=0.6) is None
        assert 0.6 <= time.monotonic() - started < 5
        conn.commit()
    assert outcome.resolve(target, ident, xid) == "committed"


def test_another_database_is_not_asked(make_db: Any) -> None:
    """A multi-host URL may reach another server later: its commit log is not the
    transaction's, even where the same number is committed there."""
    url, other = make_db(1, "empty"), make_db(2, "empty")
    with psycopg.connect(other) as conn:
        xid = _xid_of(conn)
        conn.commit()
    assert outcome.resolve(endpoint("target", other), _identity(other), xid) == "committed"
    assert outcome.resolve(endpoint("target", other), _identity(url), xid, wait_seconds=0.5) is None


def test_an_unreachable_target_is_unknown_within_the_deadline(make_db: Any) -> None:
    url = make_db(1, "empty")
    ident = _identity(url)
    closed = endpoint("target", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    started = time.monotonic()
    assert outcome.resolve(closed, ident, Pending("1234", 1), wait_seconds=1.0) is None
    assert time.monotonic() - started < 5


def test_a_second_signal_stops_the_asking(make_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal while the server is asked: the outcome stays unknown rather than the second
    signal escaping as an ordinary interruption ("rolled back", which may be false)."""
    url = make_db(1, "empty")

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(outcome, "connect", interrupted)
    assert outcome.resolve(endpoint("target", url), _identity(url), Pending("1234", 1)) is None


def test_a_commit_left_waiting_for_a_standby_is_cancelled_and_told(make_db: Any) -> None:
    """A COMMIT waiting for a synchronous standby is "in progress" (PostgreSQL 15 checks the
    running transactions before the commit log), and a session whose client vanished with the
    network would wait so for as long as the standby is away, locks held. resolve cancels that
    session (its pid, still holding its transaction): the wait ends and the commit stands."""
    url = make_db(1, "empty")
    target, ident = endpoint("target", url), _identity(url)
    with commits_wait_for_a_standby(url):
        conn = psycopg.connect(url, options="-c synchronous_commit=on")
        conn.execute("CREATE TABLE t (a int)")
        pending = _xid_of(conn)

        def finish() -> None:
            with contextlib.suppress(psycopg.Error):
                conn.commit()  # waits for the standby until the session is cancelled

        waiting = threading.Thread(target=finish)
        waiting.start()
        try:
            deadline = time.monotonic() + 30
            while rows(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == [(0,)]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert outcome.resolve(target, ident, pending) == "committed"
            waiting.join(10)
            assert not waiting.is_alive()
            assert rows(url, "SELECT count(*) FROM t") == [(0,)]  # the table is there for all
        finally:
            conn.close()
