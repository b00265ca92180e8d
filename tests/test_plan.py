"""The planner, on catalogs built by hand: pure, no server needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dbsync.catalog import Catalog, Column, ForeignKey, Table, TableName, UniqueKey
from dbsync.config import parse_config
from dbsync.errors import ConfigError, Refused, SchemaError
from dbsync.plan import make_plan


def T(name: str) -> TableName:
    return TableName("public", name)


def col(name: str, type_: str = "bigint", not_null: bool = False) -> Column:
    return Column(name, type_, not_null, False, "", False, boolean=type_ in ("boolean", '"Flag"'))


def table(name: str, *cols: Column, pk: str | None = "id", uniques: tuple[UniqueKey, ...] = ()) -> Table:
    keys = uniques + ((UniqueKey(f"{name}_pkey", (pk,), True, False),) if pk else ())
    return Table(T(name), (col("id", not_null=True), *cols), primary_key=(pk,) if pk else None, uniques=keys)


def fk(child: str, column: str, parent: str, deferrable: bool = True, on_delete: str = "a") -> ForeignKey:
    return ForeignKey(
        f"{child}_{column}_fk", T(child), (column,), T(parent), ("id",), deferrable, on_delete, True
    )


def catalog(tables: list[Table], fks: list[ForeignKey]) -> Catalog:
    return Catalog({t.name: t for t in tables}, tuple(fks))


BASE_TABLES = [
    table("auth_user", col("username", "text"), col("is_superuser", "boolean")),
    table("django_content_type", col("app_label", "text"), col("model", "text")),
    table("apps_tenants_tenant", col("schema_name", "text")),
    table("apps_orders_order", col("tenant_id"), col("created_by_id")),
    table("apps_orders_orderline", col("order_id"), col("product_id")),
    table("apps_catalog_product", col("name", "text")),
    table(
        "apps_tenants_tenantuser",
        col("tenant_id"),
        col("user_id"),
        uniques=(UniqueKey("tu_uniq", ("tenant_id", "user_id"), False, False),),
    ),
]
BASE_FKS = [
    fk("apps_orders_order", "tenant_id", "apps_tenants_tenant"),
    fk("apps_orders_order", "created_by_id", "auth_user"),
    fk("apps_orders_orderline", "order_id", "apps_orders_order"),
    fk("apps_orders_orderline", "product_id", "apps_catalog_product"),
    fk("apps_tenants_tenantuser", "tenant_id", "apps_tenants_tenant"),
    fk("apps_tenants_tenantuser", "user_id", "auth_user"),
]


def plan_for(tables=None, fks=None, config=None, source=None):  # type: ignore[no-untyped-def]
    cat = catalog(tables or BASE_TABLES, fks if fks is not None else BASE_FKS)
    return make_plan(source or cat, cat, parse_config(config or {}))


def test_roles_follow_tenant_column_and_foreign_keys() -> None:
    plan = plan_for()
    roles = {str(t.name): t.role for t in plan.tables}
    assert roles == {
        "apps_tenants_tenant": "tenant",
        "apps_orders_order": "scoped",
        "apps_orders_orderline": "scoped",  # only through its order
        "apps_tenants_tenantuser": "scoped",
        "apps_catalog_product": "global",
    }
    assert set(map(str, plan.excluded)) == {"auth_user", "django_content_type"}


def test_load_order_puts_parents_first() -> None:
    order = [str(n) for n in plan_for().synced]
    assert order.index("apps_tenants_tenant") < order.index("apps_orders_order")
    assert order.index("apps_orders_order") < order.index("apps_orders_orderline")
    assert order.index("apps_catalog_product") < order.index("apps_orders_orderline")


def test_references_to_excluded_tables_are_found_in_the_catalog() -> None:
    plan = plan_for()
    remapped = {(str(r.table), r.column) for t in plan.tables for r in t.remaps}
    assert remapped == {("apps_orders_order", "created_by_id"), ("apps_tenants_tenantuser", "user_id")}
    assert [str(m.table) for m in plan.maps] == ["auth_user"]
    assert plan.maps[0].unmatched == "fallback"
    membership = plan.table(T("apps_tenants_tenantuser"))
    assert [u.name for u in membership.conflict_keys] == ["tu_uniq"]


def test_tenant_column_without_foreign_key_gets_a_virtual_edge() -> None:
    tables = [*BASE_TABLES, table("apps_reports_report", col("tenant_id"))]
    plan = plan_for(tables=tables)
    assert plan.table(T("apps_reports_report")).role == "scoped"
    assert any(
        e.child == T("apps_reports_report") and e.parent == T("apps_tenants_tenant") for e in plan.edges
    )


def test_reference_to_excluded_table_without_natural_key_is_refused_by_name() -> None:
    tables = [*BASE_TABLES, table("django_session_log", col("x", "text"))]
    fks = [*BASE_FKS, fk("apps_orders_order", "session_id", "django_session_log")]
    tables[3] = table("apps_orders_order", col("tenant_id"), col("created_by_id"), col("session_id"))
    with pytest.raises(Refused, match=r"apps_orders_order\.session_id.*natural_keys\.django_session_log"):
        plan_for(tables=tables, fks=fks, config={"exclude": ["auth_*", "django_*"]})


def test_missing_tenant_or_user_table_is_a_clear_schema_error() -> None:
    without_tenants = [t for t in BASE_TABLES if t.name.name != "apps_tenants_tenant"]
    with pytest.raises(SchemaError, match="tenant table 'apps_tenants_tenant' does not exist in the target"):
        plan_for(tables=without_tenants, fks=[f for f in BASE_FKS if "tenant_id" not in f.columns])
    with pytest.raises(SchemaError, match="user table 'people' does not exist"):
        plan_for(config={"users": {"table": "people"}})


def test_non_deferrable_cycle_is_refused_naming_only_its_tables() -> None:
    """Tables that reference a cycle (c), or that a cycle references (apps_orders_order), are
    not part of it: the message names each cycle's own tables, the ones whose keys can change."""
    tables = [
        *BASE_TABLES,
        table("a", col("tenant_id"), col("b_id"), col("order_id")),
        table("b", col("a_id")),
        table("c", col("a_id")),
        table("x", col("tenant_id"), col("y_id")),
        table("y", col("x_id")),
    ]
    fks = [
        *BASE_FKS,
        fk("a", "b_id", "b", deferrable=False),
        fk("b", "a_id", "a", deferrable=False),
        fk("a", "order_id", "apps_orders_order", deferrable=False),
        fk("c", "a_id", "a", deferrable=False),
        fk("x", "y_id", "y", deferrable=False),
        fk("y", "x_id", "x", deferrable=False),
    ]
    with pytest.raises(Refused) as refusal:
        plan_for(tables=tables, fks=fks)
    assert str(refusal.value).startswith(
        "tables a, b; x, y reference each other through NOT DEFERRABLE foreign keys in a cycle"
    )


