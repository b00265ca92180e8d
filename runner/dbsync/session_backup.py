"""A target's backup taken inside the psql session that will replace it.

``dbsync restore`` (staging) and ``dbsync backups restore`` (any target) both back the target
up in the transaction that then replaces it: writers are locked out first
(``sql/lock_user_tables.sql``), the snapshot exported after the locks is the one pg_dump and
the manifest's row counts read, so the backup holds exactly what is replaced (a write landing
between a separate backup and the replace would be in neither). Readers go on until the
replace takes its own locks. It returns once pg_dump has exited; the caller seals the backup
(read-back, manifest) beside its work and waits for that before COMMIT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from . import faults, fingerprint
from .backup import BackupFailed, Owner, UnsealedBackup, dump_backup, series_for
from .compression import Compression
from .connect import Connection, Endpoint
from .errors import RolledBack
from .identity import Identity
from .pgtools import Tool
from .psql_session import PsqlSession
from .sqlfiles import query
from .store import BackupStore


def back_up_in_session(
    session: PsqlSession,
    conn: Connection,
    store: BackupStore,
    *,
    target: Endpoint,
    ident: Identity,
    pg_dump: Tool,
    kind: str,
    run_id: str,
    compression: Compression,
    lock_timeout_seconds: float,
    in_use: Callable[[], RolledBack],
    unchanged: str,
    warn: Callable[[str], None],
) -> tuple[str, Owner, UnsealedBackup]:
    """Lock writers out in ``session``, then dump ``target`` into series
    ``<dbname>-<host>-<kind>`` (see :func:`backup.series_for`, which ``warn`` is told about
    when it picks another) from the snapshot exported after the locks; ``conn`` (another
    connection to the target) counts the rows in that snapshot. Returns the series, the owner
    (for its retention) and the dump, not yet sealed. A lock not granted within
    ``lock_timeout_seconds`` raises ``in_use()``; a psql that stopped meanwhile is named, with
    ``unchanged`` (``"staging was not changed"``)."""
    owner = Owner(ident.system_identifier, ident.dbname, target.description)
    series, moved = series_for(store, target, kind, owner, str(conn.info.port))  # before the locks
    if moved:
        warn(moved)
    session.send(query("lock_user_tables").as_string() + "\n")
    try:
        [snapshot] = session.ask("SELECT pg_export_snapshot();")
    except RolledBack as exc:
        if "lock timeout" in str(exc):
            raise in_use() from None
        raise
    faults.checkpoint("target-backup.locked")  # writers wait; pg_dump has not started
    try:
        counts = _counts(conn, snapshot, lock_timeout_seconds)
    except psycopg.errors.LockNotAvailable:
        raise in_use() from None
    try:
        unsealed = dump_backup(
            store,
            conninfo=target.conninfo,
            tool=pg_dump,
            series=series,
            run_id=run_id,
            kind=kind,
            database={
                "description": target.description,
                "dbname": ident.dbname,
                "system_identifier": ident.system_identifier,
            },
            server_version=ident.server_version,
            tables=counts,
            snapshot=snapshot,
            compression=compression,
            step="target-backup",
            lock_wait_seconds=lock_timeout_seconds,
        )
    except BackupFailed as exc:
        if session.proc.poll() is not None:  # pg_dump lost its snapshot with the session
            raise RolledBack(f"psql stopped: {session.reason()}; {unchanged}") from None
        if "LOCK TABLE" in str(exc):  # --lock-wait-timeout: a lock queued behind ours
            raise in_use() from None
        raise
    return series, owner, unsealed


def _counts(conn: Connection, snapshot: str, lock_timeout_seconds: float) -> dict[str, int]:
    """Row counts for the manifest, read in the snapshot the backup is dumped from (with a lock
    timeout, as pg_dump's: a lock request queued behind one that waits on the session's locks
    would wait for ever)."""
    cur: psycopg.Cursor[Any]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        timeout = f"{int(lock_timeout_seconds * 1000)}ms"
        cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(timeout)))
        return fingerprint.table_counts(cur)
