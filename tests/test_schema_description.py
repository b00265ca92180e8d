"""sql/select_schema_description.sql against real databases.

The description is how ``dbsync restore`` proves that staging got production's whole schema.
These tests hold it to that: a database and its copy made the way a restore makes it
(``pg_dump -Fc --no-owner --no-privileges``, ``pg_restore --no-owner --no-privileges`` in one
transaction, into a fresh database on another cluster) describe identically, and any single
change to the copy makes the descriptions differ, naming the changed object.

The rich sample (``tests/sample/rich_schema.sql``, make_db kind "rich") holds every kind of
object a restore must carry. Changes that the description does not see are marked
``xfail(strict=True)``: each is a gap in the query, and the test starts failing (XPASS) the
day the query covers it, so the marker can go.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.checksum import snapshot
from tests.fix_pg import Cluster, DbUrl, MakeDb

DESCRIPTION_SQL = Path(__file__).resolve().parents[1] / "sql" / "select_schema_description.sql"

# The first field of the description's lines that the rich sample must produce.
OBJECT_KINDS = (
    "schema", "extension", "relation", "column", "constraint", "index", "view", "sequence",
    "sequence-owner", "partition", "partition-key", "trigger", "function", "aggregate", "enum",
    "domain", "domain-constraint", "rule", "policy", "inherits",
)

SOURCE_CLUSTER = 0
COPY_CLUSTER = 2  # another cluster: other OIDs, other system identifier

_restored_names = itertools.count(1)


# -- helpers ------------------------------------------------------------------------


def describe(url: str) -> list[str]:
    """The lines of sql/select_schema_description.sql, run as a DBA would: search_path ''."""
    query = "SET search_path = '';\n" + DESCRIPTION_SQL.read_text(encoding="utf-8")
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(query)
        while cur.description is None:  # skip the SET's result
            assert cur.nextset(), "the description query returned no result set"
        return [row[0] for row in cur.fetchall()]


def diff(before: list[str], after: list[str]) -> list[str]:
    """The lines only one side has, marked '-' (before) or '+' (after)."""
    b, a = set(before), set(after)
    return [f"- {line}" for line in sorted(b - a)] + [f"+ {line}" for line in sorted(a - b)]


def _tool_env() -> dict[str, str]:
    """The environment for pg_dump/pg_restore, without the caller's PG* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = env["LANG"] = "C"
    return env


def run_tool(cluster: Cluster, tool: str, *args: str) -> None:
    """Run a client program from the cluster's bindir; fail the test with its stderr."""
    proc = subprocess.run(
        [str(cluster.bindir / tool), *args],
        env=_tool_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )
    assert proc.returncode == 0, f"{tool} failed ({proc.returncode}):\n{proc.stderr}"


def execute(url: str, statements: str) -> None:
    """Run one or more statements in autocommit (several in one implicit transaction)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statements)


@pytest.fixture
def empty_db(pg_clusters: list[Cluster]) -> Iterator[Callable[[int], DbUrl]]:
    """Factory: a fresh, empty database (from template1) on a cluster, dropped afterwards."""
    created: list[DbUrl] = []

    def factory(cluster_index: int) -> DbUrl:
        cluster = pg_clusters[cluster_index]
        name = f"restored{next(_restored_names)}_{os.getpid()}"
        cluster.create_database(name)
        url = DbUrl(cluster, name, "restored", "none")
        created.append(url)
        return url

    yield factory
    for url in created:
        url.cluster.drop_database(url.dbname)


@pytest.fixture
def restored_copy(
    empty_db: Callable[[int], DbUrl], tmp_path: Path
) -> Callable[[DbUrl], DbUrl]:
    """Factory: copy a database the way ``dbsync restore`` does, into a fresh database on
    the copy cluster, with that cluster's own pg_dump and pg_restore."""

    def factory(source: DbUrl) -> DbUrl:
        target = empty_db(COPY_CLUSTER)
        dump = tmp_path / f"{source.dbname}.pgdump"
        run_tool(source.cluster, "pg_dump", "-Fc", "--no-owner", "--no-privileges",
                 "-f", str(dump), "-d", source)
        run_tool(target.cluster, "pg_restore", "--no-owner", "--no-privileges",
                 "--single-transaction", "--exit-on-error", "-d", target, str(dump))
        return target

    return factory