def test_deferrable_cycle_is_accepted() -> None:
    tables = [*BASE_TABLES, table("a", col("tenant_id"), col("b_id")), table("b", col("a_id"))]
    fks = [*BASE_FKS, fk("a", "b_id", "b"), fk("b", "a_id", "a", deferrable=False)]
    order = [str(n) for n in plan_for(tables=tables, fks=fks).synced]
    assert order.index("a") < order.index("b")  # the non-deferrable edge decides


def test_outside_cascade_into_synced_table_is_refused() -> None:
    tables = [*BASE_TABLES[:1], *BASE_TABLES[1:]]
    tables[0] = table("auth_user", col("username", "text"), col("is_superuser", "boolean"), col("tenant_id"))
    fks = [*BASE_FKS, fk("auth_user", "tenant_id", "apps_tenants_tenant", on_delete="c")]
    with pytest.raises(Refused, match="ON DELETE CASCADE"):
        plan_for(tables=tables, fks=fks)


def test_schema_drift_is_named() -> None:
    source_tables = list(BASE_TABLES)
    source_tables[5] = table("apps_catalog_product", col("name", "character varying(10)"))
    source = catalog(source_tables, BASE_FKS)
    with pytest.raises(
        SchemaError, match=r"apps_catalog_product\.name is character varying\(10\) in the source"
    ):
        plan_for(source=source)


