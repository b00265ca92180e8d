"""``dbsync sync`` between real PostgreSQL clusters: every rule of the sync, checked against an
independent oracle (hand-written joins over the sample schema, not the engine's generic code).

Production lives on cluster 0 and UAT on cluster 1, so every read and write crosses clusters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.checksum import snapshot

TEST_TENANTS = "schema_name LIKE 'test\\_%'"


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def execute(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def dbsync_env(env: dict[str, str] | None = None) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    # Never the real data directory: a run without --backup-store would write there.
    full_env["XDG_DATA_HOME"] = os.path.join(tempfile.gettempdir(), "dbsync-test-xdg")
    full_env.update(env or {})
    return full_env


def dbsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args],
        capture_output=True,
        text=True,
        env=dbsync_env(env),
        timeout=300,
    )


def sync(
    source: str, target: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report_path = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    if "--no-backup" not in extra and "--backup-store" not in extra:
        extra = ("--backup-store", f"file://{tmp_path}/backups", *extra)
    proc = dbsync(
        "sync", "--source", source, "--target", target, "--report", str(report_path), *extra, env=env
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return proc, report


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


# -- the oracle --------------------------------------------------------------------------------

ORDERS_BY_TENANT = """
SELECT t.schema_name, c.name, o.total, o.placed_at, o.notes::text
FROM apps_orders_order o
JOIN apps_tenants_tenant t ON t.id = o.tenant_id
JOIN apps_customers_customer c ON c.id = o.customer_id
WHERE {where}
"""
LINES_BY_TENANT = """
SELECT t.schema_name, o.total, l.quantity, l.unit_price, p.sku, s.tracking
FROM apps_orders_orderline l
JOIN apps_orders_order o ON o.id = l.order_id
JOIN apps_tenants_tenant t ON t.id = o.tenant_id
JOIN apps_catalog_product p ON p.id = l.product_id
LEFT JOIN apps_orders_shipment s ON s.order_line_id = l.id
WHERE {where}
"""


def tenant_rows(url: str, template: str, test: bool) -> Counter[tuple[Any, ...]]:
    where = f"t.{TEST_TENANTS}" if test else f"NOT (t.{TEST_TENANTS})"
    return Counter(rows(url, template.format(where=where)))


def test_business_data_replaced_and_test_tenants_preserved(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    prod_before = snapshot(prod_url)
    uat_test_orders = tenant_rows(uat_url, ORDERS_BY_TENANT, test=True)
    uat_test_lines = tenant_rows(uat_url, LINES_BY_TENANT, test=True)
    prod_orders = tenant_rows(prod_url, ORDERS_BY_TENANT, test=False)
    prod_lines = tenant_rows(prod_url, LINES_BY_TENANT, test=False)
    assert uat_test_orders and uat_test_lines and prod_orders and prod_lines

    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert report["status"] == "committed"

    # Production is only read.
    assert snapshot(prod_url).checksum == prod_before.checksum
    # Tenants: production's real ones plus UAT's test ones; production's test tenants are gone.
    prod_tenants = {
        r[0]
        for r in rows(prod_url, f"SELECT schema_name FROM apps_tenants_tenant WHERE NOT ({TEST_TENANTS})")
    }
    uat_test_tenants = {
        r[0] for r in rows(uat_url, f"SELECT schema_name FROM apps_tenants_tenant WHERE {TEST_TENANTS}")
    }
    # (uat_test_tenants is read after the sync: they must still be there)
    assert uat_test_tenants == {"test_alpha", "test_beta"}
    assert {
        r[0] for r in rows(uat_url, "SELECT schema_name FROM apps_tenants_tenant")
    } == prod_tenants | uat_test_tenants
    # Orders, lines and shipments (scoped only through foreign keys) follow their tenants.
    assert tenant_rows(uat_url, ORDERS_BY_TENANT, test=False) == prod_orders
    assert tenant_rows(uat_url, LINES_BY_TENANT, test=False) == prod_lines
    assert tenant_rows(uat_url, ORDERS_BY_TENANT, test=True) == uat_test_orders
    assert tenant_rows(uat_url, LINES_BY_TENANT, test=True) == uat_test_lines
    # Real-tenant rows keep production's ids.
    prod_ids = set(
        rows(
            prod_url,
            f"SELECT o.id, o.total FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE NOT (t.{TEST_TENANTS})",
        )
    )
    uat_ids = set(
        rows(
            uat_url,
            f"SELECT o.id, o.total FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE NOT (t.{TEST_TENANTS})",
        )
    )
    assert prod_ids == uat_ids
    assert all(p["ok"] for p in report["proofs"])


def test_production_test_tenant_rows_are_never_copied(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    prod_test = {
        r[0] for r in rows(prod_url, f"SELECT schema_name FROM apps_tenants_tenant WHERE {TEST_TENANTS}")
    }
    assert prod_test  # the sample has production test tenants
    test_lines = rows(
        prod_url,
        f"SELECT l.id FROM apps_orders_orderline l JOIN apps_orders_order o ON o.id = l.order_id "
        f"JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE t.{TEST_TENANTS}",
    )
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert not prod_test & {r[0] for r in rows(uat_url, "SELECT schema_name FROM apps_tenants_tenant")}
    line_entry = next(t for t in report["tables"] if t["table"] == "apps_orders_orderline")
    assert line_entry["rows_excluded_test"] == len(test_lines)
    total_excluded = sum(t["rows_excluded_test"] for t in report["tables"])
    assert total_excluded > len(test_lines)


def test_users_remapped_by_username_else_to_the_superuser(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    prod_creators = dict(
        rows(
            prod_url,
            "SELECT o.id, u.username FROM apps_orders_order o JOIN auth_user u ON u.id = o.created_by_id",
        )
    )
    uat_users = {r[0] for r in rows(uat_url, "SELECT username FROM auth_user")}
    users_before = snapshot(uat_url).tables["public.auth_user"]
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    after = dict(
        rows(
            uat_url,
            "SELECT o.id, u.username FROM apps_orders_order o JOIN auth_user u ON u.id = o.created_by_id",
        )
    )
    checked = Counter[str]()
    for order_id, username in prod_creators.items():
        if order_id not in after:
            continue  # a production test tenant's order, or a re-keyed id
        expected = username if username in uat_users else "uatadmin"
        assert after[order_id] == expected
        checked["kept" if username in uat_users else "fallback"] += 1
    assert checked["kept"] and checked["fallback"], checked
    assert snapshot(uat_url).tables["public.auth_user"] == users_before
    remap = next(r for r in report["remaps"] if r["column"] == "apps_orders_order.created_by_id")
    assert remap["to_fallback"] > 0 and remap["by_natural_key"] > 0


def test_content_types_remapped_by_app_label_and_model(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    query = (
        "SELECT n.id, n.body, ct.app_label, ct.model FROM apps_notes_note n "
        "JOIN django_content_type ct ON ct.id = n.content_type_id"
    )
    prod_notes = {r[0]: r[1:] for r in rows(prod_url, query)}
    proc, _ = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    uat_notes = {r[0]: r[1:] for r in rows(uat_url, query)}
    common = prod_notes.keys() & uat_notes.keys()
    assert len(common) > 10
    assert all(prod_notes[i] == uat_notes[i] for i in common if prod_notes[i][0] == uat_notes[i][0])
    # The ids themselves differ between the two databases, so a plain copy would have been wrong.
    ids = rows(
        uat_url,
        "SELECT ct.id FROM django_content_type ct WHERE (app_label, model) = ('apps_orders', 'order')",
    )
    prod_ids = rows(
        prod_url,
        "SELECT ct.id FROM django_content_type ct WHERE (app_label, model) = ('apps_orders', 'order')",
    )
    assert ids != prod_ids


def test_preserved_rows_colliding_with_production_ids_are_rekeyed(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    test_order_ids = {
        r[0]
        for r in rows(
            uat_url,
            f"SELECT o.id FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE t.{TEST_TENANTS}",
        )
    }
    prod_order_ids = {r[0] for r in rows(prod_url, "SELECT id FROM apps_orders_order")}
    colliding = test_order_ids & prod_order_ids
    assert colliding  # the sample's trap
    uat_test_orders = tenant_rows(uat_url, ORDERS_BY_TENANT, test=True)

    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    rekey = next(r for r in report["rekeys"] if r["table"] == "apps_orders_order")
    mapping = {old: new for old, new in rekey["ids"]}
    assert set(mapping) == colliding
    max_prod = max(prod_order_ids)
    assert all(new > max_prod for new in mapping.values())
    # References followed the new ids: the test tenants' orders, customers and lines still join.
    assert tenant_rows(uat_url, ORDERS_BY_TENANT, test=True) == uat_test_orders
    assert rows(
        uat_url, "SELECT count(*) FROM apps_orders_order WHERE id = ANY(%s)", (list(mapping.values()),)
    ) == [(len(mapping),)]


def test_second_sync_is_stable(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    ok(sync(prod_url, uat_url, tmp_path)[0])
    first = snapshot(uat_url)
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert report["rekeys"] == []  # re-keyed ids sit above production's, with headroom
    second = snapshot(uat_url)
    assert {k: v for k, v in second.tables.items()} == first.tables, second.diff(first)


def test_sequences_move_past_every_id_with_headroom(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    proc, report = sync(
        prod_url, uat_url, tmp_path, "--config", str(_write(tmp_path, "c.toml", "sequence_headroom = 500\n"))
    )
    ok(proc)
    assert report["sequences"]
    for seq in report["sequences"]:
        table, column = seq["column"].split(".")
        max_id = rows(uat_url, f'SELECT max("{column}") FROM "{table}"')[0][0]
        (next_value,) = rows(uat_url, f"SELECT nextval('{seq['sequence']}')")[0]
        assert next_value > max_id
        if seq["max_incoming_id"] is not None:
            assert next_value >= seq["max_incoming_id"] + 500


def test_sequence_headroom_respects_integer_range(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    config = _write(tmp_path, "c.toml", f"sequence_headroom = {2**31}\n")
    proc, report = sync(prod_url, uat_url, tmp_path, "--config", str(config))
    ok(proc)
    plant = next(s for s in report["sequences"] if s["column"] == "apps_plants_plant.id")  # serial integer
    assert plant["restart_with"] == plant["max_id"] + 1 and not plant["headroom_applied"]
    order = next(s for s in report["sequences"] if s["column"] == "apps_orders_order.id")  # bigint
    # bigint has room: past production's largest id by the headroom, and past any re-keyed id.
    assert order["restart_with"] == max(order["max_id"] + 1, order["max_incoming_id"] + 2**31 + 1)
    assert order["headroom_applied"]


def test_global_row_referenced_by_preserved_row_is_kept(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    query = (
        "SELECT DISTINCT p.sku FROM apps_orders_orderline l JOIN apps_orders_order o ON o.id = l.order_id "
        f"JOIN apps_tenants_tenant t ON t.id = o.tenant_id JOIN apps_catalog_product p ON p.id = l.product_id "
        f"WHERE t.{TEST_TENANTS}"
    )
    referenced = {r[0] for r in rows(uat_url, query)}
    prod_skus = {r[0] for r in rows(prod_url, "SELECT sku FROM apps_catalog_product")}
    only_uat = referenced - prod_skus
    assert only_uat  # the sample's trap: UAT-only catalog rows used by a test tenant
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    after = {r[0] for r in rows(uat_url, "SELECT sku FROM apps_catalog_product")}
    assert after == prod_skus | only_uat
    entry = next(t for t in report["tables"] if t["table"] == "apps_catalog_product")
    assert entry["rows_kept_referenced"] == len(only_uat)


def test_membership_collapse_keeps_one_by_default_and_can_refuse(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    conflicts = report["remap_conflicts"]
    assert (
        conflicts
        and conflicts[0]["table"] == "apps_tenants_tenantuser"
        and conflicts[0]["policy"] == "keep_one"
    )
    entry = next(t for t in report["tables"] if t["table"] == "apps_tenants_tenantuser")
    assert entry["rows_dropped_conflicts"] == sum(c["rows"] for c in conflicts)
    dupes = rows(
        uat_url, "SELECT tenant_id, user_id FROM apps_tenants_tenantuser GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert dupes == []


def test_membership_collapse_refused_when_configured(make_db: Any, tmp_path: Path) -> None:
    prod_url, uat_url = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat_url)
    config = _write(tmp_path, "c.yaml", "on_remap_conflict:\n  apps_tenants_tenantuser: refuse\n")
    proc, report = sync(prod_url, uat_url, tmp_path, "--config", str(config))
    assert proc.returncode == 3, proc.stderr
    assert "apps_tenants_tenantuser" in proc.stderr and "unique key" in proc.stderr
    assert report["status"] == "refused"
    assert snapshot(uat_url).checksum == before.checksum


def test_set_null_on_a_not_null_column_is_a_config_error(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    config = _write(tmp_path, "c.toml", "[on_remap_conflict]\napps_tenants_tenantuser = 'set_null'\n")
    proc, _ = sync(prod_url, uat_url, tmp_path, "--config", str(config))
    assert proc.returncode == 2
    assert "on_remap_conflict.apps_tenants_tenantuser" in proc.stderr and "NOT NULL" in proc.stderr


def test_non_deferrable_foreign_keys(make_db: Any, tmp_path: Path) -> None:
    prod_url, uat_url = make_db(0, "prod", "immediate"), make_db(1, "uat", "immediate")
    assert rows(uat_url, "SELECT bool_or(condeferrable) FROM pg_constraint WHERE contype = 'f'") == [(False,)]
    uat_test_lines = tenant_rows(uat_url, LINES_BY_TENANT, test=True)
    prod_lines = tenant_rows(prod_url, LINES_BY_TENANT, test=False)
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert tenant_rows(uat_url, LINES_BY_TENANT, test=True) == uat_test_lines
    assert tenant_rows(uat_url, LINES_BY_TENANT, test=False) == prod_lines
    assert all(p["ok"] for p in report["proofs"])


def test_non_deferrable_cycle_is_refused(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    ddl = (
        "CREATE TABLE apps_x_a (id bigint PRIMARY KEY, tenant_id integer REFERENCES apps_tenants_tenant, b_id bigint);"
        "CREATE TABLE apps_x_b (id bigint PRIMARY KEY, a_id bigint REFERENCES apps_x_a);"
        "ALTER TABLE apps_x_a ADD FOREIGN KEY (b_id) REFERENCES apps_x_b;"
    )
    execute(prod_url, ddl)
    execute(uat_url, ddl)
    before = snapshot(uat_url)
    proc, _ = sync(prod_url, uat_url, tmp_path)
    assert proc.returncode == 3
    assert "apps_x_a" in proc.stderr and "cycle" in proc.stderr
    assert snapshot(uat_url).checksum == before.checksum


def test_reference_to_excluded_table_without_natural_key_is_refused(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    ddl = (
        "CREATE TABLE auth_badge (id serial PRIMARY KEY, label text);"
        "ALTER TABLE apps_customers_customer ADD COLUMN badge_id integer REFERENCES auth_badge "
        "DEFERRABLE INITIALLY DEFERRED;"
    )
    execute(prod_url, ddl)
    execute(uat_url, ddl)
    before = snapshot(uat_url)
    proc, _ = sync(prod_url, uat_url, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "apps_customers_customer.badge_id" in proc.stderr and "natural_keys.auth_badge" in proc.stderr
    assert snapshot(uat_url).checksum == before.checksum
    # Declaring the natural key makes it work, remapping by label.
    execute(
        prod_url,
        "INSERT INTO auth_badge (id, label) VALUES (1, 'gold'); UPDATE apps_customers_customer SET badge_id = 1 WHERE id % 3 = 0",
    )
    execute(uat_url, "INSERT INTO auth_badge (id, label) VALUES (7, 'gold')")
    config = _write(tmp_path, "c.toml", "[natural_keys]\nauth_badge = ['label']\n")
    ok(sync(prod_url, uat_url, tmp_path, "--config", str(config))[0])
    assert {r[0] for r in rows(uat_url, "SELECT DISTINCT badge_id FROM apps_customers_customer")} == {None, 7}


def test_dry_run_changes_nothing_and_reports_the_plan(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    before = snapshot(uat_url)
    proc, report = sync(prod_url, uat_url, tmp_path, "--dry-run")
    ok(proc)
    assert snapshot(uat_url).checksum == before.checksum
    assert report["status"] == "dry_run" and report["dry_run"] is True
    orders = next(t for t in report["tables"] if t["table"] == "apps_orders_order")
    assert orders["rows_source"] > 0 and orders["rows_excluded_test"] > 0 and orders["rows_copied"] > 0
    assert orders["rows_preserved"] > 0
    assert report["remaps"] and report["rekeys"]
    assert "apps_orders_order" in proc.stdout  # the plan is printed


@pytest.mark.parametrize("spelling", ["same", "localhost", "keywords"])
def test_same_database_is_refused_however_spelled(prod_url: Any, tmp_path: Path, spelling: str) -> None:
    cluster = prod_url.cluster
    target = {
        "same": str(prod_url),
        "localhost": str(prod_url).replace("127.0.0.1", "localhost"),
        "keywords": f"host=127.0.0.1 port={cluster.port} dbname={prod_url.dbname} user=postgres password=postgres-pw",
    }[spelling]
    before = snapshot(prod_url)
    proc, report = sync(prod_url, target, tmp_path)
    assert proc.returncode == 3
    assert "same database" in proc.stderr
    assert report["status"] == "refused"
    assert snapshot(prod_url).checksum == before.checksum


def test_two_databases_on_one_cluster_are_not_the_same(make_db: Any, tmp_path: Path) -> None:
    prod_url, uat_url = make_db(1, "prod"), make_db(1, "uat")
    ok(sync(prod_url, uat_url, tmp_path)[0])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("tenants", "tenant table 'apps_tenants_tenant' does not exist in the target"),
        ("users", "user table 'auth_user' does not exist in the target"),
    ],
)
def test_missing_tenant_or_user_table_is_bad_input(
    prod_url: str, uat_url: str, tmp_path: Path, change: str, expected: str
) -> None:
    execute(
        uat_url,
        "DROP TABLE apps_tenants_tenant CASCADE" if change == "tenants" else "DROP TABLE auth_user CASCADE",
    )
    before = snapshot(uat_url)
    proc, _ = sync(prod_url, uat_url, tmp_path)
    assert proc.returncode == 13, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(uat_url).checksum == before.checksum


def test_connection_problems_are_one_sentence_without_secrets(
    prod_url: Any, uat_url: Any, tmp_path: Path
) -> None:
    """A refused login (exit 11: fix the secret) and a host that does not answer (exit 12: a
    later run may pass) are told apart, so that CI can retry the one and not the other."""
    cluster = prod_url.cluster
    before = snapshot(uat_url)
    wrong_password = cluster.url(prod_url.dbname, user="secret_user", password="not-the-pw-XyZ")
    proc, report = sync(wrong_password, uat_url, tmp_path)
    assert proc.returncode == 11, proc.stderr
    assert "password authentication failed" in proc.stderr and "check the URL's user, password" in proc.stderr
    assert report["error"]["kind"] == "connection"
    assert "not-the-pw-XyZ" not in proc.stderr + proc.stdout + json.dumps(report)
    proc, report = sync(prod_url, cluster.url("no_such_db_here"), tmp_path)
    assert proc.returncode == 11 and "cannot connect to the target" in proc.stderr
    assert 'database "no_such_db_here" does not exist' in proc.stderr
    unreachable = "postgresql://u:pw-Secret-77@127.0.0.1:1/x?connect_timeout=3"
    proc, report = sync(unreachable, uat_url, tmp_path)
    assert proc.returncode == 12 and "cannot connect to the source" in proc.stderr
    assert "a later run may pass" in proc.stderr and report["error"]["kind"] == "unreachable"
    assert "pw-Secret-77" not in proc.stderr + proc.stdout + json.dumps(report)
    proc, _ = sync(prod_url, "postgresql://u:pw@no-such-host.invalid/x?connect_timeout=3", tmp_path)
    assert proc.returncode == 12 and "cannot connect to the target" in proc.stderr
    # two hosts, as in a URL with a standby: one does not answer, the other refuses the login
    two = f"host=127.0.0.1,127.0.0.1 port=1,{cluster.port} dbname={prod_url.dbname} user=postgres"
    proc, _ = sync(f"{two} password=wrong-pw-2", uat_url, tmp_path)
    assert proc.returncode == 11 and "2 attempts" in proc.stderr, proc.stderr
    assert "Connection refused" in proc.stderr and "password authentication failed" in proc.stderr
    assert "wrong-pw-2" not in proc.stderr
    proc, _ = sync("host=127.0.0.1,127.0.0.1 port=1,2 dbname=x user=u password=p", uat_url, tmp_path)
    assert proc.returncode == 12 and "2 attempts" in proc.stderr, proc.stderr
    proc, _ = sync("postgresql://a:b@/x?bogus=1", uat_url, tmp_path)
    assert proc.returncode == 2 and "not a valid PostgreSQL URL" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(uat_url).checksum == before.checksum


def test_each_kind_of_bad_input_has_its_own_exit_code(prod_url: Any, uat_url: Any, tmp_path: Path) -> None:
    """The brief's list of bad input: a malformed config, a wrong password, an unreachable host,
    a missing table, production and target being the same database. Each is one sentence, a
    code of its own, and UAT unchanged."""
    cluster = prod_url.cluster
    before = snapshot(uat_url)
    config = _write(tmp_path, "bad.toml", "tenants = [\n")
    codes = {
        "config": sync(prod_url, uat_url, tmp_path, "--config", str(config))[0],
        "password": sync(cluster.url(prod_url.dbname, password="wrong-pw"), uat_url, tmp_path)[0],
        "unreachable": sync("postgresql://u:p@127.0.0.1:1/x?connect_timeout=3", uat_url, tmp_path)[0],
        "same database": sync(uat_url, uat_url, tmp_path)[0],
    }
    execute(prod_url, "ALTER TABLE apps_catalog_tag RENAME TO apps_catalog_tag_renamed")
    try:
        codes["missing table"] = sync(prod_url, uat_url, tmp_path)[0]
    finally:
        execute(prod_url, "ALTER TABLE apps_catalog_tag_renamed RENAME TO apps_catalog_tag")
    for name, proc in codes.items():
        assert proc.returncode not in (0, 1), f"{name}: exit {proc.returncode}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, name
        assert proc.stderr.splitlines()[-1].startswith("dbsync: "), f"{name}: {proc.stderr}"  # one sentence
    assert {name: proc.returncode for name, proc in codes.items()} == {
        "config": 2,
        "password": 11,
        "unreachable": 12,
        "same database": 3,
        "missing table": 13,
    }
    assert snapshot(uat_url).checksum == before.checksum


def test_source_role_with_select_only(prod_url: Any, uat_url: str, tmp_path: Path) -> None:
    cluster = prod_url.cluster
    execute(
        prod_url,
        "DO $$ BEGIN CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    )
    execute(prod_url, f'REVOKE TEMPORARY ON DATABASE "{prod_url.dbname}" FROM PUBLIC')
    reader = cluster.url(prod_url.dbname, user="reader", password="reader-pw")
    proc, report = sync(reader, uat_url, tmp_path)
    ok(proc)
    assert report["source"]["role"] == "reader"
    assert "reader-pw" not in proc.stderr + proc.stdout + json.dumps(report)


def test_secrets_from_url_never_printed(make_db: Any, tmp_path: Path) -> None:
    prod_url, uat_url = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat_url,
        "DO $$ BEGIN CREATE ROLE secret_user2 LOGIN SUPERUSER PASSWORD 'P@ss w0rd!'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    target = uat_url.cluster.url(uat_url.dbname, user="secret_user2", password="P@ss w0rd!")
    assert "P%40ss%20w0rd%21" in target
    proc, report = sync(prod_url, target, tmp_path, env={"DBSYNC_FAULT": "rekey"})
    assert proc.returncode == 4
    blob = proc.stdout + proc.stderr + json.dumps(report)
    for form in ("P@ss w0rd!", "P%40ss%20w0rd%21", "P%40ss w0rd!"):
        assert form not in blob


def test_report_records_tables_proofs_and_steps(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert [s["name"] for s in report["steps"]] == [
        "connect",
        "inspect",
        "plan",
        "lock",
        "backup",
        "preserve",
        "stage",
        "scope",
        "remap",
        "rekey",
        "apply",
        "sequences",
        "prove",
        "commit",
    ]
    assert all(s["status"] == "ok" for s in report["steps"])
    proof_kinds = {p["name"] for p in report["proofs"]}
    assert proof_kinds >= {
        "transit",
        "row_counts",
        "content",
        "preserved",
        "untouched",
        "foreign_key",
        "fallback_user",
        "sequence",
    }
    fk_subjects = {p["subject"] for p in report["proofs"] if p["name"] == "foreign_key"}
    assert any("apps_orders_orderline" in s for s in fk_subjects)
    for t in report["tables"]:
        assert t["rows_after"] == t["rows_copied"] + t["rows_preserved"] + t["rows_kept_referenced"]
    assert "auth_user" in report["excluded_tables"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GENERIC_TARGETS = """
