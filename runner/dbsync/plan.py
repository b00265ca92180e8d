"""Pure planning of a sync: which tables, in which role and order, with which filters and remaps.

Nothing here touches a database: :func:`make_plan` takes the two catalogs and the config and
either returns a :class:`Plan` or raises the error that refuses the run, naming the table or
column at fault. Every later step executes this plan.

Vocabulary:

- *excluded* tables match a pattern of ``exclude``; they are never written.
- *synced* tables are every other table of the configured schemas; their rows are replaced.
- *untouched* tables exist only in the target; never written, but they may reference synced ones.
- A synced table is *scoped* when its rows belong to tenants: the tenant table itself, a table
  with the tenant key column, or a table that references a scoped table through a foreign key
  (order lines through their order). Other synced tables are *global* (a shared catalog).
- *Scope edges* carry tenant membership from a referenced row to the rows referencing it: a
  row belongs to a test tenant when it references any row that does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from .catalog import INTEGER_RANGES, Catalog, ForeignKey, Table, TableName, UniqueKey
from .config import SyncConfig
from .errors import ConfigError, Refused, SchemaError

Role = Literal["tenant", "scoped", "global"]
Unmatched = Literal["fallback", "refuse", "null"]
ConflictPolicy = Literal["keep_one", "refuse", "set_null"]


@dataclass(frozen=True)
class Edge:
    """``child.columns`` references ``parent.ref_columns``: a foreign key, or (``constraint``
    False) a reference no constraint holds: a tenant key column without a foreign key, or one
    the config declares (``references``). Those may name rows that no longer exist."""

    name: str
    child: TableName
    columns: tuple[str, ...]
    parent: TableName
    ref_columns: tuple[str, ...]
    constraint: bool = True


@dataclass(frozen=True)
class NaturalKeyMap:
    """How ids of an excluded table are translated from the source's to the target's."""

    table: TableName
    pk: str
    pk_type: str
    key: tuple[str, ...]
    key_types: tuple[str, ...]
    nested: tuple[tuple[str, TableName], ...]  # key column -> excluded table that maps it
    unmatched: Unmatched


@dataclass(frozen=True)
class Remap:
    """A column of a synced table that references an excluded table by id."""

    table: TableName
    column: str
    target: TableName
    constraint: str


@dataclass(frozen=True)
class GenericRelation:
    """Rows of ``table`` point at a row of whichever table ``content_type_column`` names, by
    that row's primary key in ``object_id_column`` (Django's GenericForeignKey)."""

    table: TableName
    content_type_column: str
    object_id_column: str
    object_id_type: str


@dataclass(frozen=True)
class TablePlan:
    table: Table
    role: Role
    copy_columns: tuple[str, ...]
    rekey: Literal["integer", "uuid"] | None
    remaps: tuple[Remap, ...] = ()
    conflict_keys: tuple[UniqueKey, ...] = ()
    conflict_policy: ConflictPolicy = "keep_one"

    @property
    def name(self) -> TableName:
        return self.table.name


@dataclass(frozen=True)
class Plan:
    tables: tuple[TablePlan, ...]  # in load order: referenced tables first
    tenant_table: TableName
    user_table: TableName | None  # None: no user table (users.table = "")
    excluded: tuple[TableName, ...]
    untouched: tuple[TableName, ...]
    edges: tuple[Edge, ...]  # among synced tables, incl. virtual tenant edges
    outside_fks: tuple[ForeignKey, ...]  # from excluded/untouched tables into synced ones
    maps: tuple[NaturalKeyMap, ...]  # dependencies first
    truncatable: frozenset[TableName]
    content_type_table: TableName | None = None
    generic: tuple[GenericRelation, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def table(self, name: TableName) -> TablePlan:
        return next(t for t in self.tables if t.name == name)

    @property
    def synced(self) -> tuple[TableName, ...]:
        return tuple(t.name for t in self.tables)


def _matches(name: TableName, patterns: Iterable[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(name.name, p) or fnmatch.fnmatchcase(f"{name.schema}.{name.name}", p)
        for p in patterns
    )


def _lookup(mapping: dict[str, object], name: TableName) -> object | None:
    return mapping.get(f"{name.schema}.{name.name}", mapping.get(name.name))


def _require_table(catalog: Catalog, config: SyncConfig, name: str, what: str, side: str) -> TableName:
    found = catalog.find(name, config.schemas)
    if found is None:
        raise SchemaError(
            f"the {what} table {name!r} does not exist in the {side} database "
            f"(schemas searched: {', '.join(config.schemas)})"
        )
    return found


def _require_columns(table: Table, columns: Iterable[str], what: str, side: str) -> None:
    missing = [c for c in columns if table.column(c) is None]
    if missing:
        raise SchemaError(
            f"{what}: table {table.name} in the {side} database has no column "
            + ", ".join(repr(c) for c in missing)
        )


def _compare_columns(source: Table, target: Table) -> tuple[str, ...]:
    """The columns to copy, or a SchemaError naming the first difference that matters."""
    copy: list[str] = []
    for column in target.columns:
        theirs = source.column(column.name)
        if theirs is None:
            if column.not_null and not column.has_default and not column.generated:
                raise SchemaError(
                    f"column {target.name}.{column.name} exists only in the target and is NOT NULL "
                    "without a default; migrate both databases to the same schema first"
                )
            continue
        if theirs.type != column.type:
            raise SchemaError(
                f"column {target.name}.{column.name} is {theirs.type} in the source but "
                f"{column.type} in the target; migrate both databases to the same schema first"
            )
        if not column.generated:
            copy.append(column.name)
    extra = [c.name for c in source.columns if target.column(c.name) is None and not c.generated]
    if extra:
        raise SchemaError(
            f"table {target.name} has column(s) {', '.join(extra)} in the source that the target "
            "lacks; migrate the target first"
        )
    return tuple(copy)


def descendants(roots: Iterable[TableName], pairs: Iterable[tuple[TableName, TableName]]) -> set[TableName]:
    """``roots`` and every table reached from them along (parent, child) pairs: the tables a
    tenant's rows can spread to."""
    steps = list(pairs)
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for parent, child in steps:
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _topological(nodes: list[TableName], edges: list[tuple[TableName, TableName]]) -> list[TableName] | None:
    """Parents before children (edge = (child, parent)); None when the edges hold a cycle."""
    parents: dict[TableName, set[TableName]] = {n: set() for n in nodes}
    for child, parent in edges:
        if child != parent:
            parents[child].add(parent)
    order: list[TableName] = []
    done: set[TableName] = set()
    while len(order) < len(nodes):
        ready = sorted(n for n in nodes if n not in done and parents[n] <= done)
        if not ready:
            return None
        order.extend(ready)
        done.update(ready)
    return order


