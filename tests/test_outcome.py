"""outcome.resolve against real clusters: what the server's commit log says about a
transaction whose COMMIT dbsync could not see finish (the end-to-end cases, a signal or a lost
connection during a real COMMIT, are in test_faults and test_restore)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from dbsync import outcome
from dbsync.connect import endpoint
from dbsync.identity import Identity, identify


def _xid_of(conn: psycopg.Connection[Any]) -> str:
    [(xid,)] = conn.execute("SELECT txid_current()::text").fetchall()
    return str(xid)


def _identity(url: str) -> Identity:
    with psycopg.connect(url, autocommit=True) as conn:
        return identify(conn)  # type: ignore[arg-type]


def test_committed_and_aborted_are_told_at_once(make_db: Any) -> None:
    url = make_db(1, "empty")
    target, ident = endpoint("target", url), _identity(url)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (a int)")
        committed = _xid_of(conn)
        conn.commit()
        conn.execute("INSERT INTO t VALUES (1)")
        aborted = _xid_of(conn)
        conn.rollback()
    started = time.monotonic()
    assert outcome.resolve(target, ident, committed) == "committed"
    assert outcome.resolve(target, ident, aborted) == "aborted"
    assert time.monotonic() - started < 2  # no waiting when the log has the answer


def test_a_transaction_still_in_progress_is_unknown_after_the_deadline(make_db: Any) -> None:
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
    assert outcome.resolve(closed, ident, "1234", wait_seconds=1.0) is None
    assert time.monotonic() - started < 5


def test_a_second_signal_stops_the_asking(make_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal while the server is asked: the outcome stays unknown rather than the second
    signal escaping as an ordinary interruption ("rolled back", which may be false)."""
    url = make_db(1, "empty")

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(outcome, "connect", interrupted)
    assert outcome.resolve(endpoint("target", url), _identity(url), "1234") is None

