"""``dbsync`` on a schema built by a real Django application's migrations, to check generality.

The sample databases of ``tests/sample`` are hand-written SQL imitating Django. Here the schema
is whatever Django itself creates: ``tests/django_app`` is a small multi-tenant project (apps
labelled ``apps_tenants``, ``apps_catalog``, ``apps_suppliers``, ``apps_customers``,
``apps_orders`` and ``apps_notes``, with Django's admin, auth, contenttypes and sessions),
whose committed migrations ``manage.py migrate`` applies to truly empty databases (not
``make_db``'s, which hold the sample schema), and ``tests/django_app/seed.py`` loads through the
ORM (its docstring describes the data and its traps). UAT is migrated with its apps listed in
another order, so its content type ids differ from production's.

Each database is migrated and seeded once per module into a template; every test gets fresh
copies (production on cluster 0, UAT on cluster 1), dropped when it ends. ``dbsync sync`` runs
without any configuration: the defaults are the seed's Django conventions. The oracles are SQL
joins written for this schema and, independently, Django's ORM (``manage.py orm_probe``).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.checksum import snapshot
from tests.fix_pg import Cluster, DbUrl
from tests.test_restore import restore, same_data
from tests.test_sync import execute, ok, rows, sync

DJANGO_DIR = Path(__file__).resolve().parent / "django_app"
TEST = "t.schema_name LIKE 'test\\_%'"
REAL = f"NOT ({TEST})"
EXCLUDED_TABLES = (
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
    "django_session",
)
_names = itertools.count(1)


# -- the Django project ------------------------------------------------------------------------


def django_env(url: DbUrl | tuple[Cluster, str], *, apps_reversed: bool = False) -> dict[str, str]:
    cluster, dbname = (url.cluster, url.dbname) if isinstance(url, DbUrl) else url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DJANGO_"))}
    env.update(
        DJANGO_DB_NAME=dbname,
        DJANGO_DB_HOST=cluster.host,
        DJANGO_DB_PORT=str(cluster.port),
        DJANGO_DB_USER=cluster.superuser,
        DJANGO_DB_PASSWORD=cluster.password,
        PYTHONDONTWRITEBYTECODE="1",
    )
    if apps_reversed:
        env["DJANGO_APPS_ORDER"] = "reversed"
    return env


def run_django(
    url: DbUrl | tuple[Cluster, str], *args: str, apps_reversed: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in the project's directory (``manage.py ...`` or ``seed.py ...``)."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=DJANGO_DIR,
        env=django_env(url, apps_reversed=apps_reversed),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{args} exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def orm_probe(url: DbUrl) -> dict[str, Any]:
    probe: dict[str, Any] = json.loads(run_django(url, "manage.py", "orm_probe").stdout)
    return probe


@pytest.fixture(scope="module")
def django_templates(pg_clusters: list[Cluster]) -> Iterator[dict[str, tuple[Cluster, str]]]:
    """Production (cluster 0) and UAT (cluster 1) templates: created empty, migrated, seeded."""
    if importlib.util.find_spec("django") is None:
        pytest.fail("Django is not installed: pip install 'django>=5.1,<6' (the dev extra)")
    templates = {"prod": (pg_clusters[0], "dj_tpl_prod"), "uat": (pg_clusters[1], "dj_tpl_uat")}
    try:
        for role, (cluster, name) in templates.items():
            cluster.drop_database(name)
            cluster.create_database(name)  # from template1: truly empty
            assert cluster.execute(name, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
            run_django((cluster, name), "manage.py", "migrate", "--no-input", "-v0", apps_reversed=role == "uat")
            run_django((cluster, name), "seed.py", role)
            cluster.execute(name, "VACUUM (FREEZE, ANALYZE)")
        yield templates
    finally:
        for cluster, name in templates.values():
            cluster.drop_database(name)


@pytest.fixture
def django_db(django_templates: dict[str, tuple[Cluster, str]]) -> Iterator[Callable[[str], DbUrl]]:
    """Factory: django_db("prod" | "uat") -> a fresh copy of that template, dropped afterwards."""
    created: list[DbUrl] = []

    def factory(role: str) -> DbUrl:
        cluster, template = django_templates[role]
        name = f"dj{next(_names)}_{role}"
        cluster.drop_database(name)
        cluster.create_database(name, template=template)
        url = DbUrl(cluster, name, f"django-{role}", "deferrable")
        created.append(url)
        return url

    yield factory
    for url in created:
        if not url.cluster.running:
            url.cluster.start()
        url.cluster.drop_database(url.dbname)


@pytest.fixture
def prod(django_db: Callable[[str], DbUrl]) -> DbUrl:
    return django_db("prod")


@pytest.fixture
def uat(django_db: Callable[[str], DbUrl]) -> DbUrl:
    return django_db("uat")


# -- the oracle: joins over the Django schema, by values rather than ids -----------------------------

ORDERS = """
SELECT t.schema_name, c.email, s.name, u.username, o.total, o.placed_at, o.notes::text, o.status,
       (SELECT string_agg(tg.name, ',' ORDER BY tg.name) FROM apps_orders_order_tags ot
        JOIN apps_catalog_tag tg ON tg.id = ot.tag_id WHERE ot.order_id = o.id) AS tags
