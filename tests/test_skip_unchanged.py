"""``skip_unchanged``: a direct-load table whose rows already are production's is left in place.

Every test here compares against the same sync with the skip turned off (``skip_unchanged =
false``), run on a second UAT that started identical, by a whole-database checksum
(``tests.checksum``, which shares no code with dbsync): leaving a table in place must give
exactly the database a full reload gives. Production lives on cluster 0, the two UATs on
clusters 1 and 2.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.checksum import snapshot
from tests.test_sync import TEST_TENANTS, execute, ok, rows, sync

RELOAD = "skip_unchanged = false\n"

REAL_LINES = (
    "SELECT l.id, l.ctid::text, l.xmin::text FROM apps_orders_orderline l "
    "JOIN apps_orders_order o ON o.id = l.order_id JOIN apps_tenants_tenant t ON t.id = o.tenant_id "
    f"WHERE NOT (t.{TEST_TENANTS}) ORDER BY l.id"
)


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"config-{abs(hash(text))}.toml"
    path.write_text(text)
    return str(path)


def _synced_twins(
    make_db: Any, tmp_path: Path, *, prod_sql: str = "", uat_sql: str = "", after: str = ""
) -> tuple[str, str, str, dict[str, Any]]:
    """Production and two UATs (``prod_sql`` and ``uat_sql`` run on them first), each synced
    once from it (all tables loaded: UAT's own data differs), then ``after`` run on each, so
    that both hold the same database. Also returns the first UAT's first report."""
    prod, skipping, reloading = make_db(0, "prod"), make_db(1, "uat"), make_db(2, "uat")
    if prod_sql:
        execute(prod, prod_sql)
    reports = []
    for uat in (skipping, reloading):
        if uat_sql:
            execute(uat, uat_sql)
        proc, report = sync(prod, uat, tmp_path)
        ok(proc)
        assert "unchanged" not in report["load"].values()
        reports.append(report)
        if after:
            execute(uat, after)
    assert snapshot(skipping).checksum == snapshot(reloading).checksum
    return prod, skipping, reloading, reports[0]


def _second_syncs(prod: str, skipping: str, reloading: str, tmp_path: Path) -> tuple[dict[str, Any], ...]:
    """The second sync into each twin: the first as configured by default, the second loading
    every table; both committed. Returns their reports."""
    proc, report = sync(prod, skipping, tmp_path)
    ok(proc)
    proc, report_reload = sync(prod, reloading, tmp_path, "--config", _config(tmp_path, RELOAD))
    ok(proc)
    assert "unchanged" not in report_reload["load"].values()
    return report, report_reload


def _test_order_with_lines(uat: str) -> int:
    """A preserved order (of a UAT test tenant) that has order lines."""
    found = rows(
        uat,
        "SELECT o.id FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id "
        f"WHERE t.{TEST_TENANTS} AND EXISTS (SELECT 1 FROM apps_orders_orderline l WHERE l.order_id = o.id) "
        "ORDER BY o.id LIMIT 1",
    )
    assert found
    return int(found[0][0])


def test_second_sync_leaves_unchanged_tables_in_place_and_equals_a_full_reload(
    make_db: Any, tmp_path: Path
) -> None:
    """Between the syncs production changes a global row and takes an order id that a UAT test
    tenant's order holds (so that order is re-keyed and its preserved lines, in a table that is
    left in place, must follow), and UAT edits a real tenant's customer in place (same count,
    other content: that table must be reloaded, the edit undone)."""
    prod, skipping, reloading, _first = _synced_twins(make_db, tmp_path)
    taken = _test_order_with_lines(skipping)
    assert taken == _test_order_with_lines(reloading)
    assert rows(prod, f"SELECT count(*) FROM apps_orders_order WHERE id = {taken}") == [(0,)]
    execute(
        prod,
        "INSERT INTO apps_orders_order (id, tenant_id, customer_id, supplier_id, created_by_id, total, "
        "placed_at, notes) "
        f"SELECT {taken}, o.tenant_id, o.customer_id, o.supplier_id, o.created_by_id, 1.23, o.placed_at, "
        "o.notes FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id "
        f"WHERE NOT (t.{TEST_TENANTS}) ORDER BY o.id LIMIT 1;"
        "UPDATE apps_catalog_product SET name = name || ' (v2)' WHERE id = (SELECT min(id) FROM apps_catalog_product)",
    )
    drift = (
        "UPDATE apps_customers_customer SET name = 'edited in UAT' WHERE id = (SELECT min(c.id) FROM "
        f"apps_customers_customer c JOIN apps_tenants_tenant t ON t.id = c.tenant_id WHERE NOT (t.{TEST_TENANTS}))"
    )
    execute(skipping, drift)
    execute(reloading, drift)
    lines_before = rows(skipping, REAL_LINES)
    assert lines_before

    report, report_reload = _second_syncs(prod, skipping, reloading, tmp_path)

    load = report["load"]
    assert load["apps_orders_orderline"] == "unchanged"
    for changed in ("apps_orders_order", "apps_catalog_product", "apps_customers_customer"):
        assert load[changed] != "unchanged", (changed, load)
    rekey = next(r for r in report["rekeys"] if r["table"] == "apps_orders_order")
    assert taken in {old for old, _new in rekey["ids"]}
    assert all(p["ok"] for p in report["proofs"])
    assert "edited in UAT" not in {r[0] for r in rows(skipping, "SELECT name FROM apps_customers_customer")}

    after, expected = snapshot(skipping), snapshot(reloading)
    assert after.checksum == expected.checksum, after.diff(expected)
    # Left in place, not written again: the real tenants' order lines keep their row versions.
    assert rows(skipping, REAL_LINES) == lines_before
    orderline = next(t for t in report["tables"] if t["table"] == "apps_orders_orderline")
    assert orderline["rows_deleted"] == orderline["rows_preserved"] > 0  # only those, re-inserted
    # The report tells the two runs apart only where they differ: what was copied.
    reloaded = {t["table"]: t for t in report_reload["tables"]}
    for entry in report["tables"]:
        twin = reloaded[entry["table"]]
        assert entry["rows_copied"] + entry["rows_left_in_place"] == twin["rows_copied"], entry
        for key in ("rows_source", "rows_excluded_test", "rows_preserved", "rows_kept_referenced",
                    "rows_rekeyed", "rows_after"):
            assert entry[key] == twin[key], (key, entry, twin)


def test_a_column_only_uat_has_is_reset_as_a_reload_resets_it(make_db: Any, tmp_path: Path) -> None:
    """A column the COPY does not write gets its default in a load; leaving the rows in place
    would keep UAT's values, so such a table is always loaded."""
    prod, skipping, reloading, _first = _synced_twins(
        make_db,
        tmp_path,
        uat_sql="ALTER TABLE apps_plants_plant ADD COLUMN uat_note text DEFAULT 'fresh'",
        after="UPDATE apps_plants_plant SET uat_note = 'edited'",
    )
    report, _ = _second_syncs(prod, skipping, reloading, tmp_path)
    assert report["load"]["apps_plants_plant"] == "direct"
    assert "unchanged" in report["load"].values()  # the other tables were left in place
    notes = dict(
        rows(
            skipping,
            "SELECT NOT (t.schema_name LIKE 'test\\_%'), array_agg(DISTINCT p.uat_note) FROM apps_plants_plant p "
            "JOIN apps_tenants_tenant t ON t.id = p.tenant_id GROUP BY 1",
        )
    )
    assert notes == {True: ["fresh"], False: ["edited"]}  # UAT's test tenants' rows are preserved
    assert snapshot(skipping).checksum == snapshot(reloading).checksum


def test_nothing_changed_leaves_every_direct_table_in_place(make_db: Any, tmp_path: Path) -> None:
    """A second sync of unchanged data: every table loaded directly in the first one is left in
    place, and the result is the first sync's database (test_sync's stable-second-sync test
    says the same of a full reload). Except a global table that keeps UAT-only rows (a product
    only a test tenant orders): those are not production's, so it is loaded again."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    proc, first = sync(prod, uat, tmp_path)
    ok(proc)
    before = snapshot(uat)
    proc, second = sync(prod, uat, tmp_path)
    ok(proc)
    kept = {t["table"] for t in first["tables"] if t["rows_kept_referenced"]}
    assert "apps_catalog_product" in kept
    direct = {t for t, how in first["load"].items() if how == "direct"}
    assert {t for t, how in second["load"].items() if how == "unchanged"} == direct - kept
    assert len(direct - kept) >= 5
    assert "stage apps_orders_orderline: " in proc.stderr and "unchanged: left in place" in proc.stderr
    assert "left in place, their rows already production's: " in proc.stdout
    proofs = {(p["name"], p["subject"]): p for p in second["proofs"]}
    assert all(p["ok"] for p in second["proofs"])
    assert ("transit", "apps_orders_orderline") not in proofs  # nothing was copied
    assert "left in place" in proofs[("in_place", "apps_orders_orderline")]["detail"]
    lines = next(t for t in second["tables"] if t["table"] == "apps_orders_orderline")
    lines_first = next(t for t in first["tables"] if t["table"] == "apps_orders_orderline")
    assert (lines["rows_copied"], lines["rows_left_in_place"]) == (0, lines_first["rows_copied"])
    assert snapshot(uat).checksum == before.checksum


def test_tables_with_triggers_or_generated_columns_are_always_loaded(make_db: Any, tmp_path: Path) -> None:
    """A load fires a table's INSERT triggers for every row and computes its generated columns
    afresh; leaving the rows in place would do neither. Here a trigger counts the inserts into
    a table outside the synced schema, and a generated column's function is redefined between
    the syncs: the twin reloading everything must match."""
    generated = (
        "CREATE FUNCTION twice(integer) RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2';"
        "ALTER TABLE apps_orders_orderline ADD COLUMN doubled integer GENERATED ALWAYS AS (twice(quantity)) STORED;"
    )
    thrice = "CREATE OR REPLACE FUNCTION twice(integer) RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 3'"
    prod, skipping, reloading, _first = _synced_twins(
        make_db,
        tmp_path,
        prod_sql=generated,
        uat_sql=generated + "CREATE SCHEMA audit; CREATE TABLE audit.inserts (n bigint NOT NULL);"
        "INSERT INTO audit.inserts VALUES (0);"
        "CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN UPDATE audit.inserts SET n = n + 1; RETURN NEW; END$$;"
        "CREATE TRIGGER counted AFTER INSERT ON apps_plants_plant FOR EACH ROW EXECUTE FUNCTION count_insert();",
        after=thrice,
    )
    execute(prod, thrice)
    report, _ = _second_syncs(prod, skipping, reloading, tmp_path)
    load = report["load"]
    assert load["apps_plants_plant"] == "direct" and load["apps_orders_orderline"] == "direct"
    assert "unchanged" in load.values()  # the other tables were left in place
    assert rows(skipping, "SELECT bool_and(doubled = quantity * 3) FROM apps_orders_orderline") == [(True,)]
    assert rows(skipping, "SELECT n FROM audit.inserts") == rows(reloading, "SELECT n FROM audit.inserts")
    assert snapshot(skipping).checksum == snapshot(reloading).checksum


def test_a_table_referenced_from_outside_the_sync_is_emptied_by_delete_and_left_alike(
    make_db: Any, tmp_path: Path
) -> None:
    """A table that a table dbsync does not write references cannot be TRUNCATEd: the first sync
    empties it with DELETE at its turn (a table that may be left in place is emptied only
    then), the second leaves it in place; both as the reloading twin."""
    outside = (
        "CREATE TABLE auth_plantnote (id integer PRIMARY KEY, "
        "plant_id integer REFERENCES apps_plants_plant DEFERRABLE INITIALLY DEFERRED)"
    )
    prod, skipping, reloading, first = _synced_twins(make_db, tmp_path, prod_sql=outside, uat_sql=outside)
    plants = next(t for t in first["tables"] if t["table"] == "apps_plants_plant")
    assert plants["rows_deleted"] == plants["rows_target_before"] > 0
    assert "TRUNCATE" not in " ".join(first["warnings"])
    report, _ = _second_syncs(prod, skipping, reloading, tmp_path)
    assert report["load"]["apps_plants_plant"] == "unchanged"
    plants = next(t for t in report["tables"] if t["table"] == "apps_plants_plant")
    assert plants["rows_deleted"] == plants["rows_preserved"] > 0
    assert snapshot(skipping).checksum == snapshot(reloading).checksum


@pytest.fixture
def synced_once(make_db: Any, tmp_path: Path) -> tuple[str, str]:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    ok(sync(prod, uat, tmp_path)[0])
    return prod, uat


@pytest.mark.parametrize(
    "fault", ["stage", "stage:term", "stage.unchanged", "stage.unchanged:kill", "apply.insert", "prove.end"]
)
def test_a_failure_after_tables_were_left_in_place_changes_nothing(
    synced_once: tuple[str, str], tmp_path: Path, fault: str
) -> None:
    """The preserved rows of a table left in place are removed from it inside the transaction
    (to come back, re-keyed as needed, in ``apply``): a failure there or later rolls back."""
    prod, uat = synced_once
    before_prod, before = snapshot(prod).checksum, snapshot(uat).checksum
    proc, report = sync(prod, uat, tmp_path, env={"DBSYNC_FAULT": fault})
    if fault.endswith(":kill"):
        assert proc.returncode == -signal.SIGKILL
    elif fault.endswith(":term"):
        assert proc.returncode == 130, proc.stderr
        assert report["status"] == "interrupted"
    else:
        assert proc.returncode == 4, proc.stderr
        assert f"fault injected at {fault}" in proc.stderr
        assert report["status"] == "rolled_back"
        if fault not in ("stage", "stage.unchanged"):  # (not yet, or on the way to leaving one)
            assert "unchanged" in report["load"].values()
    if not fault.endswith(":kill"):
        # Production's digests start in preserve: their sessions end with the run, whatever ends it.
        assert rows(prod, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbsync%'") == [(0,)]
    assert snapshot(uat).checksum == before
    assert snapshot(prod).checksum == before_prod