def test_set_null_policy_needs_a_nullable_column() -> None:
    tables = list(BASE_TABLES)
    tables[6] = table(
        "apps_tenants_tenantuser",
        col("tenant_id"),
        col("user_id", not_null=True),
        uniques=(UniqueKey("tu_uniq", ("tenant_id", "user_id"), False, False),),
    )
    with pytest.raises(ConfigError, match=r"on_remap_conflict\.apps_tenants_tenantuser.*NOT NULL"):
        plan_for(tables=tables, config={"on_remap_conflict": {"apps_tenants_tenantuser": "set_null"}})


def test_truncatable_excludes_tables_referenced_from_outside() -> None:
    tables = list(BASE_TABLES)
    tables[0] = table("auth_user", col("username", "text"), col("is_superuser", "boolean"), col("tenant_id"))
    fks = [*BASE_FKS, fk("auth_user", "tenant_id", "apps_tenants_tenant")]
    plan = plan_for(tables=tables, fks=fks)
    assert T("apps_tenants_tenant") not in plan.truncatable
    # everything referencing a DELETEd table cannot be in the TRUNCATE list either
    assert T("apps_catalog_product") in plan.truncatable


def test_user_table_that_is_synced_is_a_warning_not_an_error() -> None:
    plan = plan_for(config={"exclude": ["django_*"]})
    assert any("auth_user is not excluded" in w for w in plan.warnings)
    assert T("auth_user") in plan.synced


def test_row_security_that_hides_rows_from_dbsync_is_refused_by_table_and_side() -> None:
    """Policies that filter the connected role's view would make the sync copy, delete and
    prove only part of a table, all proofs green: refused at plan, before anything is written."""
    hidden = [replace(t, row_security=True) if t.name.name == "apps_orders_order" else t for t in BASE_TABLES]
    with pytest.raises(SchemaError, match=r"the source role may see of apps_orders_order,"):
        plan_for(source=catalog(hidden, BASE_FKS))
    with pytest.raises(SchemaError, match=r"the target role may see of apps_orders_order,"):
        make_plan(catalog(BASE_TABLES, BASE_FKS), catalog(hidden, BASE_FKS), parse_config({}))
    # An excluded table production is not read from does not matter on the source side.
    unread = [
        replace(t, row_security=True) if t.name.name == "django_content_type" else t for t in BASE_TABLES
    ]
    plan_for(source=catalog(unread, BASE_FKS))


def test_superuser_column_must_be_boolean() -> None:
    """A text flag passed the plan and failed mid-run in the fallback user's WHERE (found on
    Chinook, which has no boolean column): now a sentence naming the key, before any write."""
    tables = [table("auth_user", col("username", "text"), col("is_superuser", "text")), *BASE_TABLES[1:]]
    with pytest.raises(
        SchemaError, match=r"users\.superuser_column: auth_user\.is_superuser is text, not boolean"
    ):
        plan_for(tables=tables)
    # a domain over boolean (AdventureWorks' "Flag") is a boolean
    tables = [table("auth_user", col("username", "text"), col("is_superuser", '"Flag"')), *BASE_TABLES[1:]]
    plan_for(tables=tables)


def test_large_object_columns_are_named_in_a_warning() -> None:
    """Only the oid travels: the report must say so rather than commit dangling references."""
    tables = [*BASE_TABLES, table("apps_docs_file", col("tenant_id"), col("blob", "oid"))]
    warnings = plan_for(tables=tables).warnings
    assert any(w.startswith("large objects are not synced: apps_docs_file.blob ") for w in warnings), warnings
    assert not any("large objects" in w for w in plan_for().warnings)