def _cycles(nodes: list[TableName], edges: list[tuple[TableName, TableName]]) -> list[list[TableName]]:
    """The tables of each cycle (each strongly connected group of two or more), sorted.

    A table that merely references a cycle, or is referenced from one, is not in it: the
    refusal names only the constraints one of which must become DEFERRABLE."""
    parents: dict[TableName, set[TableName]] = {n: set() for n in nodes}
    for child, parent in edges:
        if child != parent and child in parents and parent in parents:
            parents[child].add(parent)

    def reachable(start: TableName) -> set[TableName]:
        seen: set[TableName] = set()
        todo = list(parents[start])
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(parents[n])
        return seen

    reach = {n: reachable(n) for n in nodes}
    groups: list[list[TableName]] = []
    placed: set[TableName] = set()
    for n in sorted(nodes):
        if n in reach[n] and n not in placed:
            group = sorted(m for m in reach[n] if n in reach[m])
            placed.update(group)
            groups.append(group)
    return groups


def _require_user_table(source: Catalog, target: Catalog, config: SyncConfig, user_name: TableName) -> None:
    users = target.tables[user_name]
    _require_columns(users, config.users.natural_key, "users.natural_key", "target")
    _require_columns(source.tables[user_name], config.users.natural_key, "users.natural_key", "source")
    _require_columns(users, [config.users.superuser_column], "users.superuser_column", "target")
    flag = users.column(config.users.superuser_column)
    if flag is not None and not flag.boolean:
        # the fallback user is found with WHERE <column>: a text flag would fail there, mid-run
        raise SchemaError(
            f"users.superuser_column: {user_name}.{flag.name} is {flag.type}, not boolean; name a "
            "boolean column (the fallback user is the first row where it is true)"
        )
    if not users.primary_key or len(users.primary_key) != 1:
        raise SchemaError(f"the user table {user_name} needs a single-column primary key")


