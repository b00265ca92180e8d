"""The source-side test-tenant filter's planning (pure: composed SQL, no server; the sync tests
run the composed SQL against real PostgreSQL)."""

from __future__ import annotations

from psycopg import sql

from dbsync.catalog import TableName
from dbsync.source_filter import Link, plan_filters


def T(name: str) -> TableName:
    return TableName("public", name)


def fk(child: str, column: str, parent: str) -> Link:
    return Link(T(child), T(parent), (sql.Identifier("c", column),), (sql.Identifier("p", "id"),))


SEED = sql.SQL("c.is_test")
ORDER = [T("tenant"), T("customer"), T("order"), T("line"), T("product"), T("note")]
RELATIONS = {name: sql.SQL("ONLY {}").format(name.ident) for name in ORDER}


def text(composable: sql.Composable) -> str:
    return composable.as_string(None)


def test_chain_gets_one_cte_per_ancestor_in_order() -> None:
    links = [
        fk("customer", "tenant_id", "tenant"),
        fk("order", "tenant_id", "tenant"),
        fk("order", "customer_id", "customer"),
        fk("line", "order_id", "order"),
        fk("line", "product_id", "product"),
    ]
    filters = plan_filters(ORDER, RELATIONS, T("tenant"), SEED, links)
    assert filters is not None
    assert set(filters) == {T("tenant"), T("customer"), T("order"), T("line")}  # product: global
    assert text(filters[T("tenant")].with_clause) == ""
    assert text(filters[T("tenant")].excluded) == "coalesce(c.is_test, false)"
    line = text(filters[T("line")].with_clause)
    # every ancestor once, parents before children; "line" itself is the outer query
    assert line.index('"dbsync_x0" AS') < line.index('"dbsync_x1" AS') < line.index('"dbsync_x2" AS')
    assert '"dbsync_x3" AS' not in line
    assert text(filters[T("line")].excluded) == (
        '(coalesce(("c"."order_id") IN (SELECT "p"."id" FROM "dbsync_x2" AS p), false))'
    )
    order = text(filters[T("order")].excluded)  # reached twice: through the tenant and the customer
    assert '"c"."tenant_id"' in order and '"c"."customer_id"' in order and " OR " in order


def test_cycle_across_tables_needs_the_fixed_point() -> None:
    links = [
        fk("customer", "tenant_id", "tenant"),
        fk("order", "customer_id", "customer"),
        fk("customer", "last_order_id", "order"),
    ]
    assert plan_filters(ORDER, RELATIONS, T("tenant"), SEED, links) is None


def test_cycle_among_unreachable_tables_does_not_matter() -> None:
    links = [
        fk("customer", "tenant_id", "tenant"),
        fk("product", "note_id", "note"),
        fk("note", "product_id", "product"),
    ]
    filters = plan_filters(ORDER, RELATIONS, T("tenant"), SEED, links)
    assert filters is not None and set(filters) == {T("tenant"), T("customer")}


def test_self_reference_becomes_a_recursive_cte() -> None:
    generic = Link(
        T("note"),
        T("note"),
        (sql.SQL("c.object_id::text"),),
        (sql.SQL("p.id::text"),),
        sql.SQL("c.content_type_id = 7"),
    )
    links = [fk("note", "tenant_id", "tenant"), fk("note", "reply_to_id", "note"), generic]
    filters = plan_filters(ORDER, RELATIONS, T("tenant"), SEED, links)
    assert filters is not None
    note = filters[T("note")]
    with_clause = text(note.with_clause)
    assert with_clause.startswith("WITH RECURSIVE ")
    assert "UNION SELECT" in with_clause and "UNION ALL" not in with_clause  # stops on cyclic data
    assert '("c"."reply_to_id") = ("p"."id")' in with_clause
    assert "c.content_type_id = 7 AND (c.object_id::text) = (p.id::text)" in with_clause
    assert text(note.excluded).startswith("(c.tableoid, c.ctid) IN (SELECT t_oid, t_id FROM")


def test_generic_link_is_guarded_by_its_content_type() -> None:
    generic = Link(
        T("note"),
        T("order"),
        (sql.SQL("c.object_id::text"),),
        (sql.SQL("p.id::text"),),
        sql.SQL("c.content_type_id = 9"),
    )
    links = [fk("order", "tenant_id", "tenant"), generic]
    filters = plan_filters(ORDER, RELATIONS, T("tenant"), SEED, links)
    assert filters is not None
    assert text(filters[T("note")].excluded) == (
        "(coalesce((c.content_type_id = 9 AND (c.object_id::text) IN (SELECT p.id::text FROM "
        '"dbsync_x1" AS p)), false))'
    )


def test_the_filter_stays_a_hashed_subplan_on_a_small_work_mem_server(prod_url: object) -> None:
    """dbsync's connections raise work_mem: on a server whose default is tiny, the test tenants'
    keys still go into a hash (past work_mem, PostgreSQL would rescan them for every row)."""
    import psycopg

    from dbsync.connect import connect, endpoint

    url = str(prod_url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64kB'").format(sql.Identifier(prod_url.dbname))
        )  # type: ignore[attr-defined]
    statement = (
        "EXPLAIN SELECT c.id FROM ONLY apps_orders_orderline AS c WHERE NOT coalesce((c.order_id) IN "
        "(SELECT g FROM generate_series(1, 200000) AS g), false)"  # keys of many test tenants
    )
    with psycopg.connect(url) as plain:
        plan = "\n".join(str(r[0]) for r in plain.execute(statement).fetchall())
        assert "hashed SubPlan" not in plan  # the default here would rescan
    conn = connect(endpoint("source", url))
    try:
        plan = "\n".join(str(r[0]) for r in conn.execute(statement).fetchall())
        assert "hashed SubPlan" in plan, plan
    finally:
        conn.close()