def test_a_declared_reference_is_an_edge_without_a_constraint() -> None:
    """A table whose only path to a tenant is a reference no foreign key holds is global until
    the config declares it; declared, it is scoped through it, and a declaration that repeats
    a foreign key adds nothing."""
    tables = [*BASE_TABLES, table("apps_orders_audit", col("order_id"), col("line_id"))]
    assert plan_for(tables=tables).table(T("apps_orders_audit")).role == "global"
    declared = {
        "references": [
            {"table": "apps_orders_audit", "columns": ["order_id"], "references": "apps_orders_order"},
            {"table": "apps_orders_orderline", "columns": ["order_id"], "references": "apps_orders_order"},
        ]
    }
    plan = plan_for(tables=tables, config=declared)
    assert plan.table(T("apps_orders_audit")).role == "scoped"
    audit = [e for e in plan.edges if e.child == T("apps_orders_audit")]
    assert [(e.columns, e.parent, e.ref_columns, e.constraint) for e in audit] == [
        (("order_id",), T("apps_orders_order"), ("id",), False)
    ]
    lines = [e for e in plan.edges if e.child == T("apps_orders_orderline") and e.parent == T("apps_orders_order")]
    assert [e.constraint for e in lines] == [True]
    # The load order does not wait for it: no constraint needs the parent first.
    assert plan.synced == plan_for(tables=tables).synced


def test_a_declared_reference_needs_a_key_at_its_end() -> None:
    tables = [*BASE_TABLES, table("apps_orders_audit", col("order_id")), table("apps_orders_log", col("x"), pk=None)]
    with pytest.raises(ConfigError, match=r"references\.0: apps_orders_log has no primary key"):
        plan_for(
            tables=tables,
            config={"references": [{"table": "apps_orders_audit", "columns": ["order_id"], "references": "apps_orders_log"}]},
        )
    unique = [*BASE_TABLES, table("apps_orders_audit", col("sku", "text")),
              table("apps_catalog_item", col("sku", "text"), uniques=(UniqueKey("sku_uniq", ("sku",), False, False),))]
    plan = plan_for(
        tables=unique,
        config={"references": [{"table": "apps_orders_audit", "columns": ["sku"], "references": "apps_catalog_item",
                                "ref_columns": ["sku"]}]},
    )
    assert any(e.child == T("apps_orders_audit") and e.ref_columns == ("sku",) for e in plan.edges)


def test_simple_history_tables_reference_their_model_and_copy_its_keys() -> None:
    """``<app>_historical<model>`` with simple-history's columns references ``<app>_<model>``
    by its key column and mirrors its foreign keys (between synced tables); the detection can
    be switched off."""
    history = Table(  # its "file" is text where the model's is varchar(100), as simple-history makes it
        T("apps_orders_historicalorder"),
        tuple(col(c, t) for c, t in [("history_id", "integer"), ("id", "bigint"), ("tenant_id", "bigint"),
                                     ("created_by_id", "bigint"), ("file", "text"), ("history_date", "timestamptz"),
                                     ("history_type", "text")]),
        primary_key=("history_id",),
        uniques=(UniqueKey("h_pkey", ("history_id",), True, False),),
    )
    lines = Table(
        T("apps_orders_historicalorderline"),
        tuple(col(c, t) for c, t in [("history_id", "integer"), ("id", "bigint"), ("order_id", "bigint"),
                                     ("history_date", "timestamptz"), ("history_type", "text")]),
        primary_key=("history_id",),
    )
    lookalike = Table(  # no history_type: not simple-history's
        T("apps_catalog_historicalproduct"),
        tuple(col(c, t) for c, t in [("history_id", "integer"), ("id", "bigint"), ("history_date", "timestamptz")]),
        primary_key=("history_id",),
    )
    stranger = Table(  # simple-history's columns, but only orderx's key of its four: no copy of it
        T("apps_orders_historicalorderx"),
        tuple(col(c, t) for c, t in [("history_id", "integer"), ("id", "bigint"), ("note", "text"),
                                     ("history_date", "timestamptz"), ("history_type", "text")]),
        primary_key=("history_id",),
    )
    orderx = table("apps_orders_orderx", col("tenant_id"), col("total", "numeric"), col("placed_at", "timestamptz"))
    filed = table("apps_orders_order", col("tenant_id"), col("created_by_id"), col("file", "character varying(100)"))
    base = [filed if t.name == filed.name else t for t in BASE_TABLES]
    tables = [*base, history, lines, lookalike, stranger, orderx]
    plan = plan_for(tables=tables)
    found = {(e.columns, str(e.parent), e.constraint) for e in plan.edges if e.child == history.name}
    assert found == {
        (("id",), "apps_orders_order", False),
        (("tenant_id",), "apps_tenants_tenant", False),  # the tenant key's own virtual edge
    }  # created_by_id references auth_user, excluded: not an edge
    mirrored = {(e.columns, str(e.parent)) for e in plan.edges if e.child == lines.name}
    # orderline's key and its order_id foreign key; product_id is left out of this history
    # (simple-history's excluded_fields), so nothing follows it
    assert mirrored == {(("id",), "apps_orders_orderline"), (("order_id",), "apps_orders_order")}
    assert plan.table(lines.name).role == "scoped"
    assert not [e for e in plan.edges if e.child in (lookalike.name, stranger.name)]
    off = plan_for(tables=tables, config={"detect_history_tables": False})
    assert {e.columns for e in off.edges if e.child == history.name} == {("tenant_id",)}
    assert not [e for e in off.edges if e.child == lines.name]


