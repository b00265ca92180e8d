"""Is the source the target? Decided by the servers, never by comparing URL strings.

Two probes, strongest first:

1. An advisory lock: the source takes a session lock on a random 64-bit key, the target tries
   the same key. Advisory locks live per database, so the target fails to take it exactly when
   both connections reach the same database, however the URLs are spelled (host aliases,
   pooled ports, IP vs name). No privilege is needed.
2. If the probe cannot run (a standby source, say): the cluster's system identifier, the
   database oid and name. A forked cluster shares the system identifier, so this fallback may
   refuse two distinct databases, which is the safe side to err on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from .connect import Connection
from .errors import ConnectionFailed, HostUnreachable, SameDatabase
from .sqlfiles import query


@dataclass(frozen=True)
class Identity:
    system_identifier: str | None
    dbname: str
    db_oid: int
    server_version_num: int
    server_version: str
    role: str


def identify(conn: Connection) -> Identity:
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query("select_database_identity"))
            row = cur.fetchone()
    except psycopg.Error as exc:
        # A connection that broke just after its login is a network failure, not a wrong URL.
        kind = HostUnreachable if conn.broken else ConnectionFailed
        raise kind(f"cannot read the database identity: {exc.diag.message_primary or exc}") from None
    assert row is not None
    return Identity(**row)


def _same_by_lock(source: Connection, target: Connection) -> bool | None:
    key = secrets.randbits(63)
    try:
        with source.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            held = cur.fetchone()
        if not held or not held[0]:
            return None
        try:
            with target.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                got = cur.fetchone()
                if got and got[0]:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    return False
                return True
        finally:
            with source.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    except psycopg.Error:
        return None


def refuse_same_database(
    source: Connection, target: Connection, src: Identity, tgt: Identity, target_description: str
) -> None:
    """Raise :class:`SameDatabase` when both connections reach one database."""
    same = _same_by_lock(source, target)
    if same is None:
        same = (
            src.system_identifier is not None
            and src.system_identifier == tgt.system_identifier
            and src.db_oid == tgt.db_oid
            and src.dbname == tgt.dbname
        )
    if same:
        raise SameDatabase(
            f"source and target are the same database ({tgt.dbname!r} on cluster "
            f"{tgt.system_identifier}, reached as {target_description}); refusing to overwrite "
            "production with itself"
        )
