"""dbsync.connect: the timeouts switched off for dbsync's own sessions, and how a failed
connection is classified (a refused login against an unreachable host)."""

from __future__ import annotations

import pytest

from dbsync.connect import failure_kind, timeouts_off, tool_could_not_connect
from dbsync.errors import ConnectionFailed, HostUnreachable


def test_timeouts_off_names_postgresql_17s_third_timeout_only_from_17() -> None:
    """PostgreSQL 15 and 16 reject transaction_timeout by name; 17 adds it. The test clusters
    are 15, so this is the one place the 17 branch is checked (as text, not on a server)."""
    assert timeouts_off(150018) == ["SET statement_timeout = 0", "SET idle_in_transaction_session_timeout = 0"]
    assert timeouts_off(160000) == timeouts_off(150018)
    assert timeouts_off(170000, local=True) == [
        "SET LOCAL statement_timeout = 0",
        "SET LOCAL idle_in_transaction_session_timeout = 0",
        "SET LOCAL transaction_timeout = 0",
    ]


REFUSED_LOGIN = (
    'connection failed: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password '
    'authentication failed for user "doadmin"'
)
REFUSED_PORT = (
    'connection failed: connection to server at "10.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)
# psycopg 3.3's text when more than one attempt failed (psycopg/connection.py)
MANY = (
    "{}\nMultiple connection attempts failed. All failures were:\n"
    "- host: 'a.example', port: '5432', hostaddr: '10.0.0.1': {}\n"
    "- host: 'b.example', port: '5432', hostaddr: '10.0.0.2': {}"
)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('connection to server at "10.0.0.5", port 25060 failed: FATAL:  password authentication '
         'failed for user "doadmin"', ConnectionFailed),
        ('connection to server at "h", port 5432 failed: FATAL:  database "x" does not exist', ConnectionFailed),
        ('connection to server at "h", port 5432 failed: FATAL:  no pg_hba.conf entry for host', ConnectionFailed),
        ('connection to server at "h", port 5432 failed: server does not support SSL, but SSL was required',
         ConnectionFailed),
        ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on '
         "that host and accepting TCP/IP connections?", HostUnreachable),
        ('connection to server at "10.0.0.5", port 25060 failed: timeout expired', HostUnreachable),
        ("failed to resolve host 'db.example.invalid': [Errno -2] Name or service not known", HostUnreachable),
        ('could not translate host name "db.example.invalid" to address: Name or service not known',
         HostUnreachable),
        ('connection to server at "h", port 5432 failed: FATAL:  sorry, too many clients already', HostUnreachable),
        ('connection to server at "h", port 5432 failed: FATAL:  the database system is starting up',
         HostUnreachable),
        ('connection to server on socket "/nowhere/.s.PGSQL.5432" failed: No such file or directory',
         HostUnreachable),
        ('connection to server at "h", port 5432 failed: FATAL:  too many connections for role "app"',
         HostUnreachable),
        ("connection to server at \"h\", port 25061 failed: FATAL:  no more connections allowed (max_client_conn)",
         HostUnreachable),
        ('connection to server at "h", port 5432 failed: SSL SYSCALL error: EOF detected', HostUnreachable),
        # names the server echoes in quotes do not count: a missing database called "timed out"
        ('connection to server at "h", port 5432 failed: FATAL:  database "timed out" does not exist',
         ConnectionFailed),
        ('connection to server at "h", port 5432 failed: FATAL:  password authentication failed for user '
         '"connection reset"', ConnectionFailed),
        # psycopg (3.2 on) tries each host and address itself: the last error first, then each
        # attempt. One server that refused the login makes it a refused login, whatever the order.
        (MANY.format("connection timeout expired", REFUSED_LOGIN, "connection timeout expired"), ConnectionFailed),
        (MANY.format(REFUSED_LOGIN, "connection timeout expired", REFUSED_LOGIN), ConnectionFailed),
        (MANY.format("connection timeout expired", REFUSED_PORT, "connection timeout expired"), HostUnreachable),
    ],
)
def test_failure_kind_tells_a_refused_login_from_an_unreachable_host(
    message: str, kind: type[ConnectionFailed]
) -> None:
    """The texts are libpq's and psycopg's (the real ones for a wrong password, an unknown
    database, a closed port and an unresolvable name are also checked end to end in
    test_sync's connection tests)."""
    assert failure_kind(message) is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (  # the server's slots filled up after dbsync connected (PostgreSQL 14 on)
            'pg_dump: error: connection to server at "10.0.0.1", port 25060 failed: FATAL:  sorry, '
            "too many clients already",
            HostUnreachable,
        ),
        (
            'psql: error: connection to server at "10.0.0.1", port 25060 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?",
            HostUnreachable,
        ),
        (  # a password that changed between dbsync's connection and the tool's
            'psql: error: connection to server at "10.0.0.1", port 25060 failed: FATAL:  password '
            'authentication failed for user "doadmin"',
            ConnectionFailed,
        ),
        ("pg_dump: error: could not connect to server: No route to host", HostUnreachable),  # libpq 13
        ("psql: error: FATAL:  sorry, too many clients already", HostUnreachable),  # psql 13
        (  # one address refused, the other refused the login: a refusal, as dbsync's own says
            'psql: error: connection to server at "::1", port 25060 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?\n"
            'connection to server at "10.0.0.1", port 25060 failed: FATAL:  password '
            'authentication failed for user "doadmin"',
            ConnectionFailed,
        ),
        (  # libpq 13's refused login
            'pg_dump: error: connection to database "app" failed: FATAL:  password authentication '
            'failed for user "doadmin"',
            ConnectionFailed,
        ),
    ],
)
def test_a_tool_that_could_not_connect_fails_as_a_connection_would(
    text: str, kind: type[ConnectionFailed]
) -> None:
    """pg_dump and psql connect on their own, after dbsync's connection: their connection
    failure is exit 12 or 11, as dbsync's own would be (the launcher runs 12 again), not the
    "rolled back" of any other failure of theirs."""
    error = tool_could_not_connect("pg_dump", text, "nothing was changed")
    assert type(error) is kind
    assert str(error).startswith("pg_dump could not connect: ")
    assert "nothing was changed" in str(error) and "\n" not in str(error)
    assert "error: " not in str(error)  # the tool's own prefix is not repeated


@pytest.mark.parametrize(
    "text",
    [
        'pg_dump: error: Dumping the contents of table "orders" failed: PQgetCopyData() failed.\n'
        "pg_dump: detail: Error message from server: server closed the connection unexpectedly",
        "psql:<stdin>:12: FATAL:  terminating connection due to administrator command\n"
        "psql:<stdin>:12: error: connection to server was lost",
        'psql:<stdin>:3: ERROR:  relation "public.orders" does not exist',
        # a table whose name reads like libpq's text, in an error of the dump itself
        'pg_dump: error: Dumping the contents of table "connection to server a failed: b" failed: '
        "PQgetCopyData() failed.",
        "pg_dump: error: query failed: FATAL:  terminating connection due to administrator command",
        "",
    ],
)
def test_a_tool_failure_after_it_connected_is_not_a_connection_failure(text: str) -> None:
    """A connection lost half-way, or any error of the work itself, is not "could not connect":
    those keep their own exit codes (the run may have changed and rolled back things)."""
    assert tool_could_not_connect("psql", text, "nothing was changed") is None