def make_plan(source: Catalog, target: Catalog, config: SyncConfig) -> Plan:
    """Decide everything about a sync from the catalogs, or refuse with the reason."""
    warnings: list[str] = []
    tenant_name = _require_table(target, config, config.tenants.table, "tenant", "target")
    _require_table(source, config, config.tenants.table, "tenant", "source")
    user_name: TableName | None = None
    if config.users.table:  # "": the database has no user table, and nothing maps users
        user_name = _require_table(target, config, config.users.table, "user", "target")
        _require_table(source, config, config.users.table, "user", "source")

    excluded = sorted(n for n in target.tables if _matches(n, config.exclude))
    excluded_set = set(excluded)
    if tenant_name in excluded_set:
        raise ConfigError(f"tenants.table: {tenant_name} matches an exclude pattern; it must be synced")
    if user_name is not None and user_name not in excluded_set:
        warnings.append(
            f"the user table {user_name} is not excluded, so it is synced like any table and "
            "user references are not remapped"
        )

    tenant = target.tables[tenant_name]
    _require_columns(tenant, [config.tenants.test_column], "tenants.test_column", "target")
    _require_columns(
        source.tables[tenant_name], [config.tenants.test_column], "tenants.test_column", "source"
    )
    if not tenant.primary_key or len(tenant.primary_key) != 1:
        raise SchemaError(f"the tenant table {tenant_name} needs a single-column primary key")
    if user_name is not None:
        _require_user_table(source, target, config, user_name)

    candidates = [n for n in target.tables if n not in excluded_set]
    source_only = sorted(
        n for n in source.tables if n not in target.tables and not _matches(n, config.exclude)
    )
    if source_only:
        raise SchemaError(
            "table(s) " + ", ".join(map(str, source_only)) + " exist in the source but not in the "
            "target; migrate the target first or exclude them"
        )
    untouched = sorted(n for n in candidates if n not in source.tables)
    synced = sorted(n for n in candidates if n in source.tables)
    synced_set = set(synced)
    if untouched:
        warnings.append("table(s) only in the target, left untouched: " + ", ".join(map(str, untouched)))
    copy_columns = {n: _compare_columns(source.tables[n], target.tables[n]) for n in synced}

    tables = target.tables
    declared = [fk for fk in target.foreign_keys if fk.table in tables and fk.ref_table in tables]
    fks = _one_per_relationship(declared)
    internal = [fk for fk in fks if fk.table in synced_set and fk.ref_table in synced_set]
    outside = [fk for fk in fks if fk.table not in synced_set and fk.ref_table in synced_set]
    into_excluded = [fk for fk in fks if fk.table in synced_set and fk.ref_table in excluded_set]

    # Edges among synced tables, plus a virtual one for a tenant key column without a foreign key.
    edges = [Edge(fk.name, fk.table, fk.columns, fk.ref_table, fk.ref_columns) for fk in internal]
    key = config.tenants.key_column
    tenant_pk = tenant.primary_key
    for name in synced:
        if name == tenant_name or target.tables[name].column(key) is None:
            continue
        if not any(e.child == name and e.columns == (key,) and e.parent == tenant_name for e in edges):
            edges.append(
                Edge(f"{name.name}.{key} (no foreign key)", name, (key,), tenant_name, tenant_pk, False)
            )
    edges += _declared_edges(target, config, synced_set, edges, copy_columns)
    if config.detect_history_tables:
        edges += _history_edges(target, synced_set, edges)

    content_types = target.find(config.content_type_table, config.schemas)
    generic = _generic_relations(target, config, synced, content_types)

    # Scoped: the tenant table and everything that reaches it through edges; rows of a
    # generic relation belong to whatever tenant their object belongs to.
    scoped = descendants({tenant_name} | {g.table for g in generic}, ((e.parent, e.child) for e in edges))

    # Outside tables must not lose rows or have rows changed behind their back (every declared
    # copy of a key is checked: one partition's may cascade where the others do not).
    for fk in (f for f in declared if f.table not in synced_set and f.ref_table in synced_set):
        if fk.on_delete in ("c", "n", "d"):
            action = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}[fk.on_delete]
            raise Refused(
                f"foreign key {fk.name} of {fk.on} (not synced) references synced table "
                f"{fk.ref_table} with ON DELETE {action}: replacing {fk.ref_table}'s rows would "
                f"change {fk.table}. Exclude {fk.ref_table} or change the constraint."
            )
        if not fk.deferrable:
            raise Refused(
                f"foreign key {fk.name} of {fk.on} (not synced) references synced table "
                f"{fk.ref_table} and is NOT DEFERRABLE, so its rows cannot be replaced in one "
                "transaction; make the constraint DEFERRABLE or exclude the table"
            )

    maps = _natural_key_maps(source, target, config, into_excluded, user_name, excluded_set)

    # Remaps per synced table, and their unique-key conflict handling.
    remaps: dict[TableName, list[Remap]] = {}
    for fk in into_excluded:
        remaps.setdefault(fk.table, []).append(Remap(fk.table, fk.columns[0], fk.ref_table, fk.name))

    load_edges = [(fk.table, fk.ref_table) for fk in internal if not fk.deferrable]
    order = _topological(synced, [(fk.table, fk.ref_table) for fk in internal])
    if order is None:
        order = _topological(synced, load_edges)
    if order is None:
        cycles = "; ".join(", ".join(map(str, group)) for group in _cycles(synced, load_edges))
        raise Refused(
            f"tables {cycles} reference each other through NOT DEFERRABLE foreign keys in a "
            "cycle, so no insert order can satisfy them; make one of those constraints DEFERRABLE"
        )

    plans: list[TablePlan] = []
    for name in order:
        table = target.tables[name]
        role: Role = "tenant" if name == tenant_name else ("scoped" if name in scoped else "global")
        rekey: Literal["integer", "uuid"] | None = None
        table_remaps = tuple(remaps.get(name, ()))
        if (
            table.primary_key
            and len(table.primary_key) == 1
            and table.primary_key[0] not in {r.column for r in table_remaps}
        ):
            pk_type = table.column(table.primary_key[0]).type  # type: ignore[union-attr]
            rekey = "integer" if pk_type in INTEGER_RANGES else ("uuid" if pk_type == "uuid" else None)
        remapped = {r.column for r in table_remaps}
        conflict_keys = tuple(u for u in table.uniques if remapped & set(u.columns))
        policy = _lookup(dict(config.on_remap_conflict), name) or "keep_one"
        if policy == "set_null":
            for u in conflict_keys:
                for col in remapped & set(u.columns):
                    if table.column(col).not_null:  # type: ignore[union-attr]
                        raise ConfigError(
                            f"on_remap_conflict.{name.name}: set_null needs {name}.{col} to be "
                            "nullable, and it is NOT NULL"
                        )
        plans.append(
            TablePlan(
                table=table,
                role=role,
                copy_columns=copy_columns[name],
                rekey=rekey,
                remaps=table_remaps,
                conflict_keys=conflict_keys,
                conflict_policy=policy,  # type: ignore[arg-type]
            )
        )

    for m in maps:
        if m.unmatched == "null":
            for r in (r for p in plans for r in p.remaps if r.target == m.table):
                if target.tables[r.table].column(r.column).not_null:  # type: ignore[union-attr]
                    raise ConfigError(
                        f"on_unmatched.{m.table.name}: null needs {r.table}.{r.column} to be "
                        "nullable, and it is NOT NULL"
                    )

    _refuse_row_security(source, target, [p.name for p in plans], [m.table for m in maps])
    large_objects = [f"{p.name}.{c.name}" for p in plans for c in p.table.columns if c.type in ("oid", "lo")]
    if large_objects:
        warnings.append(
            "large objects are not synced: " + ", ".join(large_objects) + " are copied as numbers, "
            "and refer to the target's large objects of those oids, if any (dbsync restore copies them)"
        )
    return Plan(
        tables=tuple(plans),
        tenant_table=tenant_name,
        user_table=user_name,
        excluded=tuple(excluded),
        untouched=tuple(untouched),
        edges=tuple(edges),
        outside_fks=tuple(outside),
        maps=maps,
        truncatable=_truncatable(synced_set, fks),
        content_type_table=content_types,
        generic=generic,
        warnings=tuple(warnings),
    )