SELECT t.schema_name, n.body, ct.model,
       coalesce(o.total::text, c.name, s.name) AS target
FROM apps_notes_note n
JOIN apps_tenants_tenant t ON t.id = n.tenant_id
JOIN django_content_type ct ON ct.id = n.content_type_id
LEFT JOIN apps_orders_order o ON ct.model = 'order' AND o.id = n.object_id AND o.tenant_id = n.tenant_id
LEFT JOIN apps_customers_customer c ON ct.model = 'customer' AND c.id = n.object_id AND c.tenant_id = n.tenant_id
LEFT JOIN apps_suppliers_supplier s ON ct.model = 'supplier' AND s.id = n.object_id AND s.tenant_id = n.tenant_id
WHERE t.schema_name LIKE 'test\\_%'
"""


def test_generic_relations_follow_rekeyed_rows(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    """A preserved note points at its object through (content_type_id, object_id); when the
    object is re-keyed, the note must follow it, not silently point at production's row."""
    before = Counter(rows(uat_url, GENERIC_TARGETS))
    assert before and all(r[3] is not None for r in before)  # every note resolves in UAT
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    assert Counter(rows(uat_url, GENERIC_TARGETS)) == before
    assert any(g["table"] == "apps_notes_note" for g in report["generic_relations"])


