"""Leave production's test tenants out at the source: per synced table, the SQL condition that a
production row belongs to a test tenant, so the COPY never sends those rows at all.

The target-side closure (``SyncRun._closure``) grows the excluded set along every edge, child
rows after their parents, until nothing is added. When the edges that can carry exclusion (those
reachable from the tenant table) hold no cycle, not even a table referencing itself, that
fixed point is a plain recursion: a row is excluded when it is a test tenant, or when it
references an excluded row of a parent (a table that references itself adds a recursive common
table expression down its own references). That is a condition production can evaluate itself in
the run's read-only snapshot, with one common table expression per ancestor:

    WITH x1 AS (SELECT id FROM ONLY tenant AS c WHERE <test tenant>),
         x2 AS (SELECT id FROM ONLY "order" AS c WHERE (c.tenant_id) IN (SELECT p.id FROM x1 AS p))
    COPY ... WHERE NOT coalesce((c.order_id) IN (SELECT p.id FROM x2 AS p), false)

A cycle across tables on those edges makes :func:`plan_filters` return None, and the run falls back to
copying every row and deleting the test tenants' rows on the target. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from .catalog import TableName
from .plan import descendants


@dataclass(frozen=True)
class Link:
    """``child`` rows reference ``parent`` rows: ``child_exprs`` (over alias ``c``) equal
    ``parent_exprs`` (over alias ``p``), when ``guard`` (over ``c``) holds. A foreign key is
    columns to columns; a generic relation is ``object_id::text`` to ``pk::text`` guarded by its
    content type."""

    child: TableName
    parent: TableName
    child_exprs: tuple[sql.Composable, ...]
    parent_exprs: tuple[sql.Composable, ...]
    guard: sql.Composable | None = None


@dataclass(frozen=True)
class Filter:
    """How to read one table without its test-tenant rows: ``with_clause`` (empty, or ``WITH
    ...``) goes before the SELECT, and ``excluded`` is true for a row (alias ``c``) that belongs
    to a test tenant and never NULL."""

    with_clause: sql.Composable
    excluded: sql.Composable


def plan_filters(
    order: Sequence[TableName],
    relations: dict[TableName, sql.Composable],
    tenant: TableName,
    seed: sql.Composable,
    links: Sequence[Link],
) -> dict[TableName, Filter] | None:
    """A :class:`Filter` for every table test-tenant rows can reach (others need none), or None
    when a cycle among those tables asks for the fixed point instead. ``order`` lists parents
    before children (ties keep it); ``seed`` is the test-tenant condition over alias ``c``."""
    reach = descendants({tenant}, ((link.parent, link.child) for link in links))
    carrying = [link for link in links if link.parent in reach and link.child != link.parent]
    self_links = {name: [k for k in links if k.child == k.parent == name] for name in reach}
    # Parents first, generic relations included (the plan's order knows only foreign keys).
    ranked: list[TableName] = []
    waiting = sorted(reach, key=list(order).index)
    while waiting:
        ready = [n for n in waiting if all(k.parent in ranked for k in carrying if k.child == n)]
        if not ready:
            return None  # a cycle across tables: only the fixed point gets every row
        ranked += ready
        waiting = [n for n in waiting if n not in ready]
    position = {name: i for i, name in enumerate(ranked)}
    names = {name: sql.Identifier(f"dbsync_x{position[name]}") for name in reach}
    trees = {name: sql.Identifier(f"dbsync_r{position[name]}") for name in reach if self_links[name]}

    def member(link: Link, parents: sql.Composable) -> sql.Composable:
        found = sql.SQL("({}) IN (SELECT {} FROM {} AS p)").format(
            sql.SQL(", ").join(link.child_exprs), sql.SQL(", ").join(link.parent_exprs), parents
        )
        if link.guard is not None:
            found = sql.SQL("({} AND {})").format(link.guard, found)
        return sql.SQL("coalesce({}, false)").format(found)

    def base(name: TableName) -> sql.Composable:
        """Excluded through the tenant seed or a parent: everything but the table's own tree."""
        if name == tenant:
            return sql.SQL("coalesce({}, false)").format(seed)
        parts = [member(link, names[link.parent]) for link in carrying if link.child == name]
        return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))

    def condition(name: TableName) -> sql.Composable:
        if name not in trees:
            return base(name)
        return sql.SQL("(c.tableoid, c.ctid) IN (SELECT t_oid, t_id FROM {})").format(trees[name])

    def tree(name: TableName) -> sql.Composable:
        """A table that references itself (a reply to a note, a category's parent): its rows
        excluded through the seed or a parent, then down its own references, recursively.
        UNION (not ALL) stops at rows already found, so cyclic data ends too."""
        rel = relations[name]
        down = sql.SQL(" OR ").join(
            sql.SQL("({}{}({}) = ({}))").format(
                link.guard if link.guard is not None else sql.SQL(""),
                sql.SQL(" AND ") if link.guard is not None else sql.SQL(""),
                sql.SQL(", ").join(link.child_exprs),
                sql.SQL(", ").join(link.parent_exprs),
            )
            for link in self_links[name]
        )
        return sql.SQL(
            "{t}(t_oid, t_id) AS (SELECT c.tableoid, c.ctid FROM {rel} AS c WHERE {base} "
            "UNION SELECT c.tableoid, c.ctid FROM {rel} AS c JOIN {rel} AS p ON {down} "
            "JOIN {t} AS r ON r.t_oid = p.tableoid AND r.t_id = p.ctid)"
        ).format(t=trees[name], rel=rel, base=base(name), down=down)

    ancestors: dict[TableName, set[TableName]] = {name: set() for name in reach}
    for name in ranked:
        for link in carrying:
            if link.child == name:
                ancestors[name] |= {link.parent} | ancestors[link.parent]
    filters = {}
    for name in reach:
        ctes: list[sql.Composable] = []
        for a in sorted(ancestors[name], key=position.__getitem__):
            if a in trees:
                ctes.append(tree(a))
            ctes.append(
                sql.SQL("{} AS (SELECT * FROM {} AS c WHERE {})").format(names[a], relations[a], condition(a))
            )
        if name in trees:
            ctes.append(tree(name))
        recursive = "RECURSIVE " if any(a in trees for a in (*ancestors[name], name)) else ""
        with_clause = (
            sql.SQL("WITH " + recursive + "{} ").format(sql.SQL(", ").join(ctes)) if ctes else sql.SQL("")
        )
        filters[name] = Filter(with_clause, condition(name))
    return filters
