"""Small builders of SQL fragments (identifier lists, join conditions) used with sql/ files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg import sql

from .catalog import Table, UniqueKey


def columns(names: Iterable[str], alias: str | None = None) -> sql.Composed:
    """``a.x, a.y`` (or ``x, y``) as identifiers."""
    return sql.SQL(", ").join(sql.Identifier(alias, n) if alias else sql.Identifier(n) for n in names)


def equal(left: str, left_cols: Sequence[str], right: str, right_cols: Sequence[str]) -> sql.Composed:
    """``l.a = r.b AND ...`` for paired column lists."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, a), sql.Identifier(right, b))
        for a, b in zip(left_cols, right_cols, strict=True)
    )


def not_null(alias: str | None, cols: Sequence[str]) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(alias, c) if alias else sql.Identifier(c))
        for c in cols
    )


def relation(table: Table) -> sql.Composable:
    """A table as read or deleted from: ``ONLY`` it, so inheritance children are not counted twice
    (a partitioned table is read whole: its rows live in its partitions)."""
    if table.partitioned:
        return table.name.ident
    return sql.SQL("ONLY {}").format(table.name.ident)


def temp(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def key_items(key: UniqueKey) -> tuple[sql.Composed, sql.Composed, sql.Composed, list[str]]:
    """A unique key as ``(items, predicate, not_null, names)`` for the derived tables of
    sql/select_remap_conflicts.sql and sql/select_unique_collision.sql: its items (columns, or
    an index's expressions as the catalog prints them) named k1..kn, its predicate (``true``
    unless partial), and the NOT NULL test over k1..kn (NULLs never collide in a unique key)."""
    raw: list[sql.Composable] = [sql.SQL(text) for text in key.expressions]
    if not raw:
        raw = [sql.Identifier(c) for c in key.columns]
    names = [f"k{i}" for i in range(1, len(raw) + 1)]
    items = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(item, sql.Identifier(n)) for item, n in zip(raw, names, strict=True)
    )
    predicate = sql.Composed([sql.SQL(f"({key.predicate})" if key.predicate else "true")])
    return items, predicate, not_null(None, names), names
