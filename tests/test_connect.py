"""dbsync.connect: the timeouts switched off for dbsync's own sessions, and how a failed
connection is classified (a refused login against an unreachable host)."""

from __future__ import annotations

import pytest

from dbsync.connect import failure_kind, timeouts_off
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