def _refuse_row_security(
    source: Catalog, target: Catalog, synced: list[TableName], mapped: list[TableName]
) -> None:
    """Row-level security that applies to dbsync's roles would make it read, delete and prove
    only the rows the policies show: a sync that commits with part of the data missing, every
    proof green (they read through the same policies). Refuse instead, naming the table. On
    production, what is read (synced tables, natural-key maps); on the target, every table of
    the schemas (written, or digested to prove it unchanged)."""
    for side, catalog, names in (
        ("source", source, [*synced, *mapped]),
        ("target", target, sorted(target.tables)),
    ):
        hidden = [str(n) for n in names if n in catalog.tables and catalog.tables[n].row_security]
        if hidden:
            raise SchemaError(
                f"row-level security policies filter what the {side} role may see of "
                f"{', '.join(hidden)}, so dbsync would copy or prove only part of the rows; "
                "connect as the tables' owner or a role with BYPASSRLS"
            )


def _natural_key_maps(
    source: Catalog,
    target: Catalog,
    config: SyncConfig,
    into_excluded: list[ForeignKey],
    user_name: TableName | None,
    excluded: set[TableName],
) -> tuple[NaturalKeyMap, ...]:
    """One map per excluded table that synced rows reference, dependencies first."""
    maps: dict[TableName, NaturalKeyMap] = {}
    visiting: set[TableName] = set()
    ordered: list[NaturalKeyMap] = []

    def build(name: TableName, why: str) -> None:
        if name in maps:
            return
        if name in visiting:
            raise Refused(f"the natural keys of {name} refer back to {name} in a cycle")
        visiting.add(name)
        table = target.tables[name]
        if not table.primary_key or len(table.primary_key) != 1:
            raise Refused(f"{why}: {name} has no single-column primary key to remap")
        if name not in source.tables:
            raise SchemaError(f"{why}: table {name} does not exist in the source")
        if name == user_name:
            key = tuple(config.users.natural_key)
            unmatched: Unmatched = "fallback"
        else:
            declared = _lookup(dict(config.natural_keys), name)
            if declared is None:
                raise Refused(
                    f"{why}, but {name} is excluded and has no natural key to match its rows "
                    f"across databases; declare natural_keys.{name.name} in the config (e.g. "
                    f"its unique columns) or stop excluding {name}"
                )
            key = tuple(declared)  # type: ignore[arg-type]
            unmatched = _lookup(dict(config.on_unmatched), name) or "refuse"  # type: ignore[assignment]
        _require_columns(table, key, f"natural key of {name}", "target")
        _require_columns(source.tables[name], key, f"natural key of {name}", "source")
        nested: list[tuple[str, TableName]] = []
        for column in key:
            fk = next(
                (f for f in target.foreign_keys if f.table == name and f.columns == (column,)),
                None,
            )
            if fk is not None and fk.ref_table in excluded:
                build(fk.ref_table, f"natural key column {name}.{column} references {fk.ref_table}")
                nested.append((column, fk.ref_table))
        pk = table.primary_key[0]
        result = NaturalKeyMap(
            table=name,
            pk=pk,
            pk_type=table.column(pk).type,  # type: ignore[union-attr]
            key=key,
            key_types=tuple(table.column(c).type for c in key),  # type: ignore[union-attr]
            nested=tuple(nested),
            unmatched=unmatched,
        )
        maps[name] = result
        ordered.append(result)
        visiting.discard(name)

    for fk in sorted(into_excluded, key=lambda f: (f.table, f.name)):
        why = f"column {fk.table}.{','.join(fk.columns)} references excluded table {fk.ref_table}"
        if len(fk.columns) != 1:
            raise Refused(f"{why} through a multi-column key, which dbsync cannot remap")
        ref_pk = target.tables[fk.ref_table].primary_key
        if ref_pk != fk.ref_columns:
            raise Refused(f"{why} by a column other than its primary key, which dbsync cannot remap")
        build(fk.ref_table, why)
    return tuple(ordered)


