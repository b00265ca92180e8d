"""pg_restore's --single-transaction script, unwrapped so that it joins dbsync's transaction
(pure tests of dbsync.restore_script; the restores with large objects in test_restore.py run
real pg_restore scripts through it), and the session's check that its transaction survived."""

from __future__ import annotations

from typing import Any

import pytest

from dbsync.errors import OutcomeUnknown
from dbsync.pgtools import find_tool
from dbsync.psql_session import PsqlSession
from dbsync.restore_script import Unwrapped
from tests.test_sync import rows

HEAD = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n-- Dumped by pg_dump\n\nBEGIN;\n\nSET x = 0;\n"
)
BODY = (
    b"COPY public.t (v) FROM stdin;\nCOMMIT;\nBEGIN;\n\\.\n\n"  # rows that read like statements
    b"BEGIN;\n\nSELECT pg_catalog.lo_open('1', 131072);\n"
    b"CREATE PROCEDURE p() LANGUAGE plpgsql AS $$\nBEGIN\nCOMMIT;\nEND\n$$;\n"
)
TAIL = b"\nCOMMIT;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"


def unwrap(script: bytes, size: int) -> tuple[bytes, Unwrapped]:
    unwrapped = Unwrapped(script[i : i + size] for i in range(0, len(script), size))
    return b"".join(unwrapped), unwrapped


@pytest.mark.parametrize("size", [1, 5, 64, 100_000])
def test_only_the_leading_begin_and_the_final_commit_go(size: int) -> None:
    body = BODY * 3000  # longer than the held-back tail
    out, unwrapped = unwrap(HEAD + body + TAIL, size)
    assert unwrapped.complete
    assert out == HEAD.replace(b"\nBEGIN;\n", b"\n") + body + TAIL.replace(b"\nCOMMIT;\n", b"\n", 1)


@pytest.mark.parametrize(
    "script",
    [
        HEAD + BODY,  # pg_restore stopped half-way: no final COMMIT
        HEAD + BODY + TAIL + b"SELECT 1;\n",  # a statement after the COMMIT: not pg_restore's end
        HEAD.replace(b"BEGIN;", b"") + BODY + TAIL,  # no BEGIN: not a --single-transaction script
    ],
    ids=["stopped", "statement-after", "no-begin"],
)
def test_a_script_of_another_shape_is_not_complete(script: bytes) -> None:
    out, unwrapped = unwrap(script, 7)
    assert not unwrapped.complete
    assert out.count(b"\nCOMMIT;\n") >= script.count(b"\nCOMMIT;\n") - 1


def test_a_commit_in_what_the_session_ran_is_caught_before_its_own(make_db: Any) -> None:
    """A COMMIT that slipped into the streamed SQL ends the session's transaction early: its
    COMMIT then says so (exit 5, the outcome is not what was asked) instead of committing."""
    uat = make_db(1, "uat")
    session = PsqlSession(find_tool("psql", 15), uat)
    try:
        session.begin()
        session.send("CREATE TABLE z_early (i int);\nCOMMIT;\nBEGIN;\n")
        with pytest.raises(OutcomeUnknown, match="ended before dbsync's COMMIT"):
            session.commit()
    finally:
        session.abandon()
    assert rows(uat, "SELECT to_regclass('z_early') IS NOT NULL")[0][0]  # what the guard reports
