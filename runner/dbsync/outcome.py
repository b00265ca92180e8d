"""What became of a transaction whose COMMIT was interrupted: asked of the server.

A signal (a cancelled CI job) or a lost connection while COMMIT is in flight leaves dbsync not
knowing whether the target committed: psycopg cancels the statement and re-raises either way,
and the server may already have written its commit record (a COMMIT waiting for a synchronous
standby has; one still running deferred constraint triggers has not). PostgreSQL keeps each
transaction's fate in its commit log, and ``txid_status`` reads it from any session. So the
runs note their transaction's id before COMMIT and, when COMMIT is interrupted, ask on a fresh
connection. "committed" and "aborted" are final. "in progress" (the old session is still
finishing, or cannot be reached) is asked again until a short deadline: a cancelled CI job
gives a few seconds before it kills. After that the outcome stays unknown, and the id goes into
the message so that a DBA can ask the same question.
"""

from __future__ import annotations

import time
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


def ask_later(xid: str) -> str:
    """The sentence that tells a DBA how to settle an unknown outcome by hand."""
    return f"SELECT txid_status({xid}) on the target says which (transaction {xid})"


def resolve(
    target: Endpoint, identity: Identity, xid: str, *, wait_seconds: float = WAIT_SECONDS
) -> Outcome | None:
    """"committed" or "aborted" for transaction ``xid`` of the database ``identity`` names, or
    None when that cannot be told within ``wait_seconds``. A connection that reaches another
    database (a multi-host URL that now picks another server) is not asked: its commit log is
    not the transaction's, unless it is a physical standby of it, which has the same system
    identifier and database oid."""
    try:
        return _ask(target, identity, xid, time.monotonic() + wait_seconds)
    except KeyboardInterrupt:
        return None  # a second signal stops the asking: the outcome stays unknown


def _ask(target: Endpoint, identity: Identity, xid: str, deadline: float) -> Outcome | None:
    while True:
        remaining = deadline - time.monotonic()
        try:
            conn = connect(target, connect_timeout=max(1, round(remaining)))
        except DbsyncError:
            conn = None
        if conn is not None:
            with conn:
                try:
                    there = identify(conn)
                    if (there.system_identifier, there.db_oid) != (
                        identity.system_identifier,
                        identity.db_oid,
                    ):
                        return None
                    while True:
                        row = conn.execute(query("select_transaction_status", xid=xid)).fetchone()
                        status = row[0] if row else None
                        if status == "committed" or status == "aborted":
                            return status
                        if status is None or time.monotonic() >= deadline:
                            return None
                        time.sleep(_INTERVAL)
                except (DbsyncError, psycopg.Error):
                    pass  # the connection broke: try another until the deadline
        if time.monotonic() >= deadline:
            return None
        time.sleep(_INTERVAL)