# -- round trips --------------------------------------------------------------------


def test_rich_copy_describes_identically_and_covers_every_kind(
    make_db: MakeDb, restored_copy: Callable[[DbUrl], DbUrl]
) -> None:
    source = make_db(SOURCE_CLUSTER, "rich")
    copy = restored_copy(source)
    described, copied_description = describe(source), describe(copy)

    assert copied_description == described, diff(described, copied_description)
    assert described == sorted(described), "the lines come sorted"
    assert len(described) == len(set(described)), "no line twice"
    kinds = {line.split("|", 1)[0] for line in described}
    assert set(OBJECT_KINDS) <= kinds, f"missing: {sorted(set(OBJECT_KINDS) - kinds)}"

    # The details the sample was written for, as the description shows them.
    def has(prefix: str) -> bool:  # a line that is prefix, or prefix and more fields
        return any(line == prefix or line.startswith(prefix + "|") for line in described)

    def column(table: str, name: str) -> list[str]:
        # column|table|position|name|type|not null|default|identity+generated|collation|...
        found = [f for f in (line.split("|") for line in described)
                 if f[0] == "column" and f[1] == table and f[3] == name]
        assert len(found) == 1, (table, name, found)
        return found[0]

    expected = [
        "schema|audit",
        "schema|billing",
        "extension|citext",
        "extension|pg_trgm",
        "enum|public.priority|low,medium,high,urgent",  # sort order, not creation order
        "enum|billing.invoice_status|draft,issued,paid,void",
        "partition-key|billing.payments|RANGE (paid_on)",
        "partition-key|audit.event_log|LIST (source)",
        "partition|billing.payments_default|billing.payments|DEFAULT",
        "partition|audit.event_log_web|audit.event_log|FOR VALUES IN ('web', 'api')",
        "inherits|audit.login_records|audit.records",
        "domain|billing.money_amount|numeric(12,2)|t|0",
        "domain-constraint|billing.money_amount|money_amount_not_negative",
        "aggregate|public.text_join(text)",
        "sequence|billing.invoice_number_seq|bigint|100000|7|100000",
        "sequence-owner|public.customers_id_seq|public.customers.id",
        "sequence-owner|billing.invoices_id_seq|billing.invoices.id",
        "relation|billing.monthly_revenue|m|p",
        "relation|billing.postal_address|c|p",
        "policy|billing.invoices|invoices_own_customer",
        "policy|billing.invoices|invoices_staff_write",
    ]
    assert [prefix for prefix in expected if not has(prefix)] == []
    assert not has("sequence-owner|billing.invoice_number_seq")  # standalone
    assert column("public.customers", "username")[4] == "public.citext"
    assert column("public.customers", "notify_via")[4] == "public.channel[]"  # array of an enum
    assert column("public.customers", "address")[4] == "billing.postal_address"  # composite
    assert column("public.customers", "id")[7] == "a"  # identity ALWAYS
    assert column("billing.invoice_lines", "id")[7] == "d"  # identity BY DEFAULT
    assert column("billing.invoice_lines", "line_total")[7] == "s"  # generated, stored
    assert column("billing.invoices", "number")[6] == "nextval('billing.invoice_number_seq'::regclass)"
    text = "\n".join(described)
    for fragment in (
        "text_join_step", "text_join_final",  # the aggregate's functions
        "EXCLUDE USING gist",
        "USING gin (display_name public.gin_trgm_ops)",
        "WHERE (status <> 'paid'::billing.invoice_status)",  # a partial index
        "(public.normalize_email((email)::text))",  # an expression index
        "FOREIGN KEY (customer_id) REFERENCES public.customers(id) DEFERRABLE INITIALLY DEFERRED",
        "FOREIGN KEY (referred_by) REFERENCES public.customers(id) ON DELETE SET NULL",  # self
        "BEFORE INSERT OR UPDATE ON billing.invoices FOR EACH ROW",
        "REFERENCING NEW TABLE AS new_invoices FOR EACH STATEMENT",
        "BEFORE INSERT OR UPDATE ON billing.payments FOR EACH ROW",  # on a partitioned table
        "CREATE OR REPLACE PROCEDURE billing.issue_drafts(",
        "BEGIN ATOMIC",
        "rule|audit.records|CREATE RULE records_append_only AS",
        "ON UPDATE TO audit.records DO INSTEAD NOTHING",
    ):
        assert fragment in text, fragment

    # The independent checksum agrees (schema, rows, sequences); the large objects and the
    # materialized view's rows made it too.
    copied = snapshot(copy)
    assert copied.diff(snapshot(source)) == []
    assert copied.row_counts["billing.payments_default"] == 5
    lo_query = """
        SELECT d.title, d.sha256 = sha256(lo_get(d.content_oid)), length(lo_get(d.content_oid)),
               (SELECT count(*) FROM pg_largeobject_metadata)
        FROM audit.documents d ORDER BY d.id"""
    with psycopg.connect(source) as src, psycopg.connect(copy) as dst:
        los = src.execute(lo_query).fetchall()
        assert los == [("terms.txt", True, 45, 3), ("all-bytes.bin", True, 256, 3),
                       ("empty.dat", True, 0, 3)]
        assert dst.execute(lo_query).fetchall() == los
        populated = "SELECT relispopulated FROM pg_class WHERE oid = 'billing.monthly_revenue'::regclass"
        assert dst.execute(populated).fetchone() == (True,)


