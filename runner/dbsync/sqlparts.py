"""Small builders of SQL fragments (identifier lists, join conditions) used with sql/ files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg import sql

from .catalog import Table


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
