"""What became of a transaction whose COMMIT was interrupted: asked of the server.

A signal (a cancelled CI job) or a lost connection while COMMIT is in flight leaves dbsync not
knowing whether the target committed: psycopg cancels the statement and re-raises either way,
and the server may already have written its commit record (a COMMIT waiting for a synchronous
standby has; one still running deferred constraint triggers has not). PostgreSQL keeps each
transaction's fate in its commit log, and ``txid_status`` reads it from any session. So the
runs note their transaction's id before COMMIT and, when COMMIT is interrupted, ask on a fresh
connection. "committed" and "aborted" are final. "in progress" means the old session still
runs the COMMIT: a COMMIT waiting for a synchronous standby stays so, and one whose client
vanished with the network does not notice; that session (the noted process id, still holding
the noted transaction) is cancelled, which ends the wait with the commit standing or stops
deferred work with it rolled back, and the question is asked again until a short deadline (a
cancelled CI job gives a few seconds before it kills). Signals are ignored meanwhile, so that
a second one cannot turn a settled answer into a wrong one. Without an answer the outcome stays
unknown, and the message gives the query that settles it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import psycopg

from .connect import Endpoint, connect
from .errors import DbsyncError
from .identity import Identity, identify
from .sqlfiles import query

Outcome = Literal["committed", "aborted"]

#: How long to keep asking: within the grace a CI runner gives a cancelled job.
WAIT_SECONDS = 5.0
_INTERVAL = 0.2


@dataclass(frozen=True)
class Pending:
    """The transaction a COMMIT is about to end: its id (txid_current, epoch included) and its
    session's process id."""

    xid: str
    pid: int


def ask_later(xid: str) -> str:
    """The sentence that tells a DBA how to settle an unknown outcome by hand."""
    return (
        f"SELECT txid_status({xid}) on the target tells (committed or aborted; 'in progress' while "
        f"the session with backend_xid {int(xid) % 2**32} in pg_stat_activity still runs it), "
        "asked of the same primary: after a failover, a promoted standby that never saw the "
        "transaction may have given its number to another one, so compare the data instead"
    )


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the duration, in the main thread (elsewhere handlers cannot
    be set): the few seconds of asking end on their own, and the answer must not be lost to a
    second signal. The run is being interrupted already, or is committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def resolve(
    target: Endpoint, identity: Identity, pending: Pending, *, wait_seconds: float = WAIT_SECONDS
) -> Outcome | None:
    """ "committed" or "aborted" for ``pending`` in the database ``identity`` names, or None
    when that cannot be told within ``wait_seconds``. A connection that reaches another
    database (a multi-host URL that now picks another server) is not asked: its commit log is
    not the transaction's."""
    deadline = time.monotonic() + wait_seconds
    try:
        with signals_held():
            return _ask(target, identity, pending, deadline)
    except KeyboardInterrupt:
        return None  # a signal outside the main thread's hold: the outcome stays unknown


def _ask(target: Endpoint, identity: Identity, pending: Pending, deadline: float) -> Outcome | None:
    cancelled = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            conn = connect(target, connect_timeout=max(1, round(remaining)))
        except DbsyncError:
            conn = None
        if conn is not None:
            with conn:
                try:
                    # no statement may outlast the deadline (connect switched the timeouts off)
                    conn.execute(f"SET statement_timeout = {max(1, int(remaining * 1000))}")
                    there = identify(conn)
                    if (there.system_identifier, there.db_oid) != (
                        identity.system_identifier,
                        identity.db_oid,
                    ):
                        return None
                    while True:
                        row = conn.execute(query("select_transaction_status", xid=pending.xid)).fetchone()
                        status = row[0] if row else None
                        if status == "committed" or status == "aborted":
                            return status
                        if status is None or time.monotonic() >= deadline:
                            return None
                        if not cancelled:  # "in progress": its session still runs the COMMIT
                            conn.execute(
                                query("cancel_orphaned_commit", xid=pending.xid, pid=str(pending.pid))
                            )
                            cancelled = True
                        time.sleep(_INTERVAL)
                except (DbsyncError, psycopg.Error):
                    pass  # the connection broke, or a statement took too long: until the deadline
        if time.monotonic() >= deadline:
            return None
        time.sleep(_INTERVAL)