FROM apps_orders_order o
JOIN apps_tenants_tenant t ON t.id = o.tenant_id
JOIN apps_customers_customer c ON c.id = o.customer_id AND c.tenant_id = o.tenant_id
LEFT JOIN apps_suppliers_supplier s ON s.id = o.supplier_id AND s.tenant_id = o.tenant_id
LEFT JOIN auth_user u ON u.id = o.created_by_id
WHERE {where}
"""
LINES = """
SELECT t.schema_name, o.total, o.placed_at, p.sku, l.quantity, l.unit_price, sh.tracking, sh.shipped_at
FROM apps_orders_orderline l
JOIN apps_orders_order o ON o.id = l.order_id
JOIN apps_tenants_tenant t ON t.id = o.tenant_id
JOIN apps_catalog_product p ON p.id = l.product_id
LEFT JOIN apps_orders_shipment sh ON sh.order_line_id = l.id
WHERE {where}
"""
# A generic foreign key resolved by hand: the content type's model names the table.
NOTES = """
SELECT t.schema_name, n.body, ct.app_label, ct.model,
       CASE ct.app_label || '.' || ct.model
         WHEN 'apps_orders.order' THEN (SELECT c.email || ' ' || o.total FROM apps_orders_order o
              JOIN apps_customers_customer c ON c.id = o.customer_id
              WHERE o.id = n.object_id AND o.tenant_id = n.tenant_id)
         WHEN 'apps_customers.customer' THEN (SELECT c.email FROM apps_customers_customer c
              WHERE c.id = n.object_id AND c.tenant_id = n.tenant_id)
         WHEN 'apps_suppliers.supplier' THEN (SELECT s.name FROM apps_suppliers_supplier s
              WHERE s.id = n.object_id AND s.tenant_id = n.tenant_id)
         WHEN 'apps_tenants.tenant' THEN (SELECT x.schema_name FROM apps_tenants_tenant x WHERE x.id = n.object_id)
         WHEN 'apps_catalog.product' THEN (SELECT p.sku FROM apps_catalog_product p WHERE p.id = n.object_id)
       END AS target
