"""What a full restore must reproduce, measured the same way on both sides.

A fingerprint is: the normalised schema description (``sql/select_schema_description.sql``),
each table's row count and order-independent digest, each sequence's position, and the large
objects. Production's is taken in the snapshot its dump is taken in and stored in the backup's
manifest; staging's is taken inside the restore transaction, before COMMIT, by the same
queries (composed once here, run through psycopg on one side and through the restoring psql
session on the other). Values travel hex-encoded so that no newline in a function body can
split a line of psql's output.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from .sqlfiles import query, text_of

COMPARABLE_SETTINGS = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
    "SET search_path = ''",
)


# How table rows are digested: the name is stored with the fingerprint, so a backup taken by an
# older dbsync (md5, sql/select_digest.sql) is still verified the way it was fingerprinted.
DIGESTS = {"md5": "select_digest", "hashtextextended": "select_sync_digest"}
DIGEST = "hashtextextended"  # ~2.5x faster than md5 over the same row text (measured)


@dataclass
class Fingerprint:
    schema: list[str] = field(default_factory=list)
    tables: dict[str, list[Any]] = field(default_factory=dict)  # name -> [rows, digest]
    sequences: dict[str, list[Any]] = field(default_factory=dict)  # name -> [last_value, is_called]
    large_objects: list[Any] = field(default_factory=lambda: [0, "0"])
    digest: str = DIGEST

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "tables": self.tables,
            "sequences": self.sequences,
            "large_objects": self.large_objects,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        digest = data.get("digest", "md5")  # fingerprints from before the name was stored
        if digest not in DIGESTS:
            raise ValueError(f"unknown row digest {digest!r}")
        return cls(data["schema"], data["tables"], data["sequences"], data["large_objects"], digest)

    @property
    def extensions(self) -> list[str]:
        return [line.split("|")[1] for line in self.schema if line.startswith("extension|")]


def _hex(expr: sql.Composable) -> sql.Composed:
    return sql.SQL("encode(convert_to({}::text, 'UTF8'), 'hex')").format(expr)


def fingerprint_queries(
    tables: list[tuple[str, str, bool]], sequences: list[tuple[str, str]], digest: str = DIGEST
) -> list[tuple[str, sql.Composed]]:
    """(kind, query) pairs; every query returns rows of hex-encoded text columns."""
    description = sql.SQL(text_of("select_schema_description").strip().rstrip(";"))
    queries: list[tuple[str, sql.Composed]] = [
        ("schema", sql.SQL("SELECT {} FROM ({}) AS d").format(_hex(sql.SQL("d.line")), description))
    ]
    for schema, name, only in tables:
        relation = sql.SQL("ONLY {}" if only else "{}").format(sql.Identifier(schema, name))
        digest_query = query(DIGESTS[digest], relation=relation, columns=sql.SQL("t.*"))
        queries.append(
            (
                "table",
                sql.SQL("SELECT {}, {}, {} FROM ({}) AS x").format(
                    _hex(sql.Literal(f"{schema}.{name}")),
                    _hex(sql.SQL("x.rows")),
                    _hex(sql.SQL("x.digest")),
                    _strip(digest_query),
                ),
            )
        )
    for schema, name in sequences:
        queries.append(
            (
                "sequence",
                sql.SQL("SELECT {}, {}, {} FROM {}").format(
                    _hex(sql.Literal(f"{schema}.{name}")),
                    _hex(sql.SQL("last_value")),
                    _hex(sql.SQL("is_called")),
                    sql.Identifier(schema, name),
                ),
            )
        )
    lo = _strip(query("select_large_objects_digest"))
    queries.append(
        (
            "large_objects",
            sql.SQL("SELECT {}, {} FROM ({}) AS l").format(
                _hex(sql.SQL("l.objects")), _hex(sql.SQL("l.digest")), lo
            ),
        )
    )
    return queries


def _strip(composed: sql.Composed) -> sql.Composed:
    """A composed statement without its trailing semicolon, to be used as a subquery."""
    parts = list(composed)
    last = parts[-1]
    if isinstance(last, sql.SQL):
        parts[-1] = sql.SQL(last.as_string().rstrip().rstrip(";"))
    return sql.Composed(parts)


def collect(results: list[tuple[str, list[list[str]]]], digest: str = DIGEST) -> Fingerprint:
    """Build a fingerprint from the hex rows each query of :func:`fingerprint_queries` gave."""
    fp = Fingerprint(digest=digest)
    for kind, rows in results:
        decoded = [[bytes.fromhex(v).decode() for v in row] for row in rows]
        if kind == "schema":
            fp.schema = sorted(r[0] for r in decoded)
        elif kind == "table":
            for name, count, digest in decoded:
                fp.tables[name] = [int(count), digest]
        elif kind == "sequence":
            for name, last, called in decoded:
                fp.sequences[name] = [int(last), called in ("t", "true")]
        else:
            fp.large_objects = [int(decoded[0][0]), decoded[0][1]]
    return fp


def listing_queries() -> tuple[sql.Composed, sql.Composed]:
    """Hex-encoded (schema, name, only) of the data relations and (schema, name) of sequences."""
    tables = sql.SQL("SELECT {}, {}, {} FROM ({}) AS r").format(
        _hex(sql.SQL("r.schema")),
        _hex(sql.SQL("r.name")),
        _hex(sql.SQL("r.only")),
        _strip(query("select_data_relations")),
    )
    sequences = sql.SQL("SELECT {}, {} FROM ({}) AS s").format(
        _hex(sql.SQL("s.schema")), _hex(sql.SQL("s.name")), _strip(query("select_sequence_names"))
    )
    return tables, sequences


def parse_listing(
    table_rows: list[list[str]], sequence_rows: list[list[str]]
) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str]]]:
    def text(v: str) -> str:
        return bytes.fromhex(v).decode()

    tables = [(text(a), text(b), text(c) in ("t", "true")) for a, b, c in table_rows]
    sequences = [(text(a), text(b)) for a, b in sequence_rows]
    return tables, sequences


def relations(cur: psycopg.Cursor[Any]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str]]]:
    tables_q, sequences_q = listing_queries()
    cur.execute(tables_q)
    table_rows = [list(map(str, r)) for r in cur.fetchall()]
    cur.execute(sequences_q)
    sequence_rows = [list(map(str, r)) for r in cur.fetchall()]
    return parse_listing(table_rows, sequence_rows)


def take_schema(conn: psycopg.Connection[Any]) -> list[str]:
    """Only the schema description part of :func:`take` (one quick catalog query): what a
    restore checks before it starts, while the table digests are still being taken."""
    with conn.cursor() as cur:
        for statement in COMPARABLE_SETTINGS:
            cur.execute(statement)
        kind, q = fingerprint_queries([], [])[0]
        assert kind == "schema"
        cur.execute(q)
        return collect([(kind, [list(map(str, row)) for row in cur.fetchall()])]).schema


def take(conn: psycopg.Connection[Any], digest: str = DIGEST) -> Fingerprint:
    """The fingerprint of the database ``conn`` reaches, in its current transaction."""
    with conn.cursor() as cur:
        for statement in COMPARABLE_SETTINGS:
            cur.execute(statement)
        tables, sequences = relations(cur)
        results = []
        for kind, q in fingerprint_queries(tables, sequences, digest):
            cur.execute(q)
            results.append((kind, [list(map(str, row)) for row in cur.fetchall()]))
    return collect(results, digest)


def take_parallel(
    submit: Callable[[Callable[[psycopg.Connection[Any]], Any]], Future[Any]], digest: str = DIGEST
) -> Fingerprint:
    """:func:`take`, its queries spread over the connections ``submit`` runs work on (all in
    one snapshot: see :class:`dbsync.readers.SnapshotReaders`)."""

    def run(q: sql.Composed) -> Callable[[psycopg.Connection[Any]], list[list[str]]]:
        def work(conn: psycopg.Connection[Any]) -> list[list[str]]:
            with conn.cursor() as cur:
                for statement in COMPARABLE_SETTINGS:
                    cur.execute(statement)
                cur.execute(q)
                return [list(map(str, row)) for row in cur.fetchall()]

        return work

    def listing(conn: psycopg.Connection[Any]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str]]]:
        with conn.cursor() as cur:
            for statement in COMPARABLE_SETTINGS:
                cur.execute(statement)
            return relations(cur)

    tables, sequences = submit(listing).result()
    pending = [(kind, submit(run(q))) for kind, q in fingerprint_queries(tables, sequences, digest)]
    return collect([(kind, future.result()) for kind, future in pending], digest)


def differences(expected: Fingerprint, actual: Fingerprint) -> dict[str, list[str]]:
    """What differs, by part: schema lines (+ only in actual, - only in expected), tables,
    sequences, large objects. Empty lists everywhere mean equal."""
    exp_schema, act_schema = set(expected.schema), set(actual.schema)
    schema = [f"- {line}" for line in sorted(exp_schema - act_schema)] + [
        f"+ {line}" for line in sorted(act_schema - exp_schema)
    ]
    tables = [
        f"{name}: expected {expected.tables.get(name)}, got {actual.tables.get(name)}"
        for name in sorted(expected.tables.keys() | actual.tables.keys())
        if expected.tables.get(name) != actual.tables.get(name)
    ]
    sequences = [
        f"{name}: expected {expected.sequences.get(name)}, got {actual.sequences.get(name)}"
        for name in sorted(expected.sequences.keys() | actual.sequences.keys())
        if expected.sequences.get(name) != actual.sequences.get(name)
    ]
    large = (
        []
        if expected.large_objects == actual.large_objects
        else [f"expected {expected.large_objects}, got {actual.large_objects}"]
    )
    return {"schema": schema, "tables": tables, "sequences": sequences, "large_objects": large}


def dumped_tables(cur: psycopg.Cursor[Any]) -> list[tuple[str, str]]:
    """Every table whose rows pg_dump writes (not materialized views: those it refreshes)."""
    cur.execute(query("select_data_relations"))
    return [(schema, name) for schema, name, only in cur.fetchall() if only]


def counts_from(fp: Fingerprint, tables: list[tuple[str, str]]) -> dict[str, int]:
    """:func:`table_counts` read off a fingerprint taken in the same snapshot: its digests
    counted those tables' rows (``ONLY``) already, so they need no second scan."""
    return {f"{schema}.{name}": fp.tables[f"{schema}.{name}"][0] for schema, name in tables}


def table_counts(cur: psycopg.Cursor[Any]) -> dict[str, int]:
    """Row counts of every table pg_dump writes, in the cursor's transaction."""
    counts = {}
    for schema, name in dumped_tables(cur):
        cur.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name)))
        row = cur.fetchone()
        assert row is not None
        counts[f"{schema}.{name}"] = int(row[0])
    return counts