def test_generic_relation_rows_of_test_tenants_are_scoped_without_tenant_column(
    prod_url: str, uat_url: str, tmp_path: Path
) -> None:
    """A global table of tags on any object (like django-taggit's TaggedItem): tags on test
    tenants' objects belong to those tenants, on both sides."""
    ddl = (
        "CREATE TABLE apps_tags_taggeditem (id bigserial PRIMARY KEY, label text NOT NULL, "
        "content_type_id integer NOT NULL REFERENCES django_content_type DEFERRABLE INITIALLY DEFERRED, "
        "object_id bigint NOT NULL)"
    )
    tag_orders = (
        "INSERT INTO apps_tags_taggeditem (label, content_type_id, object_id) "
        "SELECT '{side}-' || t.schema_name, ct.id, o.id FROM apps_orders_order o "
        "JOIN apps_tenants_tenant t ON t.id = o.tenant_id "
        "JOIN django_content_type ct ON (ct.app_label, ct.model) = ('apps_orders', 'order')"
    )
    for url, side in ((prod_url, "prod"), (uat_url, "uat")):
        execute(url, ddl)
        execute(url, tag_orders.format(side=side))
    proc, report = sync(prod_url, uat_url, tmp_path)
    ok(proc)
    labels = Counter(r[0] for r in rows(uat_url, "SELECT label FROM apps_tags_taggeditem"))
    # production's test tenants' tags are not copied; UAT's test tenants' tags are preserved
    assert not [label for label in labels if label.startswith("prod-test_")]
    assert {label for label in labels if label.startswith("uat-")} == {"uat-test_alpha", "uat-test_beta"}
    # and each preserved tag still points at an order of its own tenant
    resolved = rows(
        uat_url,
        "SELECT count(*) FROM apps_tags_taggeditem g JOIN apps_orders_order o ON o.id = g.object_id "
        "JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE g.label = 'uat-' || t.schema_name",
    )
    assert resolved == [(sum(n for label, n in labels.items() if label.startswith("uat-")),)]
    entry = next(t for t in report["tables"] if t["table"] == "apps_tags_taggeditem")
    assert entry["role"] == "scoped" and entry["rows_preserved"] > 0 and entry["rows_excluded_test"] > 0


