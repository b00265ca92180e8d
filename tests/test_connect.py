"""dbsync.connect's session settings: the timeouts switched off for dbsync's own sessions."""

from __future__ import annotations

from dbsync.connect import timeouts_off


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
