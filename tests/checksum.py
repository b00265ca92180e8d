"""An independent whole-database checksum, for tests to compare databases.

Deliberately separate from dbsync (it must not import it): when a test says
"the target is unchanged" or "the copy equals the source", the proof does not
rely on the code under test.

What it covers, in every schema that is not a system one (pg_catalog,
information_schema, pg_toast*, pg_temp*):

* data: every ordinary table's rows, each rendered as the row's text
  (``t::text``) under fixed settings (TimeZone=UTC, DateStyle=ISO,
  IntervalStyle=postgres, extra_float_digits=1, bytea_output=hex), sorted in
  byte order (COLLATE "C") and hashed with md5. Temporary tables are excluded;
  unlogged tables are included.
* sequences: ``last_value`` and ``is_called`` of every sequence (identity and
  serial ones included).
* schema: a catalog query (not pg_dump, whose output carries a random
  ``\\restrict`` key since 15.14/16.10/17.6): schemas, relations (kind,
  persistence, owner, ACL, options, partitioning), columns (position among live
  columns, type, NOT NULL, default, identity, generated, collation),
  constraints (definition, deferrable/deferred, validated), indexes, sequence
  parameters and ownership, triggers, views, functions, enum and domain types,
  extensions and row-security policies. Names are rendered with
  ``search_path=pg_catalog`` so they always come out schema-qualified.

All of it is read in one REPEATABLE READ, READ ONLY transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

SESSION_SETTINGS: dict[str, str] = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "search_path": "pg_catalog",
    "lc_monetary": "C",
    "xmloption": "content",
}

USER_NAMESPACES = """
    SELECT oid FROM pg_catalog.pg_namespace
    WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