FROM apps_notes_note n
JOIN apps_tenants_tenant t ON t.id = n.tenant_id
JOIN django_content_type ct ON ct.id = n.content_type_id
WHERE {where}
"""
ATTACHMENTS = """
SELECT t.schema_name, a.filename, a.size, a.uploaded_at, o.total
FROM apps_notes_attachment a
JOIN apps_tenants_tenant t ON t.id = a.tenant_id
LEFT JOIN apps_orders_order o ON o.id = a.order_id AND o.tenant_id = a.tenant_id
WHERE {where}
"""
PEOPLE = """
SELECT 'member', t.schema_name, u.username, m.role FROM apps_tenants_tenantuser m
JOIN apps_tenants_tenant t ON t.id = m.tenant_id JOIN auth_user u ON u.id = m.user_id WHERE {where}
UNION ALL
SELECT 'profile', t.schema_name, u.username, p.bio || ' ' || p.timezone FROM apps_tenants_profile p
JOIN apps_tenants_tenant t ON t.id = p.tenant_id JOIN auth_user u ON u.id = p.user_id WHERE {where}
UNION ALL
SELECT 'preferences', t.schema_name, u.username, p.theme FROM apps_tenants_preferences p
JOIN apps_tenants_tenant t ON t.id = p.tenant_id JOIN auth_user u ON u.id = p.user_id WHERE {where}
UNION ALL
SELECT 'primary', t.schema_name, u.username, m.role FROM apps_tenants_tenantuser m
JOIN apps_tenants_tenant t ON t.id = m.tenant_id JOIN auth_user u ON u.id = m.user_id WHERE m.is_primary AND {where}
UNION ALL
SELECT 'supplier', t.schema_name, s.name, concat_ws(' ', ow.username, cr.username) FROM apps_suppliers_supplier s
JOIN apps_tenants_tenant t ON t.id = s.tenant_id LEFT JOIN auth_user ow ON ow.id = s.owner_id
LEFT JOIN auth_user cr ON cr.id = s.created_by_id WHERE {where}
UNION ALL
SELECT 'customer', t.schema_name, c.email, concat_ws(' ', ow.username, cr.username) FROM apps_customers_customer c
JOIN apps_tenants_tenant t ON t.id = c.tenant_id LEFT JOIN auth_user ow ON ow.id = c.owner_id
LEFT JOIN auth_user cr ON cr.id = c.created_by_id WHERE {where}
"""
# Multi-table inheritance: a rush order is an order row plus a child row keyed by the order's id.
RUSH = """
SELECT t.schema_name, c.email, o.total, o.placed_at, r.deadline
FROM apps_orders_rushorder r
JOIN apps_orders_order o ON o.id = r.order_ptr_id
JOIN apps_tenants_tenant t ON t.id = o.tenant_id
JOIN apps_customers_customer c ON c.id = o.customer_id
WHERE {where}
"""
# A generic relation with a text key, pointing at integer and at UUID primary keys.
ACTIVITIES = """
SELECT t.schema_name, a.verb, ct.model,
       CASE ct.app_label || '.' || ct.model
         WHEN 'apps_orders.order' THEN (SELECT c.email || ' ' || o.total FROM apps_orders_order o
              JOIN apps_customers_customer c ON c.id = o.customer_id
              WHERE o.id::text = a.object_pk AND o.tenant_id = a.tenant_id)
         WHEN 'apps_notes.attachment' THEN (SELECT f.filename FROM apps_notes_attachment f
              WHERE f.id::text = a.object_pk AND f.tenant_id = a.tenant_id)
       END AS target
FROM apps_notes_activity a
JOIN apps_tenants_tenant t ON t.id = a.tenant_id
JOIN django_content_type ct ON ct.id = a.content_type_id
WHERE {where}
"""
ORACLES = {
    "orders": ORDERS,
    "lines": LINES,
    "rush": RUSH,
    "notes": NOTES,
    "activities": ACTIVITIES,
    "attachments": ATTACHMENTS,
    "people": PEOPLE,
}


def oracle(url: str, name: str, where: str) -> Counter[tuple[Any, ...]]:
    return Counter(rows(url, ORACLES[name].format(where=where)))


def test_django_schema_is_real(prod: DbUrl, uat: DbUrl) -> None:
    """The databases hold what Django's migrations made, and the traps the tests rely on."""
    applied = rows(prod, "SELECT app, name FROM django_migrations WHERE app LIKE 'apps\\_%' ORDER BY 1, 2")
    assert ("apps_orders", "0002_order_status") in applied and ("apps_notes", "0001_initial") in applied
    assert rows(
        prod, "SELECT bool_and(condeferrable AND condeferred) FROM pg_constraint WHERE contype = 'f'"
    ) == [(True,)]
    assert rows(prod, "SELECT data_type FROM information_schema.columns WHERE table_name = 'apps_notes_attachment' "
                "AND column_name = 'id'") == [("uuid",)]
    ct = "SELECT id FROM django_content_type WHERE (app_label, model) = ('apps_orders', 'order')"
    assert rows(prod, ct) != rows(uat, ct)
    assert {r[0] for r in rows(prod, "SELECT schema_name FROM apps_tenants_tenant t WHERE " + TEST)} == {
        "test_demo", "test_qa"}
    uat_test = rows(uat, "SELECT id FROM apps_tenants_tenant t WHERE " + TEST)
    prod_real = rows(prod, "SELECT id FROM apps_tenants_tenant t WHERE " + REAL)
    assert {r[0] for r in uat_test} <= {r[0] for r in prod_real}  # every UAT test tenant's id collides