def test_one_snapshot_while_production_keeps_writing(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    """Production commits a new tenant with orders and lines while the run is between its
    snapshot and its first COPY: none of it reaches UAT, and every count and proof agrees."""
    release = tmp_path / "go"
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DBSYNC_FAULT"] = f"stage:pause={release}"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dbsync.cli",
            "sync",
            "--source",
            prod_url,
            "--target",
            uat_url,
            "--report",
            str(report_path),
            "--quiet",
            "--backup-store",
            f"file://{tmp_path}/backups",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = 100
        while not rows(
            uat_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbsync-target' AND state LIKE 'idle in transaction%'",
        )[0][0]:
            deadline -= 1
            assert deadline, "the run never reached its pause"
            import time

            time.sleep(0.1)
        execute(
            prod_url,
            "INSERT INTO apps_tenants_tenant (id, name, schema_name, slug, created_at, is_active) "
            "VALUES (4242, 'Latecomer', 'latecomer', 'latecomer', now(), true);"
            "INSERT INTO apps_customers_customer (id, tenant_id, name, email) VALUES (4242000, 4242, 'late', 'l@x');"
            "INSERT INTO apps_orders_order (id, tenant_id, customer_id, total, placed_at) "
            "VALUES (4242000, 4242, 4242000, 1, now());"
            "DELETE FROM apps_orders_shipment WHERE id = (SELECT min(id) FROM apps_orders_shipment)",
        )
        release.touch()
        _stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    report = json.loads(report_path.read_text())
    assert rows(uat_url, "SELECT count(*) FROM apps_tenants_tenant WHERE schema_name = 'latecomer'") == [(0,)]
    shipments = next(t for t in report["tables"] if t["table"] == "apps_orders_shipment")
    (now_in_prod,) = rows(prod_url, "SELECT count(*) FROM apps_orders_shipment")[0]
    assert shipments["rows_source"] == now_in_prod + 1  # the row deleted after the snapshot was copied
    assert all(p["ok"] for p in report["proofs"])


def test_remap_conflict_set_null(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    """One profile per user (a nullable unique column): two production profiles whose users both
    fall back to the superuser cannot both point at it; set_null keeps both rows, unlinked."""
    ddl = (
        "CREATE TABLE apps_profiles_profile (id bigint PRIMARY KEY, tenant_id integer NOT NULL "
        "REFERENCES apps_tenants_tenant DEFERRABLE INITIALLY DEFERRED, user_id integer UNIQUE "
        "REFERENCES auth_user DEFERRABLE INITIALLY DEFERRED, bio text)"
    )
    execute(prod_url, ddl)
    execute(uat_url, ddl)
    uat_names = [r[0] for r in rows(uat_url, "SELECT username FROM auth_user")]
    unknown = rows(
        prod_url,
        "SELECT u.id FROM auth_user u WHERE NOT (u.username = ANY(%s)) ORDER BY u.id LIMIT 2",
        (uat_names,),
    )
    assert len(unknown) == 2
    execute(
        prod_url,
        "INSERT INTO apps_profiles_profile SELECT 1, (SELECT min(id) FROM apps_tenants_tenant WHERE schema_name NOT LIKE 'test%'), "
        f"{unknown[0][0]}, 'one'; INSERT INTO apps_profiles_profile SELECT 2, (SELECT min(id) FROM apps_tenants_tenant "
        f"WHERE schema_name NOT LIKE 'test%'), {unknown[1][0]}, 'two'",
    )
    config = _write(tmp_path, "c.toml", "[on_remap_conflict]\napps_profiles_profile = 'set_null'\n")
    proc, report = sync(prod_url, uat_url, tmp_path, "--config", str(config))
    ok(proc)
    profiles = sorted(
        rows(
            uat_url,
            "SELECT p.bio, u.username FROM apps_profiles_profile p LEFT JOIN auth_user u ON u.id = p.user_id",
        )
    )
    assert profiles == [("one", "uatadmin"), ("two", None)]
    conflict = next(c for c in report["remap_conflicts"] if c["table"] == "apps_profiles_profile")
    assert conflict["policy"] == "set_null" and conflict["rows"] == 1


def test_unmatched_natural_key_refused_or_set_null(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    ddl = (
        "CREATE TABLE auth_badge (id serial PRIMARY KEY, label text UNIQUE);"
        "ALTER TABLE apps_customers_customer ADD COLUMN badge_id integer REFERENCES auth_badge "
        "DEFERRABLE INITIALLY DEFERRED;"
    )
    execute(prod_url, ddl)
    execute(uat_url, ddl)
    execute(
        prod_url,
        "INSERT INTO auth_badge VALUES (1, 'gold'), (2, 'platinum'); UPDATE apps_customers_customer SET badge_id = 1 + id % 2",
    )
    execute(uat_url, "INSERT INTO auth_badge VALUES (5, 'gold')")
    keys = _write(tmp_path, "k.toml", "[natural_keys]\nauth_badge = ['label']\n")
    before = snapshot(uat_url)
    proc, _ = sync(prod_url, uat_url, tmp_path, "--config", str(keys))
    assert proc.returncode == 3
    assert "apps_customers_customer.badge_id" in proc.stderr and "no match in the target" in proc.stderr
    assert snapshot(uat_url).checksum == before.checksum
    null = _write(
        tmp_path, "n.toml", "[natural_keys]\nauth_badge = ['label']\n[on_unmatched]\nauth_badge = 'null'\n"
    )
    proc, report = sync(prod_url, uat_url, tmp_path, "--config", str(null))
    ok(proc)
    badges = Counter(
        r[0]
        for r in rows(
            uat_url,
            f"SELECT c.badge_id FROM apps_customers_customer c JOIN apps_tenants_tenant t ON t.id = c.tenant_id WHERE NOT (t.{TEST_TENANTS})",
        )
    )
    assert set(badges) == {5, None} and badges[5] and badges[None]
    remap = next(r for r in report["remaps"] if r["column"] == "apps_customers_customer.badge_id")
    assert remap["to_null"] == badges[None]


def test_busy_target_times_out_on_its_locks_cleanly(prod_url: str, uat_url: str, tmp_path: Path) -> None:
    """A UAT session in the middle of a write holds the tables: the run gives up after
    lock_timeout_seconds with a clear sentence, and nothing changes."""
    before = snapshot(uat_url)
    with psycopg.connect(uat_url) as writer:
        writer.execute(
            "UPDATE apps_catalog_tag SET name = name WHERE id = (SELECT min(id) FROM apps_catalog_tag)"
        )
        config = _write(tmp_path, "c.toml", "lock_timeout_seconds = 1\n")
        proc, report = sync(prod_url, uat_url, tmp_path, "--config", str(config))
        writer.rollback()
    assert proc.returncode == 4
    assert "could not be locked within 1s" in proc.stderr
    assert report["error"]["step"] == "lock"
    assert snapshot(uat_url).checksum == before.checksum


def test_passwords_from_pgpassword_and_pgpass(prod_url: Any, uat_url: Any, tmp_path: Path) -> None:
    """URLs without passwords: libpq takes them from PGPASSWORD or a pgpass file as usual."""
    bare_prod = prod_url.cluster.url(prod_url.dbname, password="")
    bare_uat = uat_url.cluster.url(uat_url.dbname, password="")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(
        f"127.0.0.1:{prod_url.cluster.port}:*:postgres:postgres-pw\n127.0.0.1:{uat_url.cluster.port}:*:postgres:postgres-pw\n"
    )
    pgpass.chmod(0o600)
    ok(sync(bare_prod, bare_uat, tmp_path, env={"PGPASSFILE": str(pgpass)})[0])
    ok(sync(bare_prod, bare_uat, tmp_path, env={"PGPASSWORD": "postgres-pw"})[0])
    proc, _ = sync(bare_prod, bare_uat, tmp_path, env={"PGPASSWORD": "wrong-pw-123"})
    assert proc.returncode == 11 and "password authentication failed" in proc.stderr
    assert "wrong-pw-123" not in proc.stderr


@pytest.mark.parametrize("variant", ["deferrable", "immediate"])
def test_direct_and_staged_loads_give_the_same_database(make_db: Any, tmp_path: Path, variant: str) -> None:
    """The direct load (production's rows COPYed straight into the emptied synced tables, user
    and content-type ids remapped in production's SELECT) and the staged load with every map
    applied on the target (every table through a temporary table, remapped there by UPDATE,
    written at apply) are two routes to one result: the same rows, sequences and schema, by an
    independent whole-database checksum, and the same report."""
    prod = make_db(0, "prod", variant)
    direct, staged = make_db(1, "uat", variant), make_db(1, "uat", variant)
    assert snapshot(direct).checksum == snapshot(staged).checksum
    config = tmp_path / "staged.toml"
    config.write_text('load = "staged"\nsource_remap_limit = 0\n')
    proc, direct_report = sync(prod, direct, tmp_path)
    ok(proc)
    proc, staged_report = sync(prod, staged, tmp_path, "--config", str(config))
    ok(proc)
    loads = direct_report["load"]
    assert loads["apps_orders_orderline"] == "direct" and loads["apps_orders_shipment"] == "direct"
    assert loads["apps_orders_order"] == "direct"  # its created_by_id remapped on the way
    assert loads["apps_tenants_tenantuser"] == "staged"  # its unique key holds a remapped column
    assert direct_report["remaps"] == staged_report["remaps"]
    assert any(r["rewritten"] for r in direct_report["remaps"])
    assert set(staged_report["load"].values()) == {"staged"}
    assert snapshot(direct).checksum == snapshot(staged).checksum
    for a, b in zip(direct_report["tables"], staged_report["tables"], strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }


SELF_REFERENCE = """
ALTER TABLE apps_customers_customer ADD COLUMN referred_by_id bigint
    REFERENCES apps_customers_customer (id) DEFERRABLE INITIALLY DEFERRED;
"""
CYCLE = """
ALTER TABLE apps_tenants_tenant ADD COLUMN primary_customer_id bigint
    REFERENCES apps_customers_customer (id) DEFERRABLE INITIALLY DEFERRED;
"""


@pytest.mark.parametrize("shape", ["self_reference", "cycle"])
def test_rows_reached_through_other_tenants_rows_are_left_out(
    make_db: Any, tmp_path: Path, shape: str
) -> None:
    """Production's test tenants are left out by the COPY itself when the tenant-scoped tables
    hold no cycle (a table referencing itself is followed by a recursive query), and removed on
    the target otherwise (a cycle between tenants and customers). Either way a customer of a
    real tenant who was referred by a test tenant's customer, and one referred by that one, go
    with them: the closure is followed row by row, as the oracle here spells out."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    for url in (prod, uat):
        execute(url, SELF_REFERENCE + (CYCLE if shape == "cycle" else ""))
    execute(
        prod,
        f"""
        WITH test AS (SELECT c.id FROM apps_customers_customer c JOIN apps_tenants_tenant t
                      ON t.id = c.tenant_id WHERE t.{TEST_TENANTS} ORDER BY c.id LIMIT 1),
             real AS (SELECT c.id, row_number() OVER (ORDER BY c.id) AS n FROM apps_customers_customer c
                      JOIN apps_tenants_tenant t ON t.id = c.tenant_id WHERE NOT t.{TEST_TENANTS}
                      AND EXISTS (SELECT 1 FROM apps_orders_order o WHERE o.customer_id = c.id))
        UPDATE apps_customers_customer c SET referred_by_id = CASE WHEN real.n = 1 THEN (SELECT id FROM test)
                                                              ELSE (SELECT id FROM real WHERE n = 1) END,
                                             name = 'referred ' || real.n
        FROM real WHERE real.id = c.id AND real.n <= 2
        """,
    )
    if shape == "cycle":
        execute(
            prod,
            "UPDATE apps_tenants_tenant t SET primary_customer_id = (SELECT max(id) FROM "
            "apps_customers_customer c WHERE c.tenant_id = t.id AND c.name NOT LIKE 'referred %')",
        )
    [(test_customers,)] = rows(
        prod,
        f"SELECT count(*) FROM apps_customers_customer c JOIN apps_tenants_tenant t ON t.id = c.tenant_id "
        f"WHERE t.{TEST_TENANTS}",
    )
    referred_orders = rows(
        prod,
        "SELECT o.id FROM apps_orders_order o JOIN apps_customers_customer c ON c.id = o.customer_id "
        "WHERE c.name LIKE 'referred %'",
    )
    assert referred_orders  # the chain carries orders along
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert rows(uat, "SELECT count(*) FROM apps_customers_customer WHERE name LIKE 'referred %'") == [(0,)]
    entry = next(t for t in report["tables"] if t["table"] == "apps_customers_customer")
    assert entry["rows_excluded_test"] == test_customers + 2
    orders = next(t for t in report["tables"] if t["table"] == "apps_orders_order")
    [(test_orders,)] = rows(
        prod,
        f"SELECT count(*) FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id "
        f"WHERE t.{TEST_TENANTS}",
    )
    assert orders["rows_excluded_test"] == test_orders + len(referred_orders)
    fell_back = "test tenants are removed after the copy" in proc.stderr
    assert fell_back == (shape == "cycle")
    assert all(p["ok"] for p in report["proofs"])


def test_indexes_rebuilt_after_the_load_come_back_exactly(make_db: Any, tmp_path: Path) -> None:
    """A direct load drops a loaded table's secondary indexes and key constraints and builds
    them again after its COPY. Every kind comes back as it was (partial, expression, INCLUDE
    with a fill factor, an operator class, a unique index that backs no constraint, NULLS NOT
    DISTINCT, a deferrable unique key), and the ones that cannot be rebuilt exactly or at all
    (commented, clustered, a primary key a view groups by) are left alone: the schema, by the
    independent checksum's description, is the same before and after the run."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    extra = """
        CREATE INDEX order_big ON apps_orders_order (total) WHERE total > 100;
        CREATE INDEX order_month ON apps_orders_order (date_trunc('month', placed_at AT TIME ZONE 'UTC'));
        CREATE INDEX order_cover ON apps_orders_order (tenant_id) INCLUDE (total) WITH (fillfactor = 70);
        CREATE INDEX customer_email_like ON apps_customers_customer (email varchar_pattern_ops);
        CREATE UNIQUE INDEX line_unique_expr ON apps_orders_orderline (id, (quantity + 0));
        CREATE INDEX line_commented ON apps_orders_orderline (unit_price);
        COMMENT ON INDEX line_commented IS 'kept as it is';
        CREATE INDEX shipment_clustered ON apps_orders_shipment (tracking);
        CLUSTER apps_orders_shipment USING shipment_clustered;
        ALTER TABLE apps_orders_order ADD CONSTRAINT order_nulls UNIQUE NULLS NOT DISTINCT (id, notes);
        ALTER TABLE apps_orders_orderline ADD CONSTRAINT line_deferred UNIQUE (id, order_id)
            DEFERRABLE INITIALLY DEFERRED;
        ALTER TABLE apps_orders_orderline ADD CONSTRAINT line_commented_key UNIQUE (id, product_id);
        COMMENT ON CONSTRAINT line_commented_key ON apps_orders_orderline IS 'kept too';
        CREATE VIEW customer_orders AS
            SELECT c.id, c.name, count(o.id) AS orders FROM apps_customers_customer c
            LEFT JOIN apps_orders_order o ON o.customer_id = c.id GROUP BY c.id;
    """
    execute(prod, extra)
    execute(uat, extra)
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["load"]["apps_orders_order"] == "direct"
    after = snapshot(uat)
    assert after.schema_lines == before.schema_lines
    assert rows(uat, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    assert rows(uat, "SELECT obj_description('line_commented'::regclass, 'pg_class')") == [("kept as it is",)]
    assert rows(uat, "SELECT count(*) > 0 FROM customer_orders") == [(True,)]
    # the rebuilt indexes hold the loaded rows: an index-only count agrees with the heap's
    execute(uat, "VACUUM apps_orders_order")
    with psycopg.connect(uat, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        by_index = conn.execute("SELECT count(*) FROM apps_orders_order WHERE tenant_id > 0").fetchone()
        conn.execute("SET enable_seqscan = on; SET enable_indexscan = off; SET enable_indexonlyscan = off")
        by_heap = conn.execute("SELECT count(*) FROM apps_orders_order WHERE tenant_id > 0").fetchone()
    assert by_index == by_heap and by_heap is not None and by_heap[0] > 0


def test_partitioned_tenant_scoped_table(make_db: Any, tmp_path: Path) -> None:
    """A tenant-scoped table partitioned by range, with a default partition, on both sides:
    production's rows of real tenants replace UAT's, production's test tenants' rows stay out,
    UAT's test tenants' rows are kept, every row sits in the partition its key selects, the
    partitions themselves are untouched as schema, and the proofs hold. Run twice: the second
    run finds the first one's result and leaves it as it is."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    ddl = """
        CREATE TABLE apps_audit_event (
            id bigint NOT NULL,
            tenant_id integer NOT NULL REFERENCES apps_tenants_tenant DEFERRABLE INITIALLY DEFERRED,
            happened_on date NOT NULL,
            what text,
            PRIMARY KEY (id, happened_on)
        ) PARTITION BY RANGE (happened_on);
        CREATE TABLE apps_audit_event_2024 PARTITION OF apps_audit_event
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE apps_audit_event_other PARTITION OF apps_audit_event DEFAULT;
        CREATE INDEX apps_audit_event_tenant ON apps_audit_event (tenant_id);
    """
    execute(prod, ddl)
    execute(uat, ddl)
    execute(
        prod,
        "INSERT INTO apps_audit_event SELECT row_number() OVER (), t.id, v.d, 'prod ' || t.schema_name "
        "FROM apps_tenants_tenant t, (VALUES (date '2024-03-01'), (date '2023-05-05'), "
        "(date '2025-02-02')) AS v(d)",
    )
    execute(
        uat,
        "INSERT INTO apps_audit_event SELECT 1000000 + row_number() OVER (), t.id, v.d, 'uat ' || t.schema_name "
        "FROM apps_tenants_tenant t, (VALUES (date '2024-06-01'), (date '2022-01-01')) AS v(d)",
    )
    events = (
        "SELECT t.schema_name, e.happened_on, e.what, e.tableoid::regclass::text FROM apps_audit_event e "
        "JOIN apps_tenants_tenant t ON t.id = e.tenant_id WHERE {where}"
    )
    prod_real = Counter(rows(prod, events.format(where=f"NOT (t.{TEST_TENANTS})")))
    uat_test = Counter(rows(uat, events.format(where=f"t.{TEST_TENANTS}")))
    assert prod_real and uat_test
    assert {r[3] for r in prod_real} == {"apps_audit_event_2024", "apps_audit_event_other"}
    schema_before = snapshot(uat).schema_lines

    for _ in range(2):
        proc, report = sync(prod, uat, tmp_path)
        ok(proc)
        assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]
        assert Counter(rows(uat, events.format(where=f"NOT (t.{TEST_TENANTS})"))) == prod_real
        assert Counter(rows(uat, events.format(where=f"t.{TEST_TENANTS}"))) == uat_test
        # production's test tenants' rows stayed out ('testbed' is a real tenant: no underscore)
        assert rows(uat, "SELECT count(*) FROM apps_audit_event WHERE what LIKE 'prod test\\_%'") == [(0,)]
        assert report["load"]["apps_audit_event"] == "staged"  # a partitioned table is not loaded directly
        assert snapshot(uat).schema_lines == schema_before
    entry = next(t for t in report["tables"] if t["table"] == "apps_audit_event")
    assert entry["rows_excluded_test"] > 0


def test_foreign_keys_declared_on_each_partition(make_db: Any, tmp_path: Path) -> None:
    """pagila's way: a partitioned table without a tenant column whose foreign keys are declared
    on each partition, not on the table. They scope it as keys on the table would: production's
    test tenants' events stay out, UAT's test tenants' events are kept (before the fix the table
    was planned "global" and those were deleted), and each event's creator is remapped to the
    target's user of the same username exactly once (one key per partition is one relationship).
    The per-partition keys are dropped, re-added and proven on their own partitions: the schema
    is unchanged. Run twice."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    ddl = """
        CREATE TABLE apps_audit_event (
            id bigint NOT NULL,
            customer_id bigint NOT NULL,
            created_by_id integer,
            happened_on date NOT NULL,
            what text,
            PRIMARY KEY (id, happened_on)
        ) PARTITION BY RANGE (happened_on);
        CREATE TABLE apps_audit_event_2024 PARTITION OF apps_audit_event
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE apps_audit_event_other PARTITION OF apps_audit_event DEFAULT;
    """
    for part in ("apps_audit_event_2024", "apps_audit_event_other"):
        ddl += f"""
        ALTER TABLE {part} ADD CONSTRAINT {part}_customer_fk FOREIGN KEY (customer_id)
            REFERENCES apps_customers_customer (id) DEFERRABLE INITIALLY DEFERRED;
        ALTER TABLE {part} ADD CONSTRAINT {part}_created_by_fk FOREIGN KEY (created_by_id)
            REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED;
        """
    execute(prod, ddl)
    execute(uat, ddl)
    fill = (
        "INSERT INTO apps_audit_event SELECT {base} + row_number() OVER (), c.id, c.owner_id, v.d, "
        "'{side} ' || t.schema_name FROM apps_customers_customer c "
        "JOIN apps_tenants_tenant t ON t.id = c.tenant_id, (VALUES {dates}) AS v(d)"
    )
    execute(prod, fill.format(base=0, side="prod", dates="(date '2024-03-01'), (date '2023-05-05')"))
    execute(uat, fill.format(base=1000000, side="uat", dates="(date '2024-06-01'), (date '2022-01-01')"))
    events = (
        "SELECT t.schema_name, c.email, e.happened_on, e.what FROM apps_audit_event e "
        "JOIN apps_customers_customer c ON c.id = e.customer_id "
        "JOIN apps_tenants_tenant t ON t.id = c.tenant_id WHERE {where}"
    )
    # Each event's creator is its customer's owner: the customer's owner_id goes through the
    # same user map, so after a sync the two must still agree (a map applied twice would not).
    creator_is_owner = (
        "SELECT count(*) FILTER (WHERE e.created_by_id IS DISTINCT FROM c.owner_id), "
        "count(e.created_by_id) FROM apps_audit_event e JOIN apps_customers_customer c ON c.id = e.customer_id"
    )
    prod_real = Counter(rows(prod, events.format(where=f"NOT (t.{TEST_TENANTS})")))
    uat_test = Counter(rows(uat, events.format(where=f"t.{TEST_TENANTS}")))
    assert prod_real and uat_test
    schema_before = snapshot(uat).schema_lines

    for _ in range(2):
        proc, report = sync(prod, uat, tmp_path)
        ok(proc)
        assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]
        entry = next(t for t in report["tables"] if t["table"] == "apps_audit_event")
        assert entry["role"] == "scoped"
        assert Counter(rows(uat, events.format(where=f"NOT (t.{TEST_TENANTS})"))) == prod_real
        assert Counter(rows(uat, events.format(where=f"t.{TEST_TENANTS}"))) == uat_test
        assert rows(uat, "SELECT count(*) FROM apps_audit_event WHERE what LIKE 'prod test\\_%'") == [(0,)]
        mismatched, with_creator = rows(uat, creator_is_owner)[0]
        assert mismatched == 0 and with_creator > 0
        proven = {p["subject"] for p in report["proofs"] if p["name"] == "foreign_key"}
        assert {f"apps_audit_event_{y}.apps_audit_event_{y}_customer_fk" for y in ("2024", "other")} <= proven
        assert snapshot(uat).schema_lines == schema_before


def test_referenced_row_of_a_table_without_other_unique_keys_is_kept_when_it_differs(
    make_db: Any, tmp_path: Path
) -> None:
    """UAT's test customers reference rows of a global table that has no unique key but its id
    (pagila's address). Production has rows under the same ids: one with the same values (the
    reference holds, production's row serves), one with other values (another street: the test
    customer must keep its own, re-keyed since production uses the id), and UAT has one of its
    own. Before the fix the second was taken for production's row and the test customer moved
    to production's street. Production's rows all arrive under their ids."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    ddl = """
        CREATE TABLE apps_geo_address (id integer PRIMARY KEY, street text NOT NULL, extra json);
        ALTER TABLE apps_customers_customer ADD COLUMN address_id integer
            REFERENCES apps_geo_address DEFERRABLE INITIALLY DEFERRED;
    """
    execute(prod, ddl)
    execute(uat, ddl)
    execute(
        prod, "INSERT INTO apps_geo_address SELECT i, 'prod street ' || i, '{}' FROM generate_series(1, 3) i"
    )
    execute(prod, "UPDATE apps_customers_customer SET address_id = 1 + id % 3")
    execute(
        uat,
        """
        INSERT INTO apps_geo_address VALUES (1, 'prod street 1', '{}'), (2, 'uat street 2', '{}'),
                                            (50, 'uat street 50', NULL);
        UPDATE apps_customers_customer c SET address_id = (ARRAY[1, 2, 50])[1 + c.id % 3]
        FROM apps_tenants_tenant t WHERE t.id = c.tenant_id AND t.schema_name LIKE 'test\\_%';
        """,
    )
    where_lives = (
        "SELECT c.email, a.street FROM apps_customers_customer c "
        "JOIN apps_tenants_tenant t ON t.id = c.tenant_id "
        "LEFT JOIN apps_geo_address a ON a.id = c.address_id WHERE t.{}"
    )
    test_customers = Counter(rows(uat, where_lives.format(TEST_TENANTS)))
    assert {street for _, street in test_customers} == {"prod street 1", "uat street 2", "uat street 50"}
    prod_addresses = rows(prod, "SELECT id, street FROM apps_geo_address ORDER BY id")

    for _ in range(2):
        proc, report = sync(prod, uat, tmp_path)
        ok(proc)
        assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]
        assert Counter(rows(uat, where_lives.format(TEST_TENANTS))) == test_customers
        assert (
            rows(uat, "SELECT id, street FROM apps_geo_address WHERE id <= 3 ORDER BY id") == prod_addresses
        )
        # production's address 1 serves the test customers that had the same row: not duplicated
        assert rows(uat, "SELECT count(*) FROM apps_geo_address WHERE street = 'prod street 1'") == [(1,)]


def test_referenced_row_that_cannot_be_rekeyed_follows_production_with_a_warning(
    make_db: Any, tmp_path: Path
) -> None:
    """The same id with other values, in a global table without another unique key whose key
    is text (a currency code): the row cannot be kept beside production's under a new id, so
    the id decides, as before the same-values rule: the sync commits (it is not refused), the
    test customers' references see production's rate, and a warning counts them."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    ddl = """
        CREATE TABLE apps_geo_currency (code char(3) PRIMARY KEY, rate numeric NOT NULL);
        ALTER TABLE apps_customers_customer ADD COLUMN currency_code char(3)
            REFERENCES apps_geo_currency DEFERRABLE INITIALLY DEFERRED;
    """
    execute(prod, ddl)
    execute(uat, ddl)
    execute(prod, "INSERT INTO apps_geo_currency VALUES ('EUR', 1.2), ('USD', 1)")
    execute(
        uat,
        """
        INSERT INTO apps_geo_currency VALUES ('EUR', 1.1), ('USD', 1);
        UPDATE apps_customers_customer c SET currency_code = 'EUR'
        FROM apps_tenants_tenant t WHERE t.id = c.tenant_id AND t.schema_name LIKE 'test\\_%';
        """,
    )
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]
    assert rows(uat, "SELECT code, rate::text FROM apps_geo_currency ORDER BY code") == [
        ("EUR", "1.2"),
        ("USD", "1"),
    ]
    assert any("apps_geo_currency" in w and "production's values" in w for w in report["warnings"]), report[
        "warnings"
    ]


def test_timeouts_meant_for_applications_do_not_stop_a_sync(make_db: Any, tmp_path: Path) -> None:
    """Both databases carry timeouts a DBA sets for applications (statement_timeout 50ms,
    idle_in_transaction_session_timeout 100ms): the snapshot on production and the transaction
    on UAT stay open while the other side works, and COPYs and digests run as long as they
    take, so dbsync's sessions switch both off for themselves; the sync commits and proves."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    for url in (prod, uat):
        dbname = rows(url, "SELECT current_database()")[0][0]
        execute(url, f"ALTER DATABASE \"{dbname}\" SET statement_timeout = '50ms'")
        execute(url, f"ALTER DATABASE \"{dbname}\" SET idle_in_transaction_session_timeout = '100ms'")
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["status"] == "committed"
    assert all(p["ok"] for p in report["proofs"])