def _generic_relations(
    target: Catalog, config: SyncConfig, synced: list[TableName], content_types: TableName | None
) -> tuple[GenericRelation, ...]:
    """Detected (``content_type_id`` referencing the content type table, beside ``object_id``
    or ``object_pk``) and configured generic relations of synced tables."""
    found: dict[TableName, GenericRelation] = {}
    if content_types is not None and config.detect_generic_relations:
        for name in synced:
            table = target.tables[name]
            for fk in target.foreign_keys:
                if fk.table != name or fk.ref_table != content_types or fk.columns != ("content_type_id",):
                    continue
                for id_column in ("object_id", "object_pk"):
                    column = table.column(id_column)
                    if column is not None:
                        found[name] = GenericRelation(name, "content_type_id", id_column, column.type)
                        break
    for declared in config.generic_relations:
        if content_types is None:
            raise ConfigError(
                f"generic_relations: the content type table {config.content_type_table!r} does not "
                "exist in the target"
            )
        resolved = target.find(declared.table, config.schemas)
        if resolved is None or resolved not in synced:
            raise ConfigError(f"generic_relations: table {declared.table!r} is not a synced table")
        name = resolved
        table = target.tables[name]
        _require_columns(
            table,
            [declared.content_type_column, declared.object_id_column],
            "generic_relations",
            "target",
        )
        found[name] = GenericRelation(
            name,
            declared.content_type_column,
            declared.object_id_column,
            table.column(declared.object_id_column).type,  # type: ignore[union-attr]
        )
    return tuple(found[n] for n in sorted(found))


