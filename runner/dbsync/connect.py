"""Opening the two connections, with the session settings that make row text comparable.

Both sides render values with the same settings (UTC, ISO dates, shortest exact floats, hex
bytea) so that a row's text, and so its digest, is identical on source and target.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError, ConnectionFailed, HostUnreachable
from .redact import redact, remember_secret, secrets_of

SESSION_SETTINGS = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
    # The source filter tests each row against the test tenants' keys, a hashed subplan only
    # when that hash fits in work_mem (times hash_mem_multiplier): past PostgreSQL's default
    # 4MB (~100k keys) the planner falls back to rescanning the keys for every row. Foreign
    # key validation's hash joins go to disk past it too. Memory is taken only as needed, by
    # dbsync's own few connections.
    "SET work_mem = '256MB'",
    # A statement that row-level security would filter fails instead (as in pg_dump): dbsync
    # must see every row or none. The plan refuses such tables first, by name.
    "SET row_security = off",
)


def timeouts_off(server_version_num: int, *, local: bool = False) -> list[str]:
    """Statements that switch off, for this session (or with ``local``, this transaction),
    the timeouts a DBA may set on the role or database for applications. dbsync's statements
    (whole-table COPYs and digests) and its transactions (a snapshot held open while the load
    runs) are long by design and supervised; those timeouts would stop them half-way. pg_dump
    switches them off for its own session for the same reason. PostgreSQL 17 adds the third
    (older servers reject its name)."""
    names = ["statement_timeout", "idle_in_transaction_session_timeout"]
    if server_version_num >= 170000:
        names.append("transaction_timeout")
    scope = "SET LOCAL" if local else "SET"
    return [f"{scope} {name} = 0" for name in names]


Connection = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Endpoint:
    """A database as the user named it: its role in the run and a secret-free description."""

    role: str  # "source" | "target"
    conninfo: str
    description: str


def endpoint(role: str, conninfo: str) -> Endpoint:
    """Validate a libpq URL or keyword string and describe it without its password."""
    for secret in secrets_of(conninfo):
        remember_secret(secret)
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"the {role} is not a valid PostgreSQL URL or connection string: {redact(str(exc))}"
        ) from None
    remember_secret(params.get("password"))  # type: ignore[arg-type]
    user = params.get("user") or "(default user)"
    host = params.get("host") or params.get("hostaddr") or "(local socket)"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or "(default database)"
    return Endpoint(role, conninfo, f"{user}@{host}:{port}/{dbname}")


# libpq's, psycopg's and PgBouncer's words for a server that was never reached, a connection
# that broke on the way, or a server that answered it cannot take a connection now (FATAL, but
# passing: a restart, a failover, a full pool, a role at its connection limit). Anything else,
# such as "password authentication failed" or "database ... does not exist", is a refused login.
_UNREACHABLE = (
    "could not translate host name",
    "failed to resolve host",
    "name or service not known",
    "temporary failure in name resolution",
    "connection refused",
    "timeout expired",
    "timed out",
    "no route to host",
    "network is unreachable",
    "server closed the connection unexpectedly",
    "connection reset",
    "could not receive data from server",
    "could not send startup packet",
    "ssl syscall error",
    "unexpected eof",
    "ssl connection has been closed unexpectedly",
    "no such file or directory",  # a Unix socket that is not there: no server on it
    "too many clients",
    "too many connections for role",
    "too many connections for database",
    "remaining connection slots are reserved",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "terminating connection due to administrator command",
    "canceling authentication due to timeout",
    "server is in hot standby mode",
    "session is read-only",
    "no more connections allowed",  # PgBouncer (DigitalOcean's connection pools)
    "server login has been failing",
    "pgbouncer cannot connect to server",
    "query_wait_timeout",
)
_MANY = "Multiple connection attempts failed. All failures were:"
_ATTEMPT = re.compile(r"\n- (?=host: )")  # psycopg: "- host: %r, port: %r, hostaddr: %r: error"
_QUOTED = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")


def attempts(message: str) -> list[str]:
    """Each connection attempt's error in a failed connection's text. psycopg (3.2 on) tries
    every host of a URL, and every address of a host, itself; when more than one failed it
    puts the last error first, then ``_MANY`` and one ``- host: ..., port: ...: error`` line
    (with its continuation lines) per attempt."""
    if _MANY not in message:
        return [message.strip()]
    listed = message.split(_MANY, 1)[1]
    return [a.strip() for a in _ATTEMPT.split(listed)[1:] if a.strip()] or [message.strip()]


def failure_kind(message: str) -> type[ConnectionFailed]:
    """Which failure a connection error's text describes: :class:`HostUnreachable` when every
    attempt failed to reach a server that would take the login, :class:`ConnectionFailed` (a
    refused login, or a URL the server does not accept) otherwise. One server that refused the
    login makes the whole a refused login, since a retry would meet the same refusal. Names the
    messages echo in quotes (a role, a database, a host) are left out of the comparison: a
    database called "timed out" does not make a missing database a network failure."""
    unreachable = [
        any(m in _QUOTED.sub("", attempt).lower() for m in _UNREACHABLE) for attempt in attempts(message)
    ]
    return HostUnreachable if all(unreachable) else ConnectionFailed


def _hint(kind: type[ConnectionFailed]) -> str:
    if kind is HostUnreachable:
        return "check the host, the port and the cluster's trusted sources; a later run may pass"
    return "check the URL's user, password, database name and SSL settings"


def _failure(ep: Endpoint, exc: psycopg.Error) -> ConnectionFailed:
    """One sentence for a failed connection: each attempt's first line, and what to check."""
    text = str(exc)
    tried = attempts(text)
    said = "; ".join(a.splitlines()[0].strip() for a in tried if a.strip()) or "connection failed"
    if len(tried) > 1:
        said = f"{len(tried)} attempts: {said}"
    kind = failure_kind(text)
    return kind(f"cannot connect to the {ep.role} database {ep.description}: {redact(said)} ({_hint(kind)})")


