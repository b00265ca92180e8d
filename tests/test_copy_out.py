"""dbsync.copy_out: COPY TO STDOUT read from libpq directly, against real PostgreSQL.

Its output is compared with psycopg's own COPY iterator on the same statements, and its error
paths leave the connection usable, as psycopg's would."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbsync.copy_out import copy_out


def _psycopg_copy(conn: psycopg.Connection[Any], statement: str) -> bytes:
    with conn.cursor().copy(statement) as out:
        return b"".join(bytes(data) for data in out)


def test_same_bytes_as_psycopg_in_whole_rows(prod_url: Any) -> None:
    """Every table of the sample, a filtered SELECT and a large generated one: the same bytes as
    psycopg's iterator, cut only at row ends, each piece near the chunk size."""
    statements = [
        "COPY apps_orders_order TO STDOUT",
        "COPY (SELECT id, email FROM apps_customers_customer WHERE id % 3 = 0) TO STDOUT",
        "COPY (SELECT g, repeat('x', g % 300), g * 1.5 FROM generate_series(1, 200000) g) TO STDOUT",
        "COPY (SELECT 1 WHERE false) TO STDOUT",  # no rows at all
    ]
    with psycopg.connect(prod_url) as conn:
        tables = conn.execute(
            "SELECT format('COPY %I.%I TO STDOUT', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        statements += [str(row[0]) for row in tables]
        for statement in statements:
            pieces = list(copy_out(conn, sql.SQL(statement), chunk=4096))
            assert b"".join(pieces) == _psycopg_copy(conn, statement), statement
            assert all(piece.endswith(b"\n") for piece in pieces)
            assert all(len(piece) >= 4096 for piece in pieces[:-1])
        assert len(list(copy_out(conn, sql.SQL(statements[2]), chunk=4096))) > 100
        # still in the same transaction, still usable
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SELECT 42").fetchone() == (42,)


def test_an_error_half_way_is_psycopgs_and_the_connection_recovers(prod_url: Any) -> None:
    """Division by zero at row 150,000 of a COPY: some data arrived, then psycopg's own
    DivisionByZero; after a rollback the connection works."""
    statement = sql.SQL("COPY (SELECT 1 / (150000 - g) FROM generate_series(1, 200000) g) TO STDOUT")
    with psycopg.connect(prod_url) as conn:
        got = 0
        with pytest.raises(psycopg.errors.DivisionByZero) as caught:
            for piece in copy_out(conn, statement):
                got += len(piece)
        assert got > 0
        assert caught.value.diag.message_primary == "division by zero"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_runs_in_the_connections_transaction_as_psycopg_would(prod_url: Any) -> None:
    """On a fresh connection (no autocommit) the COPY runs inside psycopg's transaction, at the
    connection's isolation level; with autocommit, outside any."""
    with psycopg.connect(prod_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        out = b"".join(copy_out(conn, sql.SQL("COPY (SELECT current_setting('transaction_isolation')) TO STDOUT")))
        assert out == b"repeatable read\n"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    with psycopg.connect(prod_url, autocommit=True) as conn:
        assert b"".join(copy_out(conn, sql.SQL("COPY (SELECT 1) TO STDOUT"))) == b"1\n"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_statement_that_fails_at_once_or_is_no_copy(prod_url: Any) -> None:
    with psycopg.connect(prod_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            list(copy_out(conn, sql.SQL("COPY no_such_table TO STDOUT")))
        conn.rollback()
        with pytest.raises(psycopg.Error):
            list(copy_out(conn, sql.SQL("SELECT 1")))
        conn.rollback()
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_abandoned_half_way_cancels_and_leaves_the_connection_between_statements(prod_url: Any) -> None:
    """A reader that stops after the first piece (the target failed, say): the statement is
    cancelled and read to its end, not left streaming; the connection takes new statements
    after a rollback, and the server has no COPY running for it."""
    statement = sql.SQL("COPY (SELECT g, repeat('y', 200) FROM generate_series(1, 3000000) g) TO STDOUT")
    with psycopg.connect(prod_url) as conn:
        pieces = copy_out(conn, statement)
        first = next(pieces)
        assert first
        pieces.close()
        assert conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.ACTIVE
        conn.rollback()
        pid = conn.info.backend_pid
        with psycopg.connect(prod_url, autocommit=True) as other:
            row = other.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        assert row is not None and row[0] == "idle"
        assert conn.execute("SELECT 3").fetchone() == (3,)