def test_prod_copy_describes_identically(
    make_db: MakeDb, restored_copy: Callable[[DbUrl], DbUrl]
) -> None:
    source = make_db(SOURCE_CLUSTER, "prod", "deferrable")
    copy = restored_copy(source)
    described, copied_description = describe(source), describe(copy)
    assert copied_description == described, diff(described, copied_description)
    fields = [line.split("|") for line in described]
    assert sum(f[0] == "relation" and f[1].startswith("public.") and f[2] == "r" for f in fields) == 22
    assert sum(f[0] == "constraint" and "FOREIGN KEY" in f[3] for f in fields) == 29


def test_description_ignores_what_a_restore_may_change(
    make_db: MakeDb, restored_copy: Callable[[DbUrl], DbUrl]
) -> None:
    """OIDs, data, sequence positions and dropped columns' physical slots are not schema."""
    source = make_db(SOURCE_CLUSTER, "rich")
    before = describe(source)
    execute(source, """
        ALTER TABLE audit.documents ADD COLUMN scratch text;
        ALTER TABLE audit.documents DROP COLUMN scratch;
        SELECT nextval('billing.invoice_number_seq');
        DELETE FROM audit.event_log WHERE source = 'cron';
        REINDEX TABLE billing.invoices""")
    execute(source, "VACUUM FULL billing.invoice_lines")  # not inside a transaction block
    for after in (describe(source), describe(restored_copy(source))):
        assert after == before, diff(before, after)


# -- single changes -----------------------------------------------------------------