"""

# Each query returns one text column: a line of the schema description.
SCHEMA_QUERIES: tuple[tuple[str, str], ...] = (
    ("schema", f"""
        SELECT format('schema %I owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner),
                      n.nspacl::text)
        FROM pg_namespace n WHERE n.oid IN ({USER_NAMESPACES})
    """),
    ("relation", f"""
        SELECT format('relation %s kind=%s persistence=%s owner=%s acl=%s options=%s rls=%s/%s '
                      'partkey=%s partbound=%s of=%s replident=%s',
                      c.oid::regclass, c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
                      c.relacl::text, c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity,
                      CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                      pg_get_expr(c.relpartbound, c.oid),
                      CASE WHEN c.reloftype <> 0 THEN c.reloftype::regtype::text END,
                      c.relreplident)
        FROM pg_class c
        WHERE c.relnamespace IN ({USER_NAMESPACES}) AND c.relpersistence <> 't'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    """),
    ("inherits", f"""
        SELECT format('inherits %s from %s #%s', i.inhrelid::regclass, i.inhparent::regclass,
                      i.inhseqno)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE c.relnamespace IN ({USER_NAMESPACES}) AND c.relkind IN ('r', 'p', 'f')
    """),
    ("column", f"""
        SELECT format('column %s #%s %I %s notnull=%s default=%s identity=%s generated=%s '
                      'collation=%s acl=%s',
                      c.oid::regclass,
                      row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
                      a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                      CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                      a.attacl::text)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace IN ({USER_NAMESPACES}) AND c.relpersistence <> 't'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
          AND a.attnum > 0 AND NOT a.attisdropped
    """),
    ("constraint", f"""
        SELECT format('constraint %s %I type=%s deferrable=%s deferred=%s validated=%s '
                      'noinherit=%s: %s',
                      coalesce(c.oid::regclass::text, 'domain ' || con.contypid::regtype::text),
                      con.conname, con.contype, con.condeferrable, con.condeferred,
                      con.convalidated,
                      -- NO INHERIT means something only for CHECK constraints; pg_dump
                      -- recreates a partition's primary key with connoinherit set, as any
                      -- plain pg_dump | pg_restore does, without any change in meaning.
                      con.contype = 'c' AND con.connoinherit,
                      pg_get_constraintdef(con.oid, true))
        FROM pg_constraint con
        LEFT JOIN pg_class c ON c.oid = con.conrelid
        WHERE con.connamespace IN ({USER_NAMESPACES})
          AND (c.oid IS NULL OR c.relpersistence <> 't')
    """),
    ("index", f"""
        SELECT format('index %s valid=%s clustered=%s replident=%s: %s',
                      i.indexrelid::regclass, i.indisvalid, i.indisclustered, i.indisreplident,
                      pg_get_indexdef(i.indexrelid))
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace IN ({USER_NAMESPACES}) AND c.relpersistence <> 't'
    """),
    ("sequence", f"""
        SELECT format('sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s '
                      'cycle=%s owned_by=%s',
                      s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement,
                      s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                      (SELECT format('%s.%I %s', d.refobjid::regclass, a.attname, d.deptype)
                       FROM pg_depend d
                       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                       LIMIT 1))
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        WHERE c.relnamespace IN ({USER_NAMESPACES}) AND c.relpersistence <> 't'
    """),
    ("trigger", f"""
        SELECT format('trigger %s enabled=%s: %s', t.tgrelid::regclass, t.tgenabled,
                      pg_get_triggerdef(t.oid, true))
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace IN ({USER_NAMESPACES})
          AND c.relpersistence <> 't'
    """),
    ("view", f"""
        SELECT format('view %s: %s', c.oid::regclass, pg_get_viewdef(c.oid, true))
        FROM pg_class c
        WHERE c.relkind IN ('v', 'm') AND c.relnamespace IN ({USER_NAMESPACES})
          AND c.relpersistence <> 't'
    """),
    ("rule", f"""
        SELECT format('rule %s %I enabled=%s: %s', r.ev_class::regclass, r.rulename,
                      r.ev_enabled, pg_get_ruledef(r.oid, true))
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        WHERE r.rulename <> '_RETURN' AND c.relnamespace IN ({USER_NAMESPACES})
    """),
    ("function", f"""
        SELECT format('function %s kind=%s owner=%s acl=%s: %s',
                      p.oid::regprocedure, p.prokind, pg_get_userbyid(p.proowner),
                      p.proacl::text,
                      CASE WHEN p.prokind = 'a' THEN NULL ELSE pg_get_functiondef(p.oid) END)
        FROM pg_proc p WHERE p.pronamespace IN ({USER_NAMESPACES})
    """),
    ("type", f"""
        SELECT format('type %s kind=%s owner=%s base=%s notnull=%s default=%s labels=%s',
                      t.oid::regtype, t.typtype, pg_get_userbyid(t.typowner),
                      CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                      t.typnotnull, t.typdefault,
                      (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
                       FROM pg_enum e WHERE e.enumtypid = t.oid))
        FROM pg_type t
        WHERE t.typnamespace IN ({USER_NAMESPACES}) AND t.typtype IN ('e', 'd', 'r', 'm')
    """),
    ("extension", """
        SELECT format('extension %I version=%s schema=%I', e.extname, e.extversion, n.nspname)
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """),
    ("policy", f"""
        SELECT format('policy %s %I cmd=%s permissive=%s roles=%s using=%s check=%s',
                      p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive,
                      p.polroles::regrole[]::text, pg_get_expr(p.polqual, p.polrelid),
                      pg_get_expr(p.polwithcheck, p.polrelid))
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace IN ({USER_NAMESPACES})
    """),
)

TABLES_QUERY = f"""
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relpersistence IN ('p', 'u')
      AND c.relnamespace IN ({USER_NAMESPACES})
    ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
"""

SEQUENCES_QUERY = f"""
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND c.relpersistence IN ('p', 'u')
      AND c.relnamespace IN ({USER_NAMESPACES})
    ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
