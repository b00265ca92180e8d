"""What a database holds: tables, columns, keys, foreign keys and sequences, read from pg_catalog.

The model is plain frozen data so that planning (:mod:`dbsync.plan`) is pure and testable
without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .sqlfiles import query

INTEGER_RANGES = {
    "smallint": 2**15 - 1,
    "integer": 2**31 - 1,
    "bigint": 2**63 - 1,
}


@dataclass(frozen=True, order=True)
class TableName:
    schema: str
    name: str

    def __str__(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    generated: bool
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    has_default: bool
    boolean: bool = False  # boolean, or a domain over boolean


@dataclass(frozen=True)
class UniqueKey:
    """A primary key, unique constraint, or unique index that backs no constraint.

    For an index, ``expressions`` holds its key items as SQL (a column or an expression over
    unqualified column names) and ``predicate`` its WHERE clause, if partial; ``columns`` then
    lists every column it reads. For a constraint the key items are simply ``columns``."""

    name: str
    columns: tuple[str, ...]
    primary: bool
    deferrable: bool
    expressions: tuple[str, ...] = ()
    predicate: str | None = None

    @property
    def plain(self) -> bool:
        """A key over plain columns, without a predicate: comparable column by column."""
        return not self.expressions and self.predicate is None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: TableName
    columns: tuple[str, ...]
    ref_table: TableName
    ref_columns: tuple[str, ...]
    deferrable: bool
    on_delete: str  # pg_constraint.confdeltype: a, r, c, n, d
    validated: bool
    definition: str = ""  # pg_get_constraintdef: to re-create it exactly
    # A key declared on a partition: ``table`` (and ``ref_table``) name the partitioned root,
    # through which dbsync plans, reads and writes the rows; ``holder`` (``ref_holder``) the
    # partition that holds the constraint, for its DDL and its proof.
    holder: TableName | None = None
    ref_holder: TableName | None = None

    @property
    def on(self) -> TableName:
        """The relation the constraint is declared on."""
        return self.holder or self.table

    @property
    def ref_on(self) -> TableName:
        """The relation the constraint references."""
        return self.ref_holder or self.ref_table

    def __str__(self) -> str:
        return f"{self.name} ({self.on}.{','.join(self.columns)} -> {self.ref_on})"


@dataclass(frozen=True)
class SequenceUse:
    column: str
    sequence: TableName
    column_type: str
    seq_max: int
    seq_min: int = 1
    increment: int = 1

    @property
    def limit(self) -> int:
        """The largest value both the sequence and the column can hold."""
        return min(self.seq_max, INTEGER_RANGES.get(self.column_type, self.seq_max))

    @property
    def lower_limit(self) -> int:
        """The smallest value both the sequence and the column can hold."""
        if self.column_type not in INTEGER_RANGES:
            return self.seq_min
        return max(self.seq_min, -INTEGER_RANGES[self.column_type] - 1)

    @property
    def descending(self) -> bool:
        return self.increment < 0


@dataclass(frozen=True)
class Table:
    name: TableName
    columns: tuple[Column, ...]
    partitioned: bool = False
    primary_key: tuple[str, ...] | None = None
    uniques: tuple[UniqueKey, ...] = ()
    sequences: tuple[SequenceUse, ...] = ()
    row_security: bool = False  # policies filter what the connected role sees of its rows

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Columns an INSERT may name (generated columns are computed by the server)."""
        return tuple(c.name for c in self.columns if not c.generated)

    @property
    def has_identity_always(self) -> bool:
        return any(c.identity == "a" for c in self.columns)


@dataclass(frozen=True)
class Catalog:
    tables: dict[TableName, Table]
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    def find(self, name: str, schemas: list[str]) -> TableName | None:
        """Resolve a configured table name, plain (searched in ``schemas``) or schema-qualified."""
        if "." in name:
            schema, _, rel = name.partition(".")
            candidate = TableName(schema, rel)
            return candidate if candidate in self.tables else None
        for schema in schemas:
            candidate = TableName(schema, name)
            if candidate in self.tables:
                return candidate
        return None


def read_catalog(conn: psycopg.Connection[object], schemas: list[str]) -> Catalog:
    """Read the catalog of ``schemas`` through ``conn`` (inside whatever transaction it has)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("select_catalog_tables", schemas=schemas))
        raw_tables = cur.fetchall()
        cur.execute(query("select_catalog_constraints", schemas=schemas))
        raw_constraints = cur.fetchall()
        cur.execute(query("select_catalog_sequences", schemas=schemas))
        raw_sequences = cur.fetchall()
        cur.execute(query("select_catalog_unique_indexes", schemas=schemas))
        raw_indexes = cur.fetchall()

    pks: dict[TableName, tuple[str, ...]] = {}
    uniques: dict[TableName, list[UniqueKey]] = {}
    fks: list[ForeignKey] = []
    for row in raw_constraints:
        name = TableName(row["schema"], row["table"])
        columns = tuple(row["columns"])
        if row["type"] in ("p", "u"):
            uniques.setdefault(name, []).append(
                UniqueKey(row["name"], columns, row["type"] == "p", row["deferrable"])
            )
            if row["type"] == "p":
                pks[name] = columns
        else:
            ref = TableName(row["ref_schema"], row["ref_table"])
            root = TableName(row["root_schema"], row["root_table"]) if row["root_table"] else None
            ref_root = (
                TableName(row["ref_root_schema"], row["ref_root_table"]) if row["ref_root_table"] else None
            )
            fks.append(
                ForeignKey(
                    name=row["name"],
                    table=root or name,
                    holder=name if root else None,
                    columns=columns,
                    ref_table=ref_root or ref,
                    ref_holder=ref if ref_root else None,
                    ref_columns=tuple(row["ref_columns"]),
                    deferrable=row["deferrable"],
                    on_delete=row["on_delete"],
                    validated=row["validated"],
                    definition=row["definition"] or "",
                )
            )
    for row in raw_indexes:
        uniques.setdefault(TableName(row["schema"], row["table"]), []).append(
            UniqueKey(
                name=row["name"],
                columns=tuple(sorted(row["used"])),
                primary=False,
                deferrable=False,
                expressions=tuple(row["items"]),
                predicate=row["predicate"],
            )
        )
    sequences: dict[TableName, list[SequenceUse]] = {}
    for row in raw_sequences:
        sequences.setdefault(TableName(row["schema"], row["table"]), []).append(
            SequenceUse(
                column=row["column"],
                sequence=TableName(row["seq_schema"], row["seq_name"]),
                column_type=row["column_type"],
                seq_max=int(row["seq_max"]),
                seq_min=int(row["seq_min"]),
                increment=int(row["increment"]),
            )
        )
    tables: dict[TableName, Table] = {}
    for row in raw_tables:
        name = TableName(row["schema"], row["name"])
        tables[name] = Table(
            name=name,
            columns=tuple(
                Column(
                    name=c["name"],
                    type=c["type"],
                    not_null=c["not_null"],
                    generated=c["generated"],
                    identity=c["identity"],
                    has_default=c["has_default"],
                    boolean=c["boolean"],
                )
                for c in row["columns"]
            ),
            partitioned=row["partitioned"],
            row_security=row["row_security"],
            primary_key=pks.get(name),
            uniques=tuple(uniques.get(name, ())),
            sequences=tuple(sequences.get(name, ())),
        )
    return Catalog(tables=tables, foreign_keys=tuple(fks))