def _history_edges(target: Catalog, synced: set[TableName], edges: list[Edge]) -> list[Edge]:
    """django-simple-history's tables, as declared references: ``<app>_historical<model>``
    (with ``history_id``, ``history_date`` and ``history_type``) holds copies of
    ``<app>_<model>``'s rows (at least half of its columns), its primary key in a plain column
    of the same name and its foreign keys as columns without a constraint
    (``db_constraint=False``). Each becomes an edge to what the tracked table's column
    references, between synced tables, so a UAT test tenant's history follows its rows' new
    ids. Tables named otherwise (a custom ``db_table``, a name cut to 63 characters) are not
    found; declare them in ``references``."""
    found: list[Edge] = []
    for name in sorted(synced):
        head, marker, tail = name.name.rpartition("_historical")
        if not marker or not head or not tail:
            continue
        history = target.tables[name]
        if any(history.column(c) is None for c in ("history_id", "history_date", "history_type")):
            continue
        tracked = TableName(name.schema, f"{head}_{tail}")
        if tracked not in synced or not target.tables[tracked].primary_key:
            continue
        model = target.tables[tracked]
        # A copy has most of its row's columns (simple-history leaves out only excluded_fields;
        # a FileField's varchar may come as text): with fewer, it is some other table.
        if 2 * sum(history.column(c.name) is not None for c in model.columns) < len(model.columns):
            continue
        links = [(model.primary_key, tracked, model.primary_key)]
        links += [
            (fk.columns, fk.ref_table, fk.ref_columns)
            for fk in target.foreign_keys
            if fk.table == tracked and fk.ref_table in synced
        ]
        for columns, parent, ref_columns in links:
            assert columns is not None and ref_columns is not None
            if any(
                history.column(c) is None
                or history.column(c).type != model.column(c).type  # type: ignore[union-attr]
                for c in columns
            ):
                continue
            if any(e.child == name and set(e.columns) == set(columns) for e in [*edges, *found]):
                continue  # a foreign key, the tenant key or a declaration says so already
            label = f"{name.name}.{'+'.join(columns)} (history of {tracked.name})"
            found.append(Edge(label, name, columns, parent, ref_columns, False))
    return found