# (id, statements applied to the copy, names the diff must mention)
DETECTED: list[tuple[str, str, tuple[str, ...]]] = [
    ("function-body", """
        CREATE OR REPLACE FUNCTION billing.customer_open_balance(p_customer bigint) RETURNS numeric
            LANGUAGE sql STABLE
            AS $$
                SELECT coalesce(sum(billing.invoice_total(i.id)), 0)
                FROM billing.invoices i
                WHERE i.customer_id = p_customer AND i.status IN ('issued', 'void')
            $$""", ("billing.customer_open_balance",)),
    ("function-body-begin-atomic", """
        CREATE OR REPLACE FUNCTION billing.invoice_total(p_invoice integer) RETURNS numeric
            LANGUAGE sql STABLE
        BEGIN ATOMIC
            SELECT coalesce(sum(l.line_total), 0) FROM billing.invoice_lines l
            WHERE l.invoice_id = p_invoice AND l.quantity > 0;
        END""", ("billing.invoice_total",)),
    ("trigger-timing", """
        DROP TRIGGER invoices_before_write ON billing.invoices;
        CREATE TRIGGER invoices_before_write
            AFTER INSERT OR UPDATE ON billing.invoices
            FOR EACH ROW EXECUTE FUNCTION billing.invoices_before_write()""",
     ("invoices_before_write",)),
    ("view-definition", """
        CREATE OR REPLACE VIEW billing.overdue_invoices AS
        SELECT t.invoice_id, t.number, t.customer_id, t.currency, t.due_on, t.total,
               DATE '2024-12-31' - t.due_on AS days_overdue
        FROM billing.invoice_totals t
        WHERE t.status = 'issued' AND t.due_on < DATE '2024-11-30'""",
     ("billing.overdue_invoices",)),
    ("enum-label-added", "ALTER TYPE billing.invoice_status ADD VALUE 'refunded' AFTER 'paid'",
     ("billing.invoice_status",)),
    ("domain-check", """
        ALTER DOMAIN billing.money_amount DROP CONSTRAINT money_amount_not_negative;
        ALTER DOMAIN billing.money_amount ADD CONSTRAINT money_amount_not_negative
            CHECK (VALUE >= 0 AND VALUE < 1000000)""",
     ("billing.money_amount", "money_amount_not_negative")),
    ("partition-bound", """
        ALTER TABLE billing.payments DETACH PARTITION billing.payments_2024_h2;
        ALTER TABLE billing.payments ATTACH PARTITION billing.payments_2024_h2
            FOR VALUES FROM ('2024-07-01') TO ('2025-07-01')""",
     ("billing.payments_2024_h2",)),
    ("index-predicate", """
        DROP INDEX billing.invoices_unpaid_due_idx;
        CREATE INDEX invoices_unpaid_due_idx ON billing.invoices (due_on) WHERE status = 'issued'""",
     ("invoices_unpaid_due_idx",)),
    ("column-default", "ALTER TABLE billing.invoices ALTER COLUMN currency SET DEFAULT 'USD'",
     ("billing.invoices", "currency")),
    ("sequence-increment", "ALTER SEQUENCE billing.invoice_number_seq INCREMENT BY 11",
     ("billing.invoice_number_seq",)),
    ("column-type", "ALTER TABLE public.customers ALTER COLUMN bio TYPE varchar(2000)",
     ("public.customers", "bio")),
    ("policy-dropped", "DROP POLICY invoices_staff_write ON billing.invoices",
     ("invoices_staff_write",)),
    ("column-added", """
        ALTER TABLE audit.documents ADD COLUMN mime_type text NOT NULL DEFAULT 'application/octet-stream'""",
     ("audit.documents", "mime_type")),
    # Beyond the twelve: more of what a restore could get subtly wrong.
    ("fk-not-deferrable",
     "ALTER TABLE billing.invoices ALTER CONSTRAINT invoices_customer_id_fkey NOT DEFERRABLE",
     ("invoices_customer_id_fkey",)),
    ("identity-always-to-by-default",
     "ALTER TABLE public.customers ALTER COLUMN id SET GENERATED BY DEFAULT",
     ("public.customers",)),
    ("generated-expression-dropped",
     "ALTER TABLE billing.invoice_lines ALTER COLUMN line_total DROP EXPRESSION",
     ("billing.invoice_lines", "line_total")),
    ("rule-event", """
        DROP RULE records_append_only ON audit.records;
        CREATE RULE records_append_only AS ON DELETE TO audit.records DO INSTEAD NOTHING""",
     ("records_append_only",)),
    ("inheritance-removed", "ALTER TABLE audit.login_records NO INHERIT audit.records",
     ("audit.login_records",)),
    ("sequence-unowned", "ALTER SEQUENCE audit.records_id_seq OWNED BY NONE",
     ("audit.records_id_seq",)),
    ("exclusion-constraint-dropped",
     "ALTER TABLE public.room_bookings DROP CONSTRAINT room_bookings_no_overlap",
     ("room_bookings_no_overlap",)),
    ("check-not-valid", """
        ALTER TABLE billing.invoices DROP CONSTRAINT invoices_due_after_issue;
        ALTER TABLE billing.invoices ADD CONSTRAINT invoices_due_after_issue
            CHECK (due_on >= issued_on) NOT VALID""",
     ("invoices_due_after_issue",)),
    # State pg_dump carries beyond the definitions themselves.
    ("comment-on-table", "COMMENT ON TABLE billing.invoices IS 'another comment'",
     ("billing.invoices",)),
    ("comment-on-column", "COMMENT ON COLUMN billing.invoices.number IS NULL",
     ("billing.invoices", "number")),
    ("row-level-security-disabled", "ALTER TABLE billing.invoices DISABLE ROW LEVEL SECURITY",
     ("billing.invoices",)),
    ("trigger-disabled", "ALTER TABLE billing.invoices DISABLE TRIGGER invoices_before_write",
     ("invoices_before_write",)),
    ("policy-restrictive", """
        DROP POLICY invoices_own_customer ON billing.invoices;
        CREATE POLICY invoices_own_customer ON billing.invoices AS RESTRICTIVE
            FOR SELECT
            USING (customer_id = nullif(current_setting('app.customer_id', true), '')::bigint)""",
     ("invoices_own_customer",)),
    ("aggregate-initcond", """
        DROP VIEW public.customer_overview;
        DROP AGGREGATE public.text_join(text);
        CREATE AGGREGATE public.text_join(text) (
            SFUNC = public.text_join_step, STYPE = text,
            FINALFUNC = public.text_join_final, INITCOND = 'none:');
        CREATE VIEW public.customer_overview AS
        SELECT c.id, c.username, c.priority,
               public.text_join(i.number::text ORDER BY i.number) AS invoice_numbers,
               count(i.id) AS invoices
        FROM public.customers c
        LEFT JOIN billing.invoices i ON i.customer_id = c.id
        GROUP BY c.id""",
     ("public.text_join",)),
    ("materialized-view-not-populated",
     "REFRESH MATERIALIZED VIEW billing.monthly_revenue WITH NO DATA",
     ("billing.monthly_revenue",)),
    ("table-storage-parameter", "ALTER TABLE billing.invoices SET (fillfactor = 70)",
     ("billing.invoices",)),
]

