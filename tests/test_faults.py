"""Failures at every step leave the target exactly as it was, and production is never changed.

Each run injects a fault through ``DBSYNC_FAULT`` (see ``dbsync.faults``): an exception, or a
SIGKILL of the whole process as an OOM killer or a cancelled CI job would deliver. The proof is
a whole-database checksum (rows, sequences, schema) of both databases before and after, computed
by ``tests.checksum``, which shares no code with dbsync.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.checksum import snapshot
from tests.test_sync import execute, ok, rows, sync

CHECKPOINTS = [
    "connect",
    "inspect",
    "plan",
    "lock",
    "backup",
    "backup.stream",
    "backup.check",
    "preserve",
    "stage",
    "stage.load",
    "scope",
    "remap",
    "rekey",
    "apply",
    "apply.insert",
    "sequences",
    "prove",
    "prove.end",
    "commit",
]
# Before the target transaction opens nothing can have changed, and the run fails as an
# internal error (exit 1); from "lock" on, the transaction is rolled back (exit 4).
BEFORE_TRANSACTION = {"connect", "inspect", "plan"}


@pytest.fixture(scope="module")
def databases(sample_databases: Any) -> Any:
    """One production and one UAT database shared by the fault runs: a failed run must leave
    them unchanged, which each test checks, so sharing them is itself part of the proof."""
    prod = sample_databases.create(0, "prod", "deferrable", 1)
    uat = sample_databases.create(1, "uat", "deferrable", 1)
    yield prod, uat
    prod.cluster.drop_database(prod.dbname)
    uat.cluster.drop_database(uat.dbname)


@pytest.fixture(scope="module")
def checksums(databases: Any) -> tuple[str, str]:
    prod, uat = databases
    return snapshot(prod).checksum, snapshot(uat).checksum


@pytest.mark.parametrize("how", ["raise", "kill", "term"])
@pytest.mark.parametrize("where", CHECKPOINTS)
def test_fault_leaves_target_unchanged(
    databases: Any, checksums: tuple[str, str], tmp_path: Path, where: str, how: str
) -> None:
    """An exception, a SIGKILL, and a SIGTERM (a cancelled CI job: the run unwinds, rolls back
    and exits 130) at each checkpoint."""
    prod, uat = databases
    fault = where if how == "raise" else f"{where}:{how}"
    proc, report = sync(prod, uat, tmp_path, env={"DBSYNC_FAULT": fault})
    if how == "kill":
        assert proc.returncode == -signal.SIGKILL
    elif how == "term":
        assert proc.returncode == 130, proc.stderr
        assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
        assert report["status"] == "interrupted", report
    else:
        assert proc.returncode == (1 if where in BEFORE_TRANSACTION else 4), proc.stderr
        assert f"fault injected at {where}" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert report["error"]["step"] == where.split(".")[0]
        if where not in BEFORE_TRANSACTION:
            assert report["status"] == "rolled_back"
            assert "rolled back" in proc.stderr
    prod_after, uat_after = snapshot(prod), snapshot(uat)
    assert prod_after.checksum == checksums[0], prod_after.diff(snapshot(prod))
    assert uat_after.checksum == checksums[1]
    # No session of ours is left holding locks on the target.
    assert rows(uat, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbsync%'") == [(0,)]


def test_after_the_faults_a_clean_run_succeeds(databases: Any, tmp_path: Path) -> None:
    prod, uat = databases
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["status"] == "committed"


def test_failed_proof_rolls_back_and_names_the_table(make_db: Any, tmp_path: Path) -> None:
    """A UAT trigger that touches a user whenever an order is inserted: the "untouched" proof
    catches the change to auth_user, and everything is rolled back."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat,
        """
        CREATE FUNCTION touch_user() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE auth_user SET last_login = now() WHERE id = (SELECT min(id) FROM auth_user);
              RETURN NEW; END $$;
        CREATE TRIGGER touch AFTER INSERT ON apps_orders_order FOR EACH STATEMENT EXECUTE FUNCTION touch_user();
        """,
    )
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "proof" in proc.stderr and "auth_user" in proc.stderr
    failed = [p for p in report["proofs"] if not p["ok"]]
    assert [(p["name"], p["subject"]) for p in failed] == [("untouched", "auth_user")]
    assert report["status"] == "rolled_back"
    assert snapshot(uat).checksum == before.checksum


def test_dangling_reference_from_preserved_row_fails_the_foreign_key_proof(
    make_db: Any, tmp_path: Path
) -> None:
    """A UAT test tenant's order that points at another (non-test) tenant's customer: that
    customer is replaced, so the reference would dangle. The anti-join proof names the
    constraint and the run is rolled back."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat,
        "INSERT INTO apps_customers_customer (id, tenant_id, name, email) SELECT 77777777, t.id, 'stale', "
        "'s@example.com' FROM apps_tenants_tenant t WHERE t.schema_name NOT LIKE 'test%' ORDER BY t.id LIMIT 1;"
        "UPDATE apps_orders_order SET customer_id = 77777777 WHERE id = (SELECT min(o.id) FROM apps_orders_order o "
        "JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE t.schema_name LIKE 'test%')",
    )
    assert rows(prod, "SELECT count(*) FROM apps_customers_customer WHERE id = 77777777") == [(0,)]
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    assert proc.returncode == 4, proc.stderr
    failed = [p for p in report["proofs"] if not p["ok"]]
    assert any(p["name"] == "foreign_key" and "apps_orders_order" in p["subject"] for p in failed), failed
    assert snapshot(uat).checksum == before.checksum
    assert json.dumps(report).count("postgres-pw") == 0