"""


@dataclass(frozen=True)
class Snapshot:
    """Everything the checksum covers, kept apart so a test can say what differs."""

    schema_lines: tuple[str, ...]
    tables: dict[str, str] = field(default_factory=dict)  # "schema.table" -> md5 of rows
    row_counts: dict[str, int] = field(default_factory=dict)
    # "schema.sequence" -> (last_value, is_called)
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)

    @property
    def schema_checksum(self) -> str:
        return _md5_lines(self.schema_lines)

    @property
    def checksum(self) -> str:
        lines = [f"schema {self.schema_checksum}"]
        lines += [f"table {name} {digest}" for name, digest in sorted(self.tables.items())]
        lines += [
            f"sequence {name} {value} {called}"
            for name, (value, called) in sorted(self.sequences.items())
        ]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def diff(self, other: Snapshot) -> list[str]:
        """Human-readable differences (empty when the checksums are equal)."""
        out: list[str] = []
        mine, theirs = set(self.schema_lines), set(other.schema_lines)
        out += [f"schema only in self:  {line}" for line in sorted(mine - theirs)]
        out += [f"schema only in other: {line}" for line in sorted(theirs - mine)]
        for name in sorted(self.tables.keys() | other.tables.keys()):
            if self.tables.get(name) != other.tables.get(name):
                out.append(
                    f"table {name}: rows {self.row_counts.get(name)}"
                    f" vs {other.row_counts.get(name)},"
                    f" md5 {self.tables.get(name)} vs {other.tables.get(name)}"
                )
        for name in sorted(self.sequences.keys() | other.sequences.keys()):
            if self.sequences.get(name) != other.sequences.get(name):
                out.append(
                    f"sequence {name}: {self.sequences.get(name)} vs {other.sequences.get(name)}"
                )
        return out


def _md5_lines(lines: tuple[str, ...] | list[str]) -> str:
    h = hashlib.md5()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def _qualified(schema: str, name: str) -> str:
    return f"{schema}.{name}"


def _open(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for key, value in SESSION_SETTINGS.items():
                cur.execute("SELECT set_config(%s, %s, false)", (key, value))
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    except BaseException:
        conn.close()
        raise
    return conn


def _table_digest(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[str, int]:
    query = sql.SQL(
        'COPY (SELECT r FROM (SELECT t::text AS r FROM ONLY {}.{} AS t) AS s '
        'ORDER BY r COLLATE "C") TO STDOUT'
    ).format(sql.Identifier(schema), sql.Identifier(table))
    h = hashlib.md5()
    rows = 0
    with conn.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:
            data = bytes(chunk)
            h.update(data)
            rows += data.count(b"\n")
    return h.hexdigest(), rows


def snapshot(url: str) -> Snapshot:
    """Read schema, rows and sequence values of the database at url, consistently."""
    with _open(url) as conn:
        with conn.cursor() as cur:
            schema_lines: list[str] = []
            for _label, query in SCHEMA_QUERIES:
                cur.execute(query)
                schema_lines += [row[0] for row in cur.fetchall() if row[0] is not None]
            schema_lines.sort()
            cur.execute(TABLES_QUERY)
            tables: list[tuple[str, str]] = cur.fetchall()
            cur.execute(SEQUENCES_QUERY)
            seqs: list[tuple[str, str]] = cur.fetchall()
        digests: dict[str, str] = {}
        counts: dict[str, int] = {}
        for schema, table in tables:
            digest, count = _table_digest(conn, schema, table)
            digests[_qualified(schema, table)] = digest
            counts[_qualified(schema, table)] = count
        values: dict[str, tuple[int, bool]] = {}
        with conn.cursor() as cur:
            for schema, name in seqs:
                cur.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(name)
                    )
                )
                row = cur.fetchone()
                assert row is not None
                values[_qualified(schema, name)] = (int(row[0]), bool(row[1]))
        conn.execute("ROLLBACK")
    return Snapshot(tuple(schema_lines), digests, counts, values)


def database_checksum(url: str) -> str:
    """One hex digest over the schema, every user table's rows and every sequence."""
    return snapshot(url).checksum


def table_checksums(url: str) -> dict[str, str]:
    """{"schema.table": md5 of its sorted row texts} for every user table."""
    return dict(snapshot(url).tables)


def sequence_values(url: str) -> dict[str, tuple[int, bool]]:
    """{"schema.sequence": (last_value, is_called)} for every user sequence."""
    return dict(snapshot(url).sequences)


def schema_checksum(url: str) -> str:
    """md5 of the catalog description of the schema alone."""
    return snapshot(url).schema_checksum