def test_sync_without_config_keeps_uat_test_tenants(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    prod_before = snapshot(prod)
    uat_before = snapshot(uat)
    uat_test = {name: oracle(uat, name, TEST) for name in ORACLES}
    prod_real = {name: oracle(prod, name, REAL) for name in ORACLES}
    assert all(uat_test.values()) and all(prod_real.values())
    uat_users = {r[0] for r in rows(uat, "SELECT username FROM auth_user")}
    uat_test_ids = {r[0] for r in rows(uat, "SELECT id FROM apps_tenants_tenant t WHERE " + TEST)}

    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["status"] == "committed"
    failed = [p for p in report["proofs"] if not p["ok"]]
    assert report["proofs"] and not failed, failed
    assert snapshot(prod).checksum == prod_before.checksum  # production is only read

    # Tenants: production's real ones (testbed included), UAT's test ones; no test_demo, no test_qa.
    tenants = {r[0] for r in rows(uat, "SELECT schema_name FROM apps_tenants_tenant")}
    prod_tenants = {r[0] for r in rows(prod, "SELECT schema_name FROM apps_tenants_tenant t WHERE " + REAL)}
    assert "testbed" in prod_tenants
    assert tenants == prod_tenants | {"test_alpha", "test_beta"}

    # UAT's test tenants keep every row, by value: memberships, profiles, suppliers, customers,
    # orders (with their m2m tags), lines, shipments, attachments and notes (generic FKs resolved).
    for name in ORACLES:
        assert oracle(uat, name, TEST) == uat_test[name], name
    for name in ("notes", "activities"):
        assert all(target is not None for *_, target in oracle(uat, name, TEST)), name

    # Production's real tenants arrive whole; users follow their usernames, else the superuser.
    def as_uat(row: tuple[Any, ...]) -> tuple[Any, ...]:
        username = row[3]
        return (*row[:3], None if username is None else username if username in uat_users else "uatadmin", *row[4:])

    assert oracle(uat, "orders", REAL) == Counter({as_uat(r): n for r, n in prod_real["orders"].items()})
    for name in ("lines", "rush", "notes", "activities", "attachments"):
        assert oracle(uat, name, REAL) == prod_real[name], name
    real_ids = f"SELECT o.id FROM apps_orders_order o JOIN apps_tenants_tenant t ON t.id = o.tenant_id WHERE {REAL}"
    assert set(rows(uat, real_ids)) == set(rows(prod, real_ids))

    # Excluded tables (users, content types, permissions, migrations, admin log, sessions) untouched.
    after = snapshot(uat)
    for table in EXCLUDED_TABLES:
        assert after.tables[f"public.{table}"] == uat_before.tables[f"public.{table}"], table

    # Collisions were re-keyed above production's ids, references and generic references following.
    rekeyed = {r["table"]: dict(r["ids"]) for r in report["rekeys"]}
    assert set(rekeyed["apps_tenants_tenant"]) == uat_test_ids
    max_tenant = rows(prod, "SELECT max(id) FROM apps_tenants_tenant")[0][0]
    assert all(new > max_tenant for new in rekeyed["apps_tenants_tenant"].values())
    for table in ("apps_orders_order", "apps_orders_order_tags", "apps_orders_orderline", "apps_notes_note",
                  "apps_notes_attachment", "apps_tenants_profile", "apps_catalog_product",
                  "apps_catalog_category", "apps_catalog_tag"):
        assert rekeyed.get(table), table
    # The UUID collision: production's attachment keeps its id, UAT's gets a fresh one.
    (prod_att,) = rows(prod, "SELECT id FROM apps_notes_attachment WHERE filename = 'scan-3.pdf'")
    assert rows(uat, "SELECT id FROM apps_notes_attachment WHERE filename = 'scan-3.pdf'") == [prod_att]
    assert rows(uat, "SELECT id FROM apps_notes_attachment WHERE filename = 'alpha.pdf'") != [prod_att]
    # UAT's own catalog rows are kept; those production has under other ids are re-pointed.
    repointed = {r["table"] for r in report["repointed"]}
    assert repointed == {"apps_catalog_product", "apps_catalog_tag", "apps_catalog_category"}
    skus = {r[0] for r in rows(uat, "SELECT sku FROM apps_catalog_product")}
    assert skus == {r[0] for r in rows(prod, "SELECT sku FROM apps_catalog_product")} | {"UAT-FIX-A", "UAT-FIX-B"}
    assert rows(uat, "SELECT c.name FROM apps_catalog_product p JOIN apps_catalog_category c ON c.id = p.category_id "
                "WHERE p.sku = 'UAT-FIX-B'") == [("Toys",)]
    assert rows(uat, "SELECT count(*) FROM apps_catalog_category WHERE name = 'Toys'") == [(1,)]
    # Memberships and profiles that the user remap made collide: UAT's preserved rows win.
    conflicts = {c["table"] for c in report["remap_conflicts"]}
    assert conflicts == {"apps_tenants_tenantuser", "apps_tenants_profile"}
    assert rows(uat, "SELECT p.bio FROM apps_tenants_profile p JOIN auth_user u ON u.id = p.user_id "
                "WHERE u.username = 'uatadmin'") == [("UAT admin",)]
    # Every sequence is past its column's largest id: Django can insert at once.
    for seq in report["sequences"]:
        table, column = seq["column"].split(".")
        (max_id,) = rows(uat, f'SELECT max("{column}") FROM "{table}"')[0]
        (next_id,) = rows(uat, f"SELECT nextval('{seq['sequence']}')")[0]
        assert max_id is None or next_id > max_id, seq


def test_second_sync_is_stable(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    ok(sync(prod, uat, tmp_path)[0])
    first = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert report["rekeys"] == [] and report["repointed"] == []
    assert snapshot(uat).tables == first.tables, snapshot(uat).diff(first)


def test_dry_run_changes_nothing(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    before = snapshot(uat)
    proc, report = sync(prod, uat, tmp_path, "--dry-run")
    ok(proc)
    assert report["status"] == "dry_run"
    assert snapshot(uat).checksum == before.checksum
    orders = next(t for t in report["tables"] if t["table"] == "apps_orders_order")
    assert orders["rows_preserved"] == 4 and orders["rows_copied"] > 0


def test_restore_production_into_uat(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    proc, report = restore(uat, tmp_path, source=prod)
    ok(proc)
    assert report["status"] == "committed"
    same_data(prod, uat)
    run_django(uat, "manage.py", "migrate", "--check")  # Django sees every migration applied


def test_django_works_on_the_synced_database(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    before = orm_probe(uat)
    ok(sync(prod, uat, tmp_path)[0])
    run_django(uat, "manage.py", "check")
    run_django(uat, "manage.py", "migrate", "--check")
    run_django(uat, "manage.py", "makemigrations", "--check", "--dry-run")
    after = orm_probe(uat)
    # The ORM sees UAT's test tenants exactly as before: orders, lines, tags, attachments, and
    # notes whose GenericForeignKey still resolves to the same object.
    assert set(after["test_tenants"]) == {"test_alpha", "test_beta"}
    assert after["test_tenants"] == before["test_tenants"]
    assert after["unresolved"] == []
    # Model counts through the ORM agree with the database.
    for table, count in after["counts"].items():
        assert rows(uat, f'SELECT count(*) FROM "{table}"') == [(count,)], table
    # New rows get ids from the synced sequences.
    run_django(uat, "manage.py", "shell", "-c", "from apps.catalog.models import Tag; Tag.objects.create(name='new')")


# -- Django patterns that once broke dbsync (found by this file, fixed since) ------------------------------


def test_remap_collision_on_a_conditional_unique_constraint(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    # admin (acme) and heidi (umbrella) each have a primary membership; neither exists in UAT, so the
    # remap makes both memberships uatadmin's: two primary tenants for one user.
    execute(
        prod,
        "UPDATE apps_tenants_tenantuser m SET is_primary = true FROM auth_user u, apps_tenants_tenant t "
        "WHERE u.id = m.user_id AND t.id = m.tenant_id "
        "AND (t.schema_name, u.username) IN (('acme', 'admin'), ('umbrella', 'heidi'))",
    )
    proc, report = sync(prod, uat, tmp_path)
    ok(proc)
    assert any(c["constraint"] == "one_primary_tenant_per_user" for c in report["remap_conflicts"])
    assert rows(
        uat,
        "SELECT count(*) FROM apps_tenants_tenantuser m JOIN auth_user u ON u.id = m.user_id "
        "WHERE m.is_primary AND u.username = 'uatadmin'",
    ) == [(1,)]


def test_uat_tag_equal_to_production_tag_but_for_case(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    # UAT spells its "promo" tag (used by test_alpha's order 3) "Promo"; production has "promo".
    execute(uat, "UPDATE apps_catalog_tag SET name = 'Promo' WHERE name = 'promo'")
    before = snapshot(uat)
    proc, _ = sync(prod, uat, tmp_path)
    if proc.returncode == 3:  # refused before anything was written, naming the table
        assert "apps_catalog_tag" in proc.stderr, proc.stderr
        assert snapshot(uat).checksum == before.checksum
        return
    ok(proc)  # or re-pointed to production's tag, as for a plain unique key
    assert rows(uat, "SELECT name FROM apps_catalog_tag WHERE lower(name) = 'promo'") == [("promo",)]


def test_generic_relation_to_a_user_follows_the_username(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    execute(
        prod,
        "INSERT INTO apps_notes_note (tenant_id, content_type_id, object_id, body, created_at) "
        "SELECT t.id, ct.id, u.id, 'about alice', '2024-03-01T00:00Z' FROM apps_tenants_tenant t, "
        "django_content_type ct, auth_user u WHERE t.schema_name = 'acme' "
        "AND (ct.app_label, ct.model) = ('auth', 'user') AND u.username = 'alice'",
    )
    proc, _ = sync(prod, uat, tmp_path)
    if proc.returncode == 3:  # refusing, naming the relation, would be right too
        assert "apps_notes_note" in proc.stderr, proc.stderr
        return
    ok(proc)
    assert rows(
        uat,
        "SELECT u.username FROM apps_notes_note n JOIN auth_user u ON u.id = n.object_id "
        "WHERE n.body = 'about alice'",
    ) == [("alice",)]


def test_preferences_keyed_by_their_user(prod: DbUrl, uat: DbUrl, tmp_path: Path) -> None:
    # UAT's superuser has preferences in test_alpha; production's admin has some, and admin becomes uatadmin.
    execute(
        uat,
        "INSERT INTO apps_tenants_preferences (user_id, tenant_id, theme) SELECT u.id, t.id, 'uat-admin' "
        "FROM auth_user u, apps_tenants_tenant t WHERE u.username = 'uatadmin' AND t.schema_name = 'test_alpha'",
    )
    execute(
        prod,
        "INSERT INTO apps_tenants_preferences (user_id, tenant_id, theme) SELECT u.id, t.id, 'admin' "
        "FROM auth_user u, apps_tenants_tenant t WHERE u.username = 'admin' AND t.schema_name = 'acme'",
    )
    proc, _ = sync(prod, uat, tmp_path)
    ok(proc)
    assert rows(
        uat,
        "SELECT u.username, p.theme FROM apps_tenants_preferences p JOIN auth_user u ON u.id = p.user_id "
        "WHERE p.theme IN ('uat-admin', 'admin')",
    ) == [("uatadmin", "uat-admin")]