def _declared_edges(
    target: Catalog,
    config: SyncConfig,
    synced: set[TableName],
    edges: list[Edge],
    copy_columns: dict[TableName, tuple[str, ...]],
) -> list[Edge]:
    """The config's ``references``, as edges without a constraint, validated against the
    catalogs: both tables synced, the columns copied (on both sides, not generated) with the
    referenced columns' types, and the referenced columns a key of their table (a reference
    names one row). A reference to a table's own key by that key names itself: refused."""
    declared: list[Edge] = []
    for i, ref in enumerate(config.references):
        key = f"references.{i}"
        ends: list[TableName] = []
        for what, wanted in (("table", ref.table), ("references", ref.references)):
            found = target.find(wanted, config.schemas)
            if found is None:
                raise SchemaError(
                    f"{key}.{what}: table {wanted!r} does not exist in the target "
                    f"(schemas searched: {', '.join(config.schemas)})"
                )
            if found not in synced:
                raise ConfigError(
                    f"{key}.{what}: {found} is not synced (excluded, or only in the target); a "
                    "declared reference joins two synced tables"
                )
            ends.append(found)
        child, parent = ends
        columns = tuple(ref.columns)
        parent_table = target.tables[parent]
        ref_columns = tuple(ref.ref_columns or parent_table.primary_key or ())
        if not ref_columns:
            raise ConfigError(f"{key}: {parent} has no primary key; name the columns in ref_columns")
        _require_columns(target.tables[child], columns, f"{key}.columns", "target")
        _require_columns(parent_table, ref_columns, f"{key}.ref_columns", "target")
        if len(columns) != len(ref_columns):
            raise ConfigError(
                f"{key}: {len(columns)} column(s) cannot reference "
                f"{len(ref_columns)} ({', '.join(ref_columns)})"
            )
        ends_columns = ((f"{key}.columns", child, columns), (f"{key}.ref_columns", parent, ref_columns))
        for side, table, names in ends_columns:
            uncopied = [c for c in names if c not in copy_columns[table]]
            if uncopied:
                raise SchemaError(
                    f"{side}: {table}.{', '.join(uncopied)} is generated or only in the target, "
                    "so the sync does not copy it and cannot follow a reference through it"
                )
        pk = parent_table.primary_key or ()
        if set(ref_columns) == set(pk) and ref_columns != pk:  # in the key's own order
            pairs = dict(zip(ref_columns, columns, strict=True))
            ref_columns, columns = pk, tuple(pairs[c] for c in pk)
        if child == parent and columns == ref_columns:
            raise ConfigError(f"{key}: {child}.({', '.join(columns)}) cannot reference itself")
        for column, ref_column in zip(columns, ref_columns, strict=True):
            mine = target.tables[child].column(column).type  # type: ignore[union-attr]
            theirs = parent_table.column(ref_column).type  # type: ignore[union-attr]
            if mine != theirs:
                raise SchemaError(
                    f"{key}: {child}.{column} is {mine} but {parent}.{ref_column} is {theirs}; a "
                    "reference compares values of one type"
                )
        if not any(set(u.columns) == set(ref_columns) and u.plain for u in parent_table.uniques) and (
            set(ref_columns) != set(parent_table.primary_key or ())
        ):
            raise ConfigError(
                f"{key}: {parent}.({', '.join(ref_columns)}) is neither its primary key nor a "
                "unique key, so a value could name several rows"
            )
        if any(
            e.child == child
            and e.parent == parent
            and set(zip(e.columns, e.ref_columns, strict=True)) == set(zip(columns, ref_columns, strict=True))
            for e in [*edges, *declared]
        ):
            continue  # a foreign key, the tenant key or an earlier declaration says so already
        name = f"{child.name}.{'+'.join(columns)} (declared reference)"
        declared.append(Edge(name, child, columns, parent, ref_columns, False))
    return declared


def _one_per_relationship(fks: list[ForeignKey]) -> list[ForeignKey]:
    """The foreign keys as relationships between tables. A key declared on each partition of a
    table instead of once on the table (pagila's payment) reaches the plan once per partition,
    each lifted to the partitioned table: one relationship, planned once (a remap applied once
    per partition would map ids already mapped). Its copies stay in the catalog, each dropped,
    re-added and proven on its own partition. The one kept is NOT DEFERRABLE if any copy is, so
    the load order satisfies them all."""
    kept: dict[tuple[object, ...], ForeignKey] = {}
    result: list[ForeignKey] = []
    # keys declared on the table itself first: a partition's copy after one is the same relationship
    for fk in sorted(fks, key=lambda f: f.holder is not None or f.ref_holder is not None):
        relationship = (fk.table, fk.columns, fk.ref_table, fk.ref_columns)
        first = kept.get(relationship)
        if first is None or (fk.holder is None and fk.ref_holder is None):
            kept.setdefault(relationship, fk)
            result.append(fk)
        elif first.deferrable and not fk.deferrable:
            result[result.index(first)] = kept[relationship] = replace(first, deferrable=False)
    return result


def _truncatable(synced: set[TableName], fks: list[ForeignKey]) -> frozenset[TableName]:
    """Synced tables that can be emptied with one TRUNCATE: none referenced from outside it."""
    candidates = set(synced)
    changed = True
    while changed:
        changed = False
        for fk in fks:
            if fk.ref_table in candidates and fk.table not in candidates:
                candidates.discard(fk.ref_table)
                changed = True
    return frozenset(candidates)