# How pg_dump and psql say that they could not connect: their own "<tool>: error:" line with
# libpq's text (PostgreSQL 14 on: "connection to server at ... failed: ...", one line per address
# tried; before: "could not connect to server: ...", pg_dump's "connection to database ...
# failed: ...", psql's bare "FATAL: ..."). Anchored there: a connection lost later, or an error
# of the work that quotes a name, reads otherwise ("psql:<stdin>:12: ...", "query failed: ...").
_TOOL_CONNECT = re.compile(
    r"^(?:pg_dump|psql): error: "
    r"(?:connection to (?:server|database)\b[^\n]*\bfailed:|could not connect to server|FATAL:)",
    re.MULTILINE,
)
_TOOL_PREFIX = re.compile(r"^(?:pg_dump|psql): error: ", re.MULTILINE)
_ADDRESS = re.compile(r"\n(?=connection to server )")


def tool_could_not_connect(tool: str, text: str, unchanged: str) -> ConnectionFailed | None:
    """The error for a client tool (pg_dump, psql) that stopped because it could not connect,
    although dbsync's own connection had been taken: the server's slots filled up meanwhile, a
    failover or a network cut came between. It is what dbsync's own connection would have
    raised (exit 12 when a later run may pass, 11 for a refused login), so that the launcher
    runs the job again where it should, instead of "rolled back" (exit 4). ``text``: the tool's
    stderr, already redacted; ``unchanged``: what the run left as it was. None for any other
    failure."""
    if not _TOOL_CONNECT.search(text):
        return None
    tried = [a.strip() for a in _ADDRESS.split(_TOOL_PREFIX.sub("", text).strip()) if a.strip()]
    # as for dbsync's own connection: one address that refused the login makes it a refusal
    unreachable = all(failure_kind(attempt) is HostUnreachable for attempt in tried)
    kind = HostUnreachable if unreachable else ConnectionFailed
    said = "; ".join(" ".join(line.strip() for line in a.splitlines()) for a in tried)
    return kind(f"{tool} could not connect: {said}; {unchanged} ({_hint(kind)})")


def connect(ep: Endpoint, *, connect_timeout: int = 15) -> Connection:
    """Connect in autocommit mode with the comparable session settings applied."""
    try:
        conn = psycopg.connect(
            ep.conninfo,
            autocommit=True,
            connect_timeout=connect_timeout,
            application_name=f"dbsync-{ep.role}",
        )
    except psycopg.Error as exc:
        raise _failure(ep, exc) from None
    try:
        with conn.cursor() as cur:
            for statement in (*SESSION_SETTINGS, *timeouts_off(conn.info.server_version)):
                cur.execute(statement)
    except psycopg.Error as exc:
        kind = HostUnreachable if conn.broken else ConnectionFailed
        conn.close()
        raise kind(
            f"the {ep.role} database {ep.description} did not take dbsync's session settings: "
            f"{redact(exc.diag.message_primary or str(exc))}"
        ) from None
    return conn


def close_all(*conns: Connection | None) -> None:
    """Roll back and close each open connection of a run, as its last act: what was not
    committed is undone, and a connection already gone (whose transaction the server has
    aborted) is only closed."""
    for conn in conns:
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            conn.close()