# Changes the description does not see (gaps in the query), each with the catalog field it
# would need; pg_dump carries all of them. strict=True: the case fails as XPASS once the
# query covers it, and moves up to DETECTED.
UNDETECTED: list[tuple[str, str, tuple[str, ...], str]] = []

DETECTED += [
    ("comment-on-schema-public", "COMMENT ON SCHEMA public IS 'the application'", ("schema public",)),
    ("index-clustered", "ALTER TABLE billing.invoices CLUSTER ON invoices_customer_idx", ("invoices_customer_idx",)),
    ("rule-disabled", "ALTER TABLE audit.records DISABLE RULE records_append_only", ("records_append_only",)),
    ("extended-statistics", "CREATE STATISTICS billing.invoice_dep (dependencies) ON customer_id, status "
     "FROM billing.invoices", ("invoice_dep",)),
    ("collation", "CREATE COLLATION billing.nocase (provider = icu, locale = 'und-u-ks-level2', "
     "deterministic = false)", ("nocase",)),
]

CHANGES = [pytest.param(sql, names, id=case_id) for case_id, sql, names in DETECTED] + [
    pytest.param(sql, names, id=case_id, marks=pytest.mark.xfail(strict=True, reason=reason))
    for case_id, sql, names, reason in UNDETECTED
]


@pytest.mark.parametrize(("change", "names"), CHANGES)
def test_single_change_to_the_copy_is_described(
    make_db: MakeDb, restored_copy: Callable[[DbUrl], DbUrl], change: str, names: tuple[str, ...]
) -> None:
    copy = restored_copy(make_db(SOURCE_CLUSTER, "rich"))
    before = describe(copy)
    execute(copy, change)
    changed = diff(before, describe(copy))
    assert changed, "the description did not change"
    text = "\n".join(changed)
    assert [name for name in names if name not in text] == [], text
