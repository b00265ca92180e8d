"""Self-tests of the test harness: the clusters, the sample data and the checksum."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.checksum import database_checksum, snapshot, table_checksums
from tests.fix_pg import Cluster, DbUrl, MakeDb, find_pg_bindir

TEST_TENANT = "left(schema_name, 5) = 'test_'"

# For each business table: the ids of the rows that belong to test tenants.
TEST_TENANT_ROWS: dict[str, str] = {
    "apps_tenants_tenant": f"SELECT id FROM apps_tenants_tenant WHERE {TEST_TENANT}",
    **{
        table: f"""SELECT x.id FROM {table} x JOIN apps_tenants_tenant t ON t.id = x.tenant_id
                   WHERE {TEST_TENANT.replace('schema_name', 't.schema_name')}"""
        for table in (
            "apps_tenants_tenantuser",
            "apps_suppliers_supplier",
            "apps_customers_customer",
            "apps_plants_plant",
            "apps_orders_order",
            "apps_notes_note",
        )
    },
    "apps_orders_orderline": f"""
        SELECT l.id FROM apps_orders_orderline l
        JOIN apps_orders_order o ON o.id = l.order_id
        JOIN apps_tenants_tenant t ON t.id = o.tenant_id
        WHERE {TEST_TENANT.replace('schema_name', 't.schema_name')}""",
    "apps_orders_shipment": f"""
        SELECT s.id FROM apps_orders_shipment s
        JOIN apps_orders_orderline l ON l.id = s.order_line_id
        JOIN apps_orders_order o ON o.id = l.order_id
        JOIN apps_tenants_tenant t ON t.id = o.tenant_id
        WHERE {TEST_TENANT.replace('schema_name', 't.schema_name')}""",
    "apps_orders_orderline_tags": f"""
        SELECT x.id FROM apps_orders_orderline_tags x
        JOIN apps_orders_orderline l ON l.id = x.orderline_id
        JOIN apps_orders_order o ON o.id = l.order_id
        JOIN apps_tenants_tenant t ON t.id = o.tenant_id
        WHERE {TEST_TENANT.replace('schema_name', 't.schema_name')}""",
}

TENANT_TABLES = (
    "apps_suppliers_supplier",
    "apps_customers_customer",
    "apps_plants_plant",
    "apps_orders_order",
    "apps_notes_note",
    "apps_tenants_tenantuser",
)


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def ids(url: str, query: str) -> set[int]:
    return {int(r[0]) for r in rows(url, query)}


def scalar(url: str, query: str, params: Any = None) -> Any:
    return rows(url, query, params)[0][0]


def fk_violations(url: str) -> list[str]:
    """Foreign keys whose referencing rows have no referenced row (checked by hand)."""
    found = []
    for conname, table, cols, reftable, refcols in rows(
        url,
        """
        SELECT con.conname, con.conrelid::regclass::text, array_agg(a.attname ORDER BY k.n),
               con.confrelid::regclass::text, array_agg(af.attname ORDER BY k.n)
        FROM pg_constraint con
        CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(c, fc, n)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.c
        JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = k.fc
        WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
        GROUP BY con.oid, con.conname, con.conrelid, con.confrelid
        """,
    ):
        join = " AND ".join(f"r.{rc} = c.{cc}" for cc, rc in zip(cols, refcols, strict=True))
        notnull = " AND ".join(f"c.{cc} IS NOT NULL" for cc in cols)
        orphans = scalar(
            url,
            f"SELECT count(*) FROM {table} c WHERE {notnull} "
            f"AND NOT EXISTS (SELECT 1 FROM {reftable} r WHERE {join})",
        )
        if orphans:
            found.append(f"{conname}: {orphans} orphans")
    return found


def sequences_behind(url: str) -> list[str]:
    """Serial/identity sequences whose next value would collide with an existing id."""
    behind = []
    for table, col, seq in rows(
        url,
        """
        SELECT c.relname, a.attname, pg_get_serial_sequence(c.relname, a.attname)
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
          AND pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL
        """,
    ):
        last, called, top = rows(
            url, f"SELECT s.last_value, s.is_called, (SELECT max({col}) FROM {table}) FROM {seq} s"
        )[0]
        nxt = last + 1 if called else last
        if top is not None and nxt <= top:
            behind.append(f"{seq}: next {nxt} <= max {top}")
    return behind


# -- clusters -------------------------------------------------------------------


def test_harness_find_pg_bindir() -> None:
    bindir = find_pg_bindir()
    for tool in ("initdb", "postgres", "psql", "pg_dump"):
        assert (bindir / tool).is_file(), tool


def test_harness_three_independent_clusters(pg_clusters: list[Cluster]) -> None:
    assert len(pg_clusters) == 3
    assert all(c.running for c in pg_clusters)
    assert len({c.port for c in pg_clusters}) == 3
    assert len({c.datadir for c in pg_clusters}) == 3
    system_ids = {
        c.execute("postgres", "SELECT system_identifier FROM pg_control_system()")[0][0]
        for c in pg_clusters
    }
    assert len(system_ids) == 3, "each cluster must be its own initdb"
    for c in pg_clusters:
        assert c.host == "127.0.0.1"
        assert c.superuser == "postgres"
        assert c.url("db").startswith(f"postgresql://postgres:postgres-pw@127.0.0.1:{c.port}/")
        settings = dict(c.execute("postgres", "SELECT name, setting FROM pg_settings"))
        assert settings["fsync"] == "off"
        assert settings["listen_addresses"] == "127.0.0.1"
        assert settings["unix_socket_directories"] == str(c.socket_dir)


def test_harness_password_authentication(pg_clusters: list[Cluster]) -> None:
    c = pg_clusters[2]
    with psycopg.connect(c.url("postgres", user="secret_user")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("secret_user",)
    assert ":s3cr3t-pw@" in c.url("postgres", user="secret_user")
    for bad in (c.url("postgres", password="wrong"), c.url("postgres", password="")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(bad, connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(c.url("postgres", user="secret_user", password="nope")).close()


def test_harness_stop_and_start_again(pg_clusters: list[Cluster], make_db: MakeDb) -> None:
    c = pg_clusters[2]
    url = make_db(2, "empty")
    port = c.port
    c.stop()
    try:
        assert not c.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2).close()
    finally:
        c.start()
    assert c.running and c.port == port
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM apps_orders_order").fetchone() == (0,)
    c.stop("immediate")  # crash-like stop: the restart does recovery
    c.start()
    assert scalar(url, "SELECT 1") == 1


def test_harness_psql_file_variables(pg_clusters: list[Cluster], tmp_path: Path) -> None:
    script = tmp_path / "v.sql"
    script.write_text("\\echo :greeting\nSELECT :'greeting' || '!' AS g \\gset\n\\echo :g\n")
    out = pg_clusters[0].psql_file("postgres", script, {"greeting": "hello world"})
    assert out.splitlines() == ["hello world", "hello world!"]
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT 1/0;\nSELECT 'not reached';\n")
    with pytest.raises(RuntimeError, match="division by zero"):
        pg_clusters[0].psql_file("postgres", bad, {})


def test_harness_make_db_is_fast_and_isolated(make_db: MakeDb) -> None:
    first = make_db(0, "prod")  # builds the template if no earlier test did
    assert isinstance(first, DbUrl) and isinstance(first, str)
    assert first.cluster.port and first.kind == "prod" and first.variant == "deferrable"
    started = time.monotonic()
    second = make_db(0, "prod")
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"creating a database from the template took {elapsed:.2f}s"
    assert first != second and first.dbname != second.dbname
    before = database_checksum(first)
    assert database_checksum(second) == before
    with psycopg.connect(second) as conn:
        conn.execute("DELETE FROM apps_notes_note")
    assert database_checksum(first) == before


def test_harness_prod_and_uat_fixtures(prod_url: DbUrl, uat_url: DbUrl) -> None:
    assert prod_url.cluster is not uat_url.cluster
    assert (prod_url.kind, uat_url.kind) == ("prod", "uat")
    assert scalar(prod_url, "SELECT count(*) FROM auth_user WHERE username = 'admin'") == 1
    assert scalar(uat_url, "SELECT count(*) FROM auth_user WHERE username = 'uatadmin'") == 1


# -- sample data ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["deferrable", "immediate"])
@pytest.mark.parametrize("kind", ["prod", "uat", "empty"])
def test_harness_sample_loads_with_valid_keys(make_db: MakeDb, kind: str, variant: str) -> None:
    url = make_db(2, kind, variant)
    fks = rows(
        url,
        "SELECT condeferrable, condeferred, count(*) FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace "
        "GROUP BY 1, 2",
    )
    expected = (True, True) if variant == "deferrable" else (False, False)
    assert [(d, i) for d, i, _ in fks] == [expected]
    assert fks[0][2] == 29
    assert fk_violations(url) == []
    assert sequences_behind(url) == []
    tables = table_checksums(url)
    assert len(tables) == 22
    if kind == "empty":
        assert scalar(url, "SELECT count(*) FROM apps_tenants_tenant") == 0


def test_harness_sample_prod_content(prod_url: DbUrl) -> None:
    tenants = dict(rows(prod_url, "SELECT schema_name, id FROM apps_tenants_tenant"))
    assert len(tenants) == 10
    test_ids = ids(prod_url, TEST_TENANT_ROWS["apps_tenants_tenant"])
    assert test_ids == {tenants["test_demo"], tenants["test_qa"]}
    # The LIKE trap: 'testbed' is a real tenant that LIKE 'test_%' matches.
    assert "testbed" in tenants
    assert tenants["testbed"] in ids(
        prod_url, "SELECT id FROM apps_tenants_tenant WHERE schema_name LIKE 'test_%'"
    )
    # Test tenants own rows in every tenant-scoped and FK-scoped table.
    for table, query in TEST_TENANT_ROWS.items():
        assert ids(prod_url, query), table
    # Orders reference customers and suppliers of their own tenant.
    assert scalar(prod_url, """
        SELECT count(*) FROM apps_orders_order o
        JOIN apps_customers_customer c ON c.id = o.customer_id
        LEFT JOIN apps_suppliers_supplier s ON s.id = o.supplier_id
        WHERE c.tenant_id <> o.tenant_id OR s.tenant_id <> o.tenant_id""") == 0
    # Notes point at an existing supplier/customer/order of the same tenant.
    assert scalar(prod_url, """
        SELECT count(*) FROM apps_notes_note n
        JOIN django_content_type ct ON ct.id = n.content_type_id
        WHERE NOT EXISTS (SELECT 1 FROM apps_suppliers_supplier x
                          WHERE ct.model = 'supplier' AND x.id = n.object_id
                            AND x.tenant_id = n.tenant_id)
          AND NOT EXISTS (SELECT 1 FROM apps_customers_customer x
                          WHERE ct.model = 'customer' AND x.id = n.object_id
                            AND x.tenant_id = n.tenant_id)
          AND NOT EXISTS (SELECT 1 FROM apps_orders_order x
                          WHERE ct.model = 'order' AND x.id = n.object_id
                            AND x.tenant_id = n.tenant_id)""") == 0
    # Owners and creators are members of the row's tenant.
    assert scalar(prod_url, """
        SELECT count(*) FROM apps_suppliers_supplier s
        WHERE NOT EXISTS (SELECT 1 FROM apps_tenants_tenantuser m
                          WHERE m.tenant_id = s.tenant_id AND m.user_id = s.owner_id)
          AND s.owner_id IS NOT NULL""") == 0
    # Nullable foreign keys hold some NULLs; jsonb and timestamptz are populated.
    for table, col in [
        ("apps_orders_order", "supplier_id"),
        ("apps_orders_order", "created_by_id"),
        ("apps_plants_plant", "supplier_id"),
        ("apps_customers_customer", "owner_id"),
        ("apps_orders_order", "notes"),
        ("apps_orders_shipment", "shipped_at"),
    ]:
        assert scalar(prod_url, f"SELECT count(*) FROM {table} WHERE {col} IS NULL") > 0, col
    assert scalar(prod_url, "SELECT count(*) FROM apps_orders_order WHERE notes ? 'delivery'") > 0
    # Every order has lines and a total that matches them.
    assert scalar(prod_url, """
        SELECT count(*) FROM apps_orders_order o
        WHERE o.total <> (SELECT sum(quantity * unit_price) FROM apps_orders_orderline
                          WHERE order_id = o.id)""") == 0
    # A category whose parent has a higher id.
    assert scalar(prod_url, "SELECT count(*) FROM apps_catalog_category WHERE parent_id > id") > 0
    # Sequences: some are ahead of max(id) (deleted newest rows).
    last, top = rows(prod_url, """SELECT (SELECT last_value FROM apps_orders_order_id_seq),
                                         (SELECT max(id) FROM apps_orders_order)""")[0]
    assert last > top


def test_harness_sample_uat_traps(prod_url: DbUrl, uat_url: DbUrl) -> None:
    # Test tenants on each side.
    uat_tenants = f"SELECT schema_name, id FROM apps_tenants_tenant WHERE {TEST_TENANT}"
    assert dict(rows(uat_url, uat_tenants)) == {"test_alpha": 3, "test_beta": 11}
    assert scalar(prod_url, "SELECT schema_name FROM apps_tenants_tenant WHERE id = 3") == "initech"
    # Content types: production's pairs all exist in UAT, app models under other ids.
    ct_query = "SELECT id, app_label, model FROM django_content_type"
    prod_ct = {(a, m): i for i, a, m in rows(prod_url, ct_query)}
    uat_ct = {(a, m): i for i, a, m in rows(uat_url, ct_query)}
    assert prod_ct.keys() <= uat_ct.keys()
    assert all(prod_ct[k] != uat_ct[k] for k in prod_ct if k[0].startswith("apps_"))
    # Usernames: some on both sides (mostly under other ids), some on one side only.
    prod_users = dict(rows(prod_url, "SELECT username, id FROM auth_user"))
    uat_users = dict(rows(uat_url, "SELECT username, id FROM auth_user"))
    both = prod_users.keys() & uat_users.keys()
    assert both == {"alice", "bob", "carol", "grace", "heidi"}
    assert "admin" in prod_users and "admin" not in uat_users
    uat_only = uat_users.keys() - prod_users.keys()
    assert {"uatadmin", "qa_tester1", "qa_tester2", "uat_zoe"} <= uat_only
    assert any(prod_users[u] != uat_users[u] for u in both)
    # UAT test tenants' rows collide with production ids, in every business table.
    for table, query in TEST_TENANT_ROWS.items():
        uat_test = ids(uat_url, query)
        prod_all = ids(prod_url, f"SELECT id FROM {table}")
        prod_real = prod_all - ids(prod_url, query)
        assert uat_test & prod_real, f"{table}: no collision with a real production row"
        assert uat_test - prod_all, f"{table}: no row free of collisions"
    # UAT's own catalog rows, used by test tenants' order lines, absent from production.
    own = rows(uat_url, f"""
        SELECT DISTINCT p.id, p.sku, c.id, c.name FROM apps_orders_orderline l
        JOIN apps_orders_order o ON o.id = l.order_id
        JOIN apps_tenants_tenant t ON t.id = o.tenant_id
        JOIN apps_catalog_product p ON p.id = l.product_id
        JOIN apps_catalog_category c ON c.id = p.category_id
        WHERE {TEST_TENANT.replace('schema_name', 't.schema_name')}
          AND p.sku LIKE 'UAT-%'""")
    assert {r[1] for r in own} == {"UAT-FIX-A", "UAT-FIX-B"}
    prod_skus = {r[0] for r in rows(prod_url, "SELECT sku FROM apps_catalog_product")}
    assert not prod_skus & {"UAT-FIX-A", "UAT-FIX-B"}
    assert ids(prod_url, "SELECT id FROM apps_catalog_product") >= {r[0] for r in own}
    assert scalar(prod_url, "SELECT name FROM apps_catalog_category WHERE id = 9") != "UAT Fixtures"
    assert scalar(prod_url, "SELECT name FROM apps_catalog_tag WHERE id = 7") != "uat-regression"


RICH_ROW_COUNTS = {
    "public.customers": 40, "billing.invoices": 80, "billing.invoice_lines": 200,
    "billing.payments": 35, "audit.event_log": 31, "audit.records": 14,
    "audit.login_records": 8, "public.room_bookings": 12, "audit.documents": 3,
    "billing.monthly_revenue": 17,
}


@pytest.mark.parametrize("index", [0, 1, 2])
def test_harness_rich_sample_on_any_cluster(make_db: MakeDb, index: int) -> None:
    url = make_db(index, "rich", "immediate")  # the variant does not apply to "rich"
    assert (url.kind, url.variant) == ("rich", "deferrable")
    counts = {table: scalar(url, f"SELECT count(*) FROM {table}") for table in RICH_ROW_COUNTS}
    assert counts == RICH_ROW_COUNTS
    assert scalar(url, "SELECT count(*) FROM pg_largeobject_metadata") == 3
    assert scalar(url, "SELECT count(*) FROM audit.documents d WHERE d.sha256 = sha256(lo_get(d.content_oid))") == 3
    assert scalar(url, "SELECT string_agg(e::text, ',' ORDER BY e) FROM unnest(enum_range(NULL::public.priority)) e") \
        == "low,medium,high,urgent"
    assert fk_violations(url) == []
    with pytest.raises(ValueError, match="no scale"):
        make_db(index, "rich", scale=2)


def test_harness_prod_scale(make_db: MakeDb) -> None:
    one = make_db(2, "prod")
    three = make_db(2, "prod", scale=3)
    for table, factor in [("apps_suppliers_supplier", 3), ("apps_catalog_product", 3),
                          ("auth_user", 1), ("apps_tenants_tenant", 1)]:
        n1 = scalar(one, f"SELECT count(*) FROM {table}")
        n3 = scalar(three, f"SELECT count(*) FROM {table}")
        assert n3 == factor * n1, table
    assert fk_violations(three) == []
    # Products 1-30 are the same at every scale (uat_data.sql relies on it).
    q = "SELECT id, sku, name, category_id, price FROM apps_catalog_product"
    q += " WHERE id <= 30 ORDER BY id"
    assert rows(one, q) == rows(three, q)


# -- checksum ---------------------------------------------------------------------


def test_harness_checksum_detects_changes(make_db: MakeDb) -> None:
    url = make_db(2, "prod")
    base = snapshot(url)
    assert base.checksum == database_checksum(url), "stable across runs"
    assert base.checksum == database_checksum(make_db(2, "prod")), "equal for equal databases"
    # ... also when built separately on another cluster (other OIDs, other system id)
    assert base.checksum == database_checksum(make_db(0, "prod"))
    assert base.checksum != database_checksum(make_db(2, "uat"))
    assert base.checksum != database_checksum(make_db(2, "prod", "immediate"))
    assert "public.apps_orders_order_id_seq" in base.sequences
    assert base.row_counts["public.apps_tenants_tenant"] == 10

    def changed_by(change: str, undo: str) -> list[str]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(change)
            after = snapshot(url)
            conn.execute(undo)
        assert after.checksum != base.checksum, change
        assert snapshot(url).checksum == base.checksum, f"not restored by {undo}"
        return after.diff(base)

    # One row.
    diff = changed_by(
        "UPDATE apps_orders_order SET total = total + 0.01 WHERE id = 5",
        "UPDATE apps_orders_order SET total = total - 0.01 WHERE id = 5",
    )
    assert len(diff) == 1 and diff[0].startswith("table public.apps_orders_order:")
    # A one-microsecond change to a timestamptz.
    diff = changed_by(
        "UPDATE apps_orders_order SET placed_at = placed_at + interval '1us' WHERE id = 7",
        "UPDATE apps_orders_order SET placed_at = placed_at - interval '1us' WHERE id = 7",
    )
    assert len(diff) == 1
    # One sequence value, then only is_called.
    last = scalar(url, "SELECT last_value FROM apps_catalog_tag_id_seq")
    diff = changed_by(
        "SELECT setval('apps_catalog_tag_id_seq', 99)",
        f"SELECT setval('apps_catalog_tag_id_seq', {last})",
    )
    assert diff == [f"sequence public.apps_catalog_tag_id_seq: (99, True) vs ({last}, True)"]
    diff = changed_by(
        f"SELECT setval('apps_catalog_tag_id_seq', {last}, false)",
        f"SELECT setval('apps_catalog_tag_id_seq', {last})",
    )
    assert len(diff) == 1
    # One constraint: deferrability, then validation.
    con = "apps_orders_shipment_order_line_id_68cee2b2_fk_apps_orde"
    diff = changed_by(
        f"ALTER TABLE apps_orders_shipment ALTER CONSTRAINT {con} NOT DEFERRABLE",
        f"ALTER TABLE apps_orders_shipment ALTER CONSTRAINT {con} DEFERRABLE INITIALLY DEFERRED",
    )
    assert diff and all(line.startswith("schema only in") for line in diff)
    changed_by(
        "ALTER TABLE apps_catalog_tag ADD CONSTRAINT tag_name_nonempty CHECK (name <> '')",
        "ALTER TABLE apps_catalog_tag DROP CONSTRAINT tag_name_nonempty",
    )
    # An index and a column default.
    changed_by(
        "CREATE INDEX extra_idx ON apps_orders_order (total)",
        "DROP INDEX extra_idx",
    )
    changed_by(
        "ALTER TABLE apps_orders_orderline ALTER COLUMN quantity SET DEFAULT 1",
        "ALTER TABLE apps_orders_orderline ALTER COLUMN quantity DROP DEFAULT",
    )
    # A row deleted and inserted back unchanged leaves the checksum as it was.
    tag_row = "SELECT orderline_id, tag_id FROM apps_orders_orderline_tags WHERE id = 1"
    line, tag = rows(url, tag_row)[0]
    changed_by(
        "DELETE FROM apps_orders_orderline_tags WHERE id = 1",
        f"INSERT INTO apps_orders_orderline_tags VALUES (1, {line}, {tag})",
    )


def test_harness_checksum_ignores_temp_tables_and_session_settings(make_db: MakeDb) -> None:
    url = make_db(2, "uat")
    before = database_checksum(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'Pacific/Chatham'")
        conn.execute("SET DateStyle = 'SQL, DMY'")
        conn.execute("CREATE TEMP TABLE scratch AS SELECT * FROM apps_orders_order")
        conn.execute("CREATE TEMP SEQUENCE scratch_seq")
        conn.execute("CREATE TEMP VIEW scratch_v AS SELECT 1 AS x")
        # taken while the temp objects exist, from another session
        assert database_checksum(url) == before
        conn.execute("SELECT nextval('apps_orders_order_id_seq')")  # a real change
    assert database_checksum(url) != before


def test_harness_checksum_covers_every_schema_not_system_ones(make_db: MakeDb) -> None:
    url = make_db(2, "empty")
    before = snapshot(url)
    assert all(name.startswith("public.") for name in before.tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE UNLOGGED TABLE other.t (id int GENERATED ALWAYS AS IDENTITY, v real)")
        mid = snapshot(url)
        assert mid.checksum != before.checksum
        conn.execute("INSERT INTO other.t (v) VALUES (0.1 + 0.2)")
        after = snapshot(url)
    assert "other.t" in after.tables and after.row_counts["other.t"] == 1
    assert after.sequences["other.t_id_seq"] == (1, True)
    assert after.tables["other.t"] != mid.tables["other.t"]