def test_a_declared_reference_is_checked_against_what_the_sync_copies() -> None:
    """A column the sync does not copy (only in the target, or generated) cannot carry a
    reference; a reference of a key to itself is refused; a repeated declaration adds one
    edge; referenced columns given out of the key's order are matched to it pairwise."""
    audit = table("apps_orders_audit", col("order_id"), col("a"), col("b"))
    pair = table("apps_orders_pair", col("a"), col("b"), pk=None)
    pair = replace(pair, primary_key=("a", "b"), uniques=(UniqueKey("pair_pkey", ("a", "b"), True, False),))
    tables = [*BASE_TABLES, audit, pair]
    source_audit = replace(audit, columns=tuple(c for c in audit.columns if c.name != "order_id"))
    source = catalog([t if t.name != audit.name else source_audit for t in tables], BASE_FKS)
    one = {"table": "apps_orders_audit", "columns": ["order_id"], "references": "apps_orders_order"}
    with pytest.raises(SchemaError, match=r"references\.0\.columns: apps_orders_audit\.order_id is generated or only in the target"):
        plan_for(tables=tables, config={"references": [one]}, source=source)
    generated = replace(audit, columns=tuple(replace(c, generated=True) if c.name == "order_id" else c for c in audit.columns))
    with pytest.raises(SchemaError, match="is generated or only in the target"):
        plan_for(tables=[*BASE_TABLES, generated, pair], config={"references": [one]})
    itself = {"table": "apps_orders_order", "columns": ["id"], "references": "apps_orders_order"}
    with pytest.raises(ConfigError, match=r"references\.0: apps_orders_order\.\(id\) cannot reference itself"):
        plan_for(tables=tables, config={"references": [itself]})
    plan = plan_for(tables=tables, config={"references": [one, one]})
    assert len([e for e in plan.edges if e.child == audit.name]) == 1
    swapped = {"table": "apps_orders_audit", "columns": ["b", "a"], "references": "apps_orders_pair",
               "ref_columns": ["b", "a"]}
    plan = plan_for(tables=tables, config={"references": [swapped]})
    [edge] = [e for e in plan.edges if e.child == audit.name]
    assert (edge.columns, edge.ref_columns) == (("a", "b"), ("a", "b"))


def test_a_declaration_that_repeats_a_foreign_key_in_another_column_order_adds_nothing() -> None:
    pair = replace(
        table("apps_orders_pair", col("a"), col("b"), pk=None),
        primary_key=("a", "b"),
        uniques=(UniqueKey("pair_pkey", ("a", "b"), True, False),),
    )
    child = table("apps_orders_child", col("x"), col("y"))
    key = ForeignKey("child_fk", child.name, ("y", "x"), pair.name, ("b", "a"), True, "a", True)
    declared = {"references": [{"table": "apps_orders_child", "columns": ["x", "y"], "references": "apps_orders_pair"}]}
    plan = plan_for(tables=[*BASE_TABLES, pair, child], fks=[*BASE_FKS, key], config=declared)
    assert [e.name for e in plan.edges if e.child == child.name] == ["child_fk"]
