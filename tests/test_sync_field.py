"""``dbsync sync`` on schemas found in the field: Django's multi-table inheritance and generic
relations, and the "kitchen sink" of PostgreSQL features real production databases carry
(row-level security, multi-column foreign keys, a sequence shared by two tables, NOT VALID
CHECK constraints, descending sequences), plus configurations that do not fit the database.

Each test is a regression test for a bug another agent found: its docstring says, in one
sentence, what went wrong before the fix. Every test builds its own small schema in a fresh
database of the "empty" kind (the sample schema is dropped first): a minimal Django tenant model
(``apps_tenants_tenant``, ``auth_user`` excluded by the default config) and a few tables scoped
by ``tenant_id``. The oracle is SQL against the databases, not dbsync's report alone.

Production lives on cluster 0 and UAT on cluster 1.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.checksum import snapshot
from tests.fix_pg import DbUrl, MakeDb
from tests.test_sync import execute, ok, rows, sync

# The minimal Django tenant model every test starts from: the sample schema is dropped, so each
# test's tables are the only ones. UAT's superuser is the fallback user of the user remap.
BASE = """
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
CREATE TABLE apps_tenants_tenant (id serial PRIMARY KEY, schema_name varchar(63) NOT NULL UNIQUE);
CREATE TABLE auth_user (id serial PRIMARY KEY, username varchar(150) NOT NULL UNIQUE,
                        is_superuser boolean NOT NULL DEFAULT false);
INSERT INTO auth_user (id, username, is_superuser) VALUES (1, 'admin', true);
"""

# Django's content types, for generic relations: model "m" of app "a" is the table "a_m".
CONTENT_TYPES = """
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL,
                                  model varchar(100) NOT NULL, UNIQUE (app_label, model));
"""

FK = "DEFERRABLE INITIALLY DEFERRED"  # as Django declares every foreign key


def field_databases(make_db: MakeDb, ddl: str) -> tuple[DbUrl, DbUrl]:
    """A production (cluster 0) and a UAT (cluster 1) database with BASE plus ``ddl``."""
    prod, uat = make_db(0, "empty"), make_db(1, "empty")
    for url in (prod, uat):
        execute(url, BASE + ddl)
    return prod, uat


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"field-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(text)
    return str(path)


def next_value(url: str, sequence: str) -> int:
    """The sequence's next value, taken (the test's database is thrown away afterwards)."""
    value: int = rows(url, "SELECT nextval(%s::regclass)", (sequence,))[0][0]
    return value


def rekeyed(report: dict[str, object], table: str) -> dict[int, int]:
    """The report's old -> new ids of one re-keyed table."""
    entries = report["rekeys"]
    assert isinstance(entries, list)
    found = [e for e in entries if e["table"] == table]
    assert len(found) == 1, entries
    return {old: new for old, new in found[0]["ids"]}


# -- 1. row-level security on production ---------------------------------------------------------

GrantReader = Callable[[DbUrl], str]


@pytest.fixture
def select_only_reader(make_db: MakeDb) -> Iterator[GrantReader]:
    """grant(prod) -> a source URL for a fresh LOGIN role with USAGE and SELECT only (not the
    owner, no BYPASSRLS). Role names are cluster-wide: each test run gets its own, dropped at
    the end (this fixture depends on make_db, so it is torn down before the databases are)."""
    role = f"dbsync_reader_{uuid.uuid4().hex[:10]}"
    password = "reader-pw-" + uuid.uuid4().hex[:6]
    granted: list[DbUrl] = []

    def grant(url: DbUrl) -> str:
        if not granted:
            url.cluster.execute(
                "postgres",
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                ),
            )
        ident = sql.Identifier(role)
        for statement in (
            "GRANT USAGE ON SCHEMA public TO {}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}",
            "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {}",
        ):
            url.cluster.execute(url.dbname, sql.SQL(statement).format(ident))
        granted.append(url)
        return url.cluster.url(url.dbname, user=role, password=password)

    yield grant

    for url in granted:
        url.cluster.execute(url.dbname, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    if granted:
        granted[0].cluster.execute("postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_row_level_security_hiding_production_rows_is_refused(
    make_db: MakeDb, select_only_reader: GrantReader, tmp_path: Path
) -> None:
    """Production is read by a SELECT-only role and a policy hides every row of apps_docs_doc
    from it: before the fix dbsync copied 0 rows, emptied UAT's table and committed (every
    proof passed, its digests read through the same filter); it must refuse, name the table
    and row-level security, and leave UAT exactly as it was."""
    ddl = f"""
    CREATE TABLE apps_docs_doc (id serial PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
    ALTER TABLE apps_docs_doc ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON apps_docs_doc
        USING (tenant_id::text = current_setting('app.tenant', true));
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_docs_doc VALUES (1, 1, 'prod doc 1'), (2, 1, 'prod doc 2')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_docs_doc VALUES (1, 1, 'older prod doc 1')",
    )
    reader = select_only_reader(prod)
    # the oracle: production has two rows, the reader sees none of them
    assert rows(prod, "SELECT count(*) FROM apps_docs_doc") == [(2,)]
    assert rows(reader, "SELECT count(*) FROM apps_docs_doc") == [(0,)]
    before = snapshot(uat)

    proc, report = sync(reader, uat, tmp_path, "--no-backup")

    assert proc.returncode == 13, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"  # refused at plan
    assert "apps_docs_doc" in proc.stderr and "row-level security" in proc.stderr.lower(), proc.stderr
    assert "Traceback" not in proc.stderr
    assert report["status"] != "committed"
    assert snapshot(uat).checksum == before.checksum
    assert rows(uat, "SELECT id, title FROM apps_docs_doc") == [(1, "older prod doc 1")]


# -- 2. re-keying through Django's multi-table inheritance ---------------------------------------

MTI = f"""
{CONTENT_TYPES}
-- class Doc(Model); class Invoice(Doc); class CreditNote(Invoice): each child's primary key is a
-- one-to-one link to its parent row (Django's <parent>_ptr_id).
CREATE TABLE apps_billing_doc (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
CREATE TABLE apps_billing_invoice (doc_ptr_id bigint PRIMARY KEY REFERENCES apps_billing_doc {FK},
    number text NOT NULL);
CREATE TABLE apps_billing_creditnote (
    invoice_ptr_id bigint PRIMARY KEY REFERENCES apps_billing_invoice {FK}, reason text NOT NULL);
-- a GenericForeignKey (content_type, object_id)
CREATE TABLE apps_notes_note (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
    content_type_id integer NOT NULL REFERENCES django_content_type {FK},
    object_id bigint NOT NULL, body text NOT NULL);
"""

ALPHA_CHAIN = """
SELECT d.id, i.doc_ptr_id, c.invoice_ptr_id
FROM apps_billing_doc d
JOIN apps_billing_invoice i ON i.doc_ptr_id = d.id
JOIN apps_billing_creditnote c ON c.invoice_ptr_id = i.doc_ptr_id
WHERE d.title = 'alpha doc 2' AND i.number = 'ALPHA-INV-2' AND c.reason = 'alpha refund'
"""
NOTE_TARGET = """
SELECT n.object_id, i.number, t.schema_name
FROM apps_notes_note n
JOIN django_content_type ct ON ct.id = n.content_type_id
LEFT JOIN apps_billing_invoice i ON (ct.app_label, ct.model) = ('apps_billing', 'invoice')
                                 AND i.doc_ptr_id = n.object_id
LEFT JOIN apps_billing_doc d ON d.id = i.doc_ptr_id
LEFT JOIN apps_tenants_tenant t ON t.id = d.tenant_id
WHERE n.body = 'alpha on invoice 2'
"""


def test_multi_table_inheritance_chain_is_rekeyed_as_one(make_db: MakeDb, tmp_path: Path) -> None:
    """UAT's test tenant owns doc, invoice and credit note 2 and production's real tenant owns
    doc and invoice 2: before the fix the doc and its invoice were re-keyed but the credit note
    (and the note pointing at the invoice through its content type) kept id 2, so they were
    committed as production's invoice 2's own; the whole chain and the note must move to the
    doc's new id together."""
    prod, uat = field_databases(make_db, MTI)
    execute(
        prod,
        """
        INSERT INTO django_content_type VALUES (1, 'apps_billing', 'doc'), (2, 'apps_billing', 'invoice'),
            (3, 'apps_billing', 'creditnote'), (4, 'apps_notes', 'note');
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme');
        INSERT INTO apps_billing_doc VALUES (1, 1, 'acme doc 1'), (2, 1, 'acme doc 2');
        INSERT INTO apps_billing_invoice VALUES (1, 'INV-1'), (2, 'INV-2');
        INSERT INTO apps_billing_creditnote VALUES (1, 'acme refund');
        INSERT INTO apps_notes_note VALUES (1, 1, 2, 2, 'acme on invoice 2');
        """,
    )
    # UAT's content types were created in another order: other ids for the same models
    execute(
        uat,
        """
        INSERT INTO django_content_type VALUES (11, 'apps_notes', 'note'), (12, 'apps_billing', 'creditnote'),
            (13, 'apps_billing', 'invoice'), (14, 'apps_billing', 'doc');
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (5, 'test_alpha');
        INSERT INTO apps_billing_doc VALUES (1, 1, 'uat acme doc'), (2, 5, 'alpha doc 2');
        INSERT INTO apps_billing_invoice VALUES (1, 'UAT-INV-1'), (2, 'ALPHA-INV-2');
        INSERT INTO apps_billing_creditnote VALUES (2, 'alpha refund');
        INSERT INTO apps_notes_note VALUES (7, 5, 13, 2, 'alpha on invoice 2');
        """,
    )
    assert rows(uat, ALPHA_CHAIN) == [(2, 2, 2)]
    assert rows(uat, NOTE_TARGET) == [(2, "ALPHA-INV-2", "test_alpha")]

    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)

    new_ids = rekeyed(report, "apps_billing_doc")
    assert list(new_ids) == [2]
    new = new_ids[2]
    assert new > 2  # above production's ids
    # production's chain is production's: invoice 2 has no credit note of UAT's
    assert rows(
        uat,
        "SELECT d.id, d.title, i.number, c.reason FROM apps_billing_doc d "
        "JOIN apps_billing_invoice i ON i.doc_ptr_id = d.id "
        "LEFT JOIN apps_billing_creditnote c ON c.invoice_ptr_id = i.doc_ptr_id WHERE d.id <= 2 ORDER BY d.id",
    ) == [(1, "acme doc 1", "INV-1", "acme refund"), (2, "acme doc 2", "INV-2", None)]
    assert rows(uat, "SELECT invoice_ptr_id, reason FROM apps_billing_creditnote ORDER BY 1") == [
        (1, "acme refund"),
        (new, "alpha refund"),
    ]
    # doc, invoice and credit note of the test tenant carry the same new id
    assert rows(uat, ALPHA_CHAIN) == [(new, new, new)]
    # the generic relation to the test tenant's invoice followed the re-key
    assert rows(uat, NOTE_TARGET) == [(new, "ALPHA-INV-2", "test_alpha")]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


# -- 3. a multi-column foreign key into a re-keyed table -----------------------------------------


def test_multi_column_foreign_key_follows_a_rekeyed_row(make_db: MakeDb, tmp_path: Path) -> None:
    """A shipment references its order by (tenant_id, order_id), the order table's
    UNIQUE (tenant_id, id): before the fix the UAT test tenant's order was re-keyed but its
    shipment kept the old order id, and the foreign key proof failed (exit 4); the shipment
    must follow the order's new id."""
    ddl = f"""
    CREATE TABLE apps_shop_order (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, ref text NOT NULL,
        UNIQUE (tenant_id, id));
    CREATE TABLE apps_shop_shipment (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id integer NOT NULL, order_id bigint NOT NULL, tracking text NOT NULL,
        FOREIGN KEY (tenant_id, order_id) REFERENCES apps_shop_order (tenant_id, id) {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        """
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'globex');
        INSERT INTO apps_shop_order VALUES (1, 1, 'acme-1'), (2, 2, 'globex-2');
        INSERT INTO apps_shop_shipment VALUES (1, 1, 1, 'T-acme'), (2, 2, 2, 'T-globex');
        """,
    )
    execute(
        uat,
        """
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (5, 'test_uat');
        INSERT INTO apps_shop_order VALUES (1, 1, 'uat acme'), (2, 5, 'test-2');
        INSERT INTO apps_shop_shipment VALUES (1, 1, 1, 'uat T'), (7, 5, 2, 'T-test');
        """,
    )

    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)

    new_ids = rekeyed(report, "apps_shop_order")
    assert list(new_ids) == [2] and new_ids[2] > 2
    new = new_ids[2]
    assert rows(uat, "SELECT id, tenant_id, ref FROM apps_shop_order ORDER BY id") == [
        (1, 1, "acme-1"),
        (2, 2, "globex-2"),
        (new, 5, "test-2"),
    ]
    assert rows(
        uat,
        "SELECT s.id, s.tenant_id, s.order_id, o.ref FROM apps_shop_shipment s "
        "JOIN apps_shop_order o ON (o.tenant_id, o.id) = (s.tenant_id, s.order_id) ORDER BY s.id",
    ) == [(1, 1, 1, "acme-1"), (2, 2, 2, "globex-2"), (7, 5, new, "test-2")]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


# -- 4. one sequence shared by two tables --------------------------------------------------------


def test_sequence_shared_by_two_tables_moves_past_both(make_db: MakeDb, tmp_path: Path) -> None:
    """Invoices and credit notes draw their ids from one sequence: before the fix it was
    restarted once per table, the credit notes' (smaller) position won, and the sequence proof
    failed (exit 4, "next value ... > largest id"); it must end past the largest id of both
    tables, with the headroom past production's."""
    ddl = f"""
    CREATE SEQUENCE apps_billing_docno_seq;
    CREATE TABLE apps_billing_invoice (id bigint PRIMARY KEY DEFAULT nextval('apps_billing_docno_seq'),
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK});
    CREATE TABLE apps_billing_creditnote (id bigint PRIMARY KEY DEFAULT nextval('apps_billing_docno_seq'),
        invoice_id bigint NOT NULL REFERENCES apps_billing_invoice {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    fill = """
        INSERT INTO apps_billing_invoice (tenant_id) SELECT 1 FROM generate_series(1, 3);  -- 1..3
        INSERT INTO apps_billing_creditnote (invoice_id) VALUES (1);                        -- 4
    """
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        + fill
        + "INSERT INTO apps_billing_invoice (tenant_id) SELECT 1 FROM generate_series(1, 3);",  # 5..7
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'test_uat');"
        + fill
        + "INSERT INTO apps_billing_invoice (tenant_id) VALUES (2);",  # 5: collides, re-keyed
    )
    headroom = 1000
    config = write_config(tmp_path, f"sequence_headroom = {headroom}\n")

    proc, report = sync(prod, uat, tmp_path, "--no-backup", "--config", config)
    ok(proc)

    assert rekeyed(report, "apps_billing_invoice") == {5: 7 + headroom + 1}
    all_ids = "SELECT id FROM apps_billing_invoice UNION ALL SELECT id FROM apps_billing_creditnote"
    assert sorted(r[0] for r in rows(uat, all_ids)) == [1, 2, 3, 4, 5, 6, 7, 7 + headroom + 1]
    largest = 7 + headroom + 1
    production_largest = 7
    assert next_value(uat, "apps_billing_docno_seq") == max(largest + 1, production_largest + headroom + 1)


# -- 5. a NOT VALID CHECK constraint with old violating rows -------------------------------------


@pytest.mark.parametrize("load", ["direct", "staged"])
def test_not_valid_check_with_violating_production_rows(make_db: MakeDb, tmp_path: Path, load: str) -> None:
    """CHECK (score >= 0) was added NOT VALID over legacy rows with negative scores: before the
    fix the load re-checked every copied row against it and failed (exit 4, "violates check
    constraint"); production's rows must be copied as they are and the constraint stay, still
    NOT VALID."""
    ddl = f"""
    CREATE TABLE apps_reviews_review (id serial PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, score integer);
    """
    check = (
        "ALTER TABLE apps_reviews_review ADD CONSTRAINT apps_reviews_review_score_check "
        "CHECK (score >= 0) NOT VALID"
    )
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'globex');"
        "INSERT INTO apps_reviews_review VALUES (1, 1, -1), (2, 1, 5), (3, 2, -7)",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_reviews_review VALUES (1, 1, -2), (2, 1, 3)",
    )
    for url in (prod, uat):  # added later, over the legacy rows
        execute(url, check)
    constraint = (
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE conrelid = 'apps_reviews_review'::regclass AND contype = 'c'"
    )
    expected_constraint = [("apps_reviews_review_score_check", "CHECK ((score >= 0)) NOT VALID", False)]
    assert rows(uat, constraint) == expected_constraint
    config = write_config(tmp_path, f'load = "{load}"\n')

    proc, report = sync(prod, uat, tmp_path, "--no-backup", "--config", config)
    ok(proc)

    review_rows = "SELECT id, tenant_id, score FROM apps_reviews_review ORDER BY id"
    assert rows(uat, review_rows) == rows(prod, review_rows) == [(1, 1, -1), (2, 1, 5), (3, 2, -7)]
    assert rows(uat, constraint) == expected_constraint
    assert report["load"]["apps_reviews_review"] == load


# -- 6. a descending sequence --------------------------------------------------------------------


def test_descending_sequence_is_positioned_below_the_smallest_id(make_db: MakeDb, tmp_path: Path) -> None:
    """Refund ids come from a sequence with INCREMENT BY -1 (ids -1, -2, ...): before the fix
    dbsync tried to move it up past the largest id and failed even without test tenants
    (exit 4, "refund_seq cannot move past -1 ... is full"); it must end below the smallest id,
    its next value unused."""
    ddl = f"""
    CREATE SEQUENCE apps_pay_refund_id_seq INCREMENT BY -1 START -1 MAXVALUE -1 MINVALUE -1000000;
    CREATE TABLE apps_pay_refund (id integer PRIMARY KEY DEFAULT nextval('apps_pay_refund_id_seq'),
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, amount integer NOT NULL);
    ALTER SEQUENCE apps_pay_refund_id_seq OWNED BY apps_pay_refund.id;
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_pay_refund (tenant_id, amount) SELECT 1, 10 * i FROM generate_series(1, 5) i",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_pay_refund (tenant_id, amount) SELECT 1, i FROM generate_series(1, 3) i",
    )
    refunds = "SELECT id, amount FROM apps_pay_refund ORDER BY id DESC"
    assert rows(prod, refunds) == [(-1, 10), (-2, 20), (-3, 30), (-4, 40), (-5, 50)]

    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)

    assert rows(uat, refunds) == rows(prod, refunds)
    following = next_value(uat, "apps_pay_refund_id_seq")
    # right below production's smallest id, or below it by the headroom (100000 by default)
    assert following in (-5 - 1, -5 - 100_000 - 1), following
    assert rows(uat, "SELECT count(*) FROM apps_pay_refund WHERE id <= %s", (following,)) == [(0,)]


# -- 7. remap counts and refusals over production's test tenants' rows ---------------------------

# {null}: "NULL" (ForeignKey(Group, null=True)) or "NOT NULL" (Django's default)
ROLES = f"""
{CONTENT_TYPES}
CREATE TABLE auth_group (id serial PRIMARY KEY, name varchar(150) NOT NULL UNIQUE);
CREATE TABLE apps_wh_role (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
    group_id integer {{null}} REFERENCES auth_group {FK}, name text NOT NULL);
-- two models with a GenericForeignKey each, both with content types: a generic relation from
-- each to the other makes a cycle among the tenant-scoped tables (the source cannot filter)
CREATE TABLE apps_wh_comment (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
    content_type_id integer NOT NULL REFERENCES django_content_type {FK},
    object_pk text NOT NULL, body text NOT NULL);
CREATE TABLE apps_wh_flag (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
    content_type_id integer NOT NULL REFERENCES django_content_type {FK},
    object_id bigint NOT NULL, label text NOT NULL);
"""


ROLE_CONTENT_TYPES = "('apps_wh', 'role'), ('apps_wh', 'comment'), ('apps_wh', 'flag')"


@pytest.mark.parametrize("null", ["NULL", "NOT NULL"])
def test_production_test_tenants_rows_neither_refuse_nor_count_in_remaps(
    make_db: MakeDb, tmp_path: Path, null: str
) -> None:
    """Production's test tenant's role references the group "viewers", which UAT lacks, and
    two generic relations keep the source from filtering: before the fix the remap counted
    production's rows before the test tenants were removed, so the run was refused (exit 3,
    "... has no match in the target") over a row that is never copied, and with a NOT NULL
    group_id the COPY itself failed on that row's NULL (exit 4, "violates not-null
    constraint"); the run must commit and the remap's counts add up to the rows copied."""
    prod, uat = field_databases(make_db, ROLES.format(null=null))
    execute(
        prod,
        f"""
        INSERT INTO django_content_type (app_label, model) VALUES {ROLE_CONTENT_TYPES};
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'test_demo');
        INSERT INTO auth_group VALUES (1, 'editors'), (2, 'viewers');
        INSERT INTO apps_wh_role VALUES (1, 1, 1, 'acme editor'), (2, 1, 1, 'acme lead'),
                                        (3, 2, 2, 'demo viewer');
        INSERT INTO apps_wh_comment (tenant_id, content_type_id, object_pk, body)
            SELECT 1, id, '1', 'on acme editor' FROM django_content_type WHERE model = 'role';
        INSERT INTO apps_wh_flag (tenant_id, content_type_id, object_id, label)
            SELECT 1, id, 1, 'flag on the comment' FROM django_content_type WHERE model = 'comment';
        INSERT INTO apps_wh_comment (tenant_id, content_type_id, object_pk, body)
            SELECT 1, id, '1', 'on the flag' FROM django_content_type WHERE model = 'flag';
        """,
    )
    execute(
        uat,
        f"""
        INSERT INTO django_content_type (app_label, model) VALUES {ROLE_CONTENT_TYPES};
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme');
        INSERT INTO auth_group VALUES (4, 'editors');
        INSERT INTO apps_wh_role VALUES (1, 1, 4, 'older acme editor');
        """,
    )
    # the oracle: the only reference to "viewers" is the test tenant's
    assert rows(
        prod,
        "SELECT t.schema_name, r.name FROM apps_wh_role r JOIN auth_group g ON g.id = r.group_id "
        "JOIN apps_tenants_tenant t ON t.id = r.tenant_id WHERE g.name = 'viewers'",
    ) == [("test_demo", "demo viewer")]

    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    # production's rows link the two generic tables both ways: the test tenants go after the copy
    assert "a cycle among tenant-scoped tables" in proc.stderr

    assert rows(uat, "SELECT id, tenant_id, group_id, name FROM apps_wh_role ORDER BY id") == [
        (1, 1, 4, "acme editor"),
        (2, 1, 4, "acme lead"),
    ]
    entry = next(t for t in report["tables"] if t["table"] == "apps_wh_role")
    assert (entry["rows_copied"], entry["rows_excluded_test"]) == (2, 1)
    remap = next(r for r in report["remaps"] if r["column"] == "apps_wh_role.group_id")
    assert (remap["by_natural_key"], remap["to_fallback"], remap["to_null"]) == (2, 0, 0)


# -- 8. a users.superuser_column that is not boolean ---------------------------------------------


def test_superuser_column_that_is_not_boolean_is_bad_input(make_db: MakeDb, tmp_path: Path) -> None:
    """users.superuser_column names a varchar column (a job title, as in Chinook-like schemas):
    before the fix the run got as far as preserve and failed there with PostgreSQL's raw
    "argument of AND must be type boolean" (exit 4); it is bad input, reported as such (exit 13,
    the schema does not fit the config) by the config key and the column's type before the
    target is locked."""
    ddl = f"""
    ALTER TABLE auth_user ADD COLUMN title varchar(30);
    CREATE TABLE apps_crm_customer (id serial PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        rep_id integer REFERENCES auth_user {FK}, name text NOT NULL);
    """
    prod, uat = field_databases(make_db, ddl)
    data = (
        "UPDATE auth_user SET title = 'Manager';"
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'test_b');"
        "INSERT INTO apps_crm_customer VALUES (1, 1, 1, 'one'), (2, 2, 1, 'two')"
    )
    execute(prod, data)
    execute(uat, data)
    config = write_config(tmp_path, '[users]\nsuperuser_column = "title"\n')
    before = snapshot(uat)

    proc, report = sync(prod, uat, tmp_path, "--no-backup", "--config", config)

    assert proc.returncode == 13, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "users.superuser_column" in proc.stderr, proc.stderr
    assert re.search(r"character varying|varchar", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert report["error"]["step"] in ("connect", "inspect", "plan"), report["error"]
    assert snapshot(uat).checksum == before.checksum


# -- 9. a text key that cannot be re-keyed -------------------------------------------------------


def test_text_key_collision_is_refused_naming_the_keys(make_db: MakeDb, tmp_path: Path) -> None:
    """A UAT test tenant's customer shares Northwind-style text code 'C0005' with production:
    the refusal gave only a count, so the user had to search for the rows; it names the first
    shared keys now, and nothing changes."""
    ddl = f"""
    CREATE TABLE apps_crm_customer (code text PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, name text NOT NULL);
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_crm_customer VALUES ('C0001', 1, 'Ann'), ('C0005', 1, 'Bob'), ('C0007', 1, 'Cy')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_uat');"
        "INSERT INTO apps_crm_customer VALUES ('C0005', 5, 'test Bob'), ('C0007', 5, 'test Cy'),"
        " ('T0001', 5, 'test only')",
    )
    before = snapshot(uat)

    proc, _ = sync(prod, uat, tmp_path, "--no-backup")

    assert proc.returncode == 3, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "2 preserved row(s) of apps_crm_customer have primary keys production also uses " in proc.stderr
    assert "(first: (C0005), (C0007))" in proc.stderr, proc.stderr
    assert snapshot(uat).checksum == before.checksum


def test_generic_relations_that_production_does_not_use_make_no_cycle(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """Two models with generic relations could point at each other, a cycle in the schema
    that made every sync of such a Django app copy production's test tenants and delete them
    on the target afterwards; only the content types production's rows name are edges now,
    so the COPY leaves the test tenants out, and the result is the same."""
    prod, uat = field_databases(make_db, ROLES.format(null="NULL"))
    execute(
        prod,
        f"""
        INSERT INTO django_content_type (app_label, model) VALUES {ROLE_CONTENT_TYPES};
        INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'test_demo');
        INSERT INTO apps_wh_role VALUES (1, 1, NULL, 'acme editor'), (3, 2, NULL, 'demo viewer');
        INSERT INTO apps_wh_comment (tenant_id, content_type_id, object_pk, body)
            SELECT t, id, r::text, 'on role ' || r FROM django_content_type, (VALUES (1, 1), (2, 3)) v(t, r)
            WHERE model = 'role';
        INSERT INTO apps_wh_flag (tenant_id, content_type_id, object_id, label)
            SELECT 2, id, 2, 'flag on the demo comment' FROM django_content_type WHERE model = 'comment';
        """,
    )
    execute(uat, f"INSERT INTO django_content_type (app_label, model) VALUES {ROLE_CONTENT_TYPES}")

    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)

    assert "a cycle among tenant-scoped tables" not in proc.stderr, proc.stderr
    assert "stage apps_wh_flag: 0 rows (1 of production's test tenants left out)" in proc.stderr, proc.stderr
    assert rows(uat, "SELECT id, name FROM apps_wh_role") == [(1, "acme editor")]
    assert rows(uat, "SELECT body FROM apps_wh_comment") == [("on role 1",)]
    assert rows(uat, "SELECT count(*) FROM apps_wh_flag") == [(0,)]


def test_superuser_column_of_a_boolean_domain_is_accepted(make_db: MakeDb, tmp_path: Path) -> None:
    """AdventureWorks declares its flags through a domain over boolean ("Flag"): the check
    that the superuser column is boolean must see through the domain (it refused them first)."""
    ddl = f"""
    CREATE DOMAIN "Flag" AS boolean NOT NULL;
    ALTER TABLE auth_user ALTER COLUMN is_superuser DROP DEFAULT,
        ALTER COLUMN is_superuser TYPE "Flag";
    CREATE TABLE apps_docs_doc (id bigint PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        owner_id integer NOT NULL REFERENCES auth_user {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO auth_user VALUES (2, 'someone', false);"
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_docs_doc VALUES (1, 1, 2)",
    )
    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(uat, "SELECT id, owner_id FROM apps_docs_doc") == [(1, 1)]  # to the fallback: admin


# -- found reviewing the fixes above ---------------------------------------------------------------

MTI_CHILD_FIRST = f"""
CREATE TABLE apps_core_doc (id bigint PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
CREATE TABLE apps_billing_invoice (doc_ptr_id bigint PRIMARY KEY REFERENCES apps_core_doc {FK},
    number text NOT NULL);
-- a cycle of deferrable keys: the load order then follows NOT DEFERRABLE keys only, which
-- puts apps_billing_invoice (by name) before its parent
CREATE TABLE apps_x_a (id int PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, b_id int);
CREATE TABLE apps_x_b (id int PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, a_id int REFERENCES apps_x_a {FK});
ALTER TABLE apps_x_a ADD FOREIGN KEY (b_id) REFERENCES apps_x_b {FK};
"""


def test_inheritance_child_ordered_before_its_parent_still_follows_it(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """With the child first in load order, it was re-keyed on its own (to 100003, production's
    memo doc) and its parent later to another id: the test tenant's invoice sat on production's
    doc, all proofs green. Parents are re-keyed first now, whatever the load order."""
    prod, uat = field_databases(make_db, MTI_CHILD_FIRST)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_core_doc VALUES (1, 1, 'acme doc 1'), (2, 1, 'acme doc 2'), (100003, 1, 'acme memo');"
        "INSERT INTO apps_billing_invoice VALUES (1, 'INV-1'), (2, 'INV-2')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (5, 'test_alpha');"
        "INSERT INTO apps_core_doc VALUES (2, 5, 'alpha doc 2');"
        "INSERT INTO apps_billing_invoice VALUES (2, 'ALPHA-INV-2')",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    [new] = rekeyed(report, "apps_core_doc").values()
    assert rekeyed(report, "apps_billing_invoice") == {2: new}
    assert rows(
        uat,
        "SELECT d.id, d.tenant_id, d.title, i.number FROM apps_billing_invoice i "
        "JOIN apps_core_doc d ON d.id = i.doc_ptr_id ORDER BY 1",
    ) == [
        (1, 1, "acme doc 1", "INV-1"),
        (2, 1, "acme doc 2", "INV-2"),
        (new, 5, "alpha doc 2", "ALPHA-INV-2"),
    ]


@pytest.mark.parametrize("holder", ["apps_ev_event", "apps_ev_event_p1"])
def test_not_valid_check_of_a_partitioned_table_or_partition(
    make_db: MakeDb, tmp_path: Path, holder: str
) -> None:
    """A NOT VALID check declared on the partitioned table, or on one partition, was not
    suspended (only plain synced tables' were): the load failed on production's old rows."""
    ddl = f"""
    CREATE TABLE apps_ev_event (id int PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, score int) PARTITION BY RANGE (id);
    CREATE TABLE apps_ev_event_p1 PARTITION OF apps_ev_event FOR VALUES FROM (1) TO (1000);
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_ev_event VALUES (1, 1, -1), (2, 1, 5)",
    )
    execute(
        uat, "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_ev_event VALUES (1, 1, 3)"
    )
    for url in (prod, uat):
        execute(url, f"ALTER TABLE {holder} ADD CONSTRAINT ev_score_check CHECK (score >= 0) NOT VALID")
    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(uat, "SELECT id, score FROM apps_ev_event ORDER BY id") == [(1, -1), (2, 5)]
    assert rows(
        uat,
        "SELECT conrelid::regclass::text, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'ev_score_check' AND conislocal",
    ) == [(holder, False, "CHECK ((score >= 0)) NOT VALID")]


def test_a_column_with_a_single_and_a_multi_column_key_is_repointed_once(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """product_id is in a single-column and a (product_id, sku) key into one table: the
    re-pointing map (UAT's products 5 -> 7 and 7 -> 9, by sku) was applied once per key, so 5
    ended at 9 and the run failed; each column follows a map once."""
    ddl = f"""
    CREATE TABLE apps_cat_product (id int PRIMARY KEY, sku text NOT NULL UNIQUE, UNIQUE (id, sku));
    CREATE TABLE apps_shop_line (id int PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        product_id int NOT NULL REFERENCES apps_cat_product {FK}, sku text NOT NULL,
        FOREIGN KEY (product_id, sku) REFERENCES apps_cat_product (id, sku) {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_cat_product VALUES (7, 'a'), (9, 'b');"
        "INSERT INTO apps_shop_line VALUES (1, 1, 7, 'a')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (5, 'test_x');"
        "INSERT INTO apps_cat_product VALUES (5, 'a'), (7, 'b');"
        "INSERT INTO apps_shop_line VALUES (10, 5, 5, 'a'), (11, 5, 7, 'b')",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert report["repointed"] == [{"table": "apps_cat_product", "column": "id", "ids": [[5, 7], [7, 9]]}]
    assert rows(
        uat,
        "SELECT l.id, l.product_id, p.sku FROM apps_shop_line l JOIN apps_cat_product p ON p.id = l.product_id ORDER BY 1",
    ) == [(1, 7, "a"), (10, 7, "a"), (11, 9, "b")]


def test_global_table_with_a_multi_column_key_keeps_only_uat_own_rows(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """An offer-product table keyed by two plain values (offer_id, product_id; no foreign
    keys, no remapped column): before the fix the rows UAT's test orders reference were never
    compared with production's, so a row identical to production's counted as UAT's own and the
    run was refused (exit 3). The identical row is production's; a UAT-only row is kept; a row
    under production's key with other values gives way to production's, with a warning. (A key
    made of references, like AdventureWorks' specialofferproduct, is still not compared: the
    rows it references may be re-pointed or re-keyed after it is classified.)"""
    ddl = f"""
    CREATE TABLE apps_cat_offerproduct (offer_id int NOT NULL, product_id int NOT NULL,
        label text NOT NULL, PRIMARY KEY (offer_id, product_id));
    CREATE TABLE apps_shop_line (id int PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        offer_id int NOT NULL, product_id int NOT NULL,
        FOREIGN KEY (offer_id, product_id) REFERENCES apps_cat_offerproduct {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_cat_offerproduct VALUES (1, 1, 'same'), (1, 2, 'prod label');"
        "INSERT INTO apps_shop_line VALUES (1, 1, 1, 1)",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (5, 'test_x');"
        "INSERT INTO apps_cat_offerproduct VALUES (1, 1, 'same'), (1, 2, 'uat label'), (3, 3, 'uat only');"
        "INSERT INTO apps_shop_line VALUES (10, 5, 1, 1), (11, 5, 1, 2), (12, 5, 3, 3)",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(uat, "SELECT offer_id, product_id, label FROM apps_cat_offerproduct ORDER BY 1, 2") == [
        (1, 1, "same"),
        (1, 2, "prod label"),
        (3, 3, "uat only"),
    ]
    assert rows(uat, "SELECT id, tenant_id, offer_id, product_id FROM apps_shop_line ORDER BY 1") == [
        (1, 1, 1, 1),
        (10, 5, 1, 1),
        (11, 5, 1, 2),
        (12, 5, 3, 3),
    ]
    assert any("1 row(s) of apps_cat_offerproduct" in w for w in report["warnings"]), report["warnings"]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


def test_test_tenants_named_by_exact_values(make_db: MakeDb, tmp_path: Path) -> None:
    """A tenant table with no naming convention (pagila's store): ``tenants.test_values``
    names the test tenants by their id, compared exactly. A prefix could not say "store 5 but
    not 50"; with the values, production's test store 5 is left out, its real store 50 is
    copied, and UAT's test store 5 is kept with its rental."""
    ddl = f"""
    CREATE TABLE store (store_id int PRIMARY KEY, city text NOT NULL);
    CREATE TABLE rental (rental_id int PRIMARY KEY,
        store_id int NOT NULL REFERENCES store {FK}, item text NOT NULL);
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO store VALUES (1, 'Lethbridge'), (5, 'prod test'), (50, 'Woodridge');"
        "INSERT INTO rental VALUES (1, 1, 'a'), (2, 5, 'prod test rental'), (3, 50, 'b')",
    )
    execute(
        uat, "INSERT INTO store VALUES (5, 'uat test'); INSERT INTO rental VALUES (7, 5, 'uat test rental')"
    )
    config = write_config(
        tmp_path,
        '[tenants]\ntable = "store"\nkey_column = "store_id"\ntest_column = "store_id"\ntest_values = [5]\n',
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup", "--config", config)
    ok(proc)
    assert rows(uat, "SELECT store_id, city FROM store ORDER BY 1") == [
        (1, "Lethbridge"),
        (5, "uat test"),
        (50, "Woodridge"),
    ]
    assert rows(uat, "SELECT rental_id, store_id, item FROM rental ORDER BY 1") == [
        (1, 1, "a"),
        (3, 50, "b"),
        (7, 5, "uat test rental"),
    ]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


def test_test_values_are_read_as_the_column_s_type(make_db: MakeDb, tmp_path: Path) -> None:
    """Test tenants named by their uuid, written in upper case as a UI shows it: compared as
    text it matched nothing, and the run went on with no test tenant (production's test
    tenant copied, UAT's deleted). Read as a uuid it matches. A value that is not a uuid is a
    configuration error before anything is touched."""
    ddl = f"""
    CREATE TABLE org (id uuid PRIMARY KEY, name text NOT NULL);
    CREATE TABLE note (id int PRIMARY KEY, org_id uuid NOT NULL REFERENCES org {FK}, body text NOT NULL);
    """
    test_org, real_org = "5d3c1e8a-0f4b-4c2e-9a77-0b1e2c3d4e5f", "7e6f5a4b-3c2d-4e1f-8a9b-0c1d2e3f4a5b"
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        f"INSERT INTO org VALUES ('{test_org}', 'prod test'), ('{real_org}', 'real');"
        f"INSERT INTO note VALUES (1, '{test_org}', 'prod test note'), (2, '{real_org}', 'real note')",
    )
    execute(
        uat,
        f"INSERT INTO org VALUES ('{test_org}', 'uat test'); INSERT INTO note VALUES (9, '{test_org}', 'uat note')",
    )
    tenants = '[tenants]\ntable = "org"\nkey_column = "org_id"\ntest_column = "id"\n'
    bad = write_config(tmp_path, tenants + "test_values = ['QA-1']\n")
    before = snapshot(uat)
    proc, _ = sync(prod, uat, tmp_path, "--no-backup", "--config", bad)
    assert proc.returncode == 2, proc.stderr
    assert "tenants.test_values" in proc.stderr and "uuid" in proc.stderr and "QA-1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(uat).checksum == before.checksum
    config = write_config(tmp_path, tenants + f"test_values = ['{test_org.upper()}']\n")
    proc, report = sync(prod, uat, tmp_path, "--no-backup", "--config", config)
    ok(proc)
    assert rows(uat, "SELECT o.name, n.body FROM note n JOIN org o ON o.id = n.org_id ORDER BY 1") == [
        ("real", "real note"),
        ("uat test", "uat note"),
    ]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


AIRLINE = f"""
CREATE TABLE flights (flight_id int PRIMARY KEY, flight_no text NOT NULL UNIQUE);
CREATE TABLE ticket_flights (ticket_no text NOT NULL,
    tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
    flight_id int NOT NULL REFERENCES flights {FK}, PRIMARY KEY (ticket_no, flight_id));
CREATE TABLE boarding_passes (ticket_no text NOT NULL, flight_id int NOT NULL, seat_no text NOT NULL,
    PRIMARY KEY (ticket_no, flight_id),
    FOREIGN KEY (ticket_no, flight_id) REFERENCES ticket_flights (ticket_no, flight_id) {FK});
CREATE TABLE bag_tags (tag text PRIMARY KEY, ticket_no text NOT NULL, flight_id int NOT NULL,
    FOREIGN KEY (ticket_no, flight_id) REFERENCES boarding_passes {FK});
"""

PASSES = """
SELECT b.seat_no, f.flight_no FROM boarding_passes b JOIN flights f USING (flight_id)
WHERE b.ticket_no = '9991' ORDER BY 1
"""


@pytest.mark.parametrize("direct", [False, True], ids=["through-the-segment", "and-directly"])
def test_repointed_ids_follow_down_a_multi_column_key(make_db: MakeDb, tmp_path: Path, direct: bool) -> None:
    """UAT's flights 10 and 20 are production's 20 and 10 (same flight_no, ids swapped): the
    test tenant's ticket segments were re-pointed to production's ids, but their boarding
    passes, which reference the segments by (ticket_no, flight_id), kept the old flight ids;
    every key still held, and each pass sat on the other flight (exit 0, proofs green). With a
    second, direct key from the pass to its flight, the map must still apply once (twice
    would swap the ids back)."""
    extra = f"ALTER TABLE boarding_passes ADD FOREIGN KEY (flight_id) REFERENCES flights {FK};"
    prod, uat = field_databases(make_db, AIRLINE + (extra if direct else ""))
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO flights VALUES (10, 'PG0020'), (20, 'PG0010'), (30, 'PG0030');"
        "INSERT INTO ticket_flights VALUES ('0001', 1, 30); INSERT INTO boarding_passes VALUES ('0001', 30, '1A')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_x');"
        "INSERT INTO flights VALUES (10, 'PG0010'), (20, 'PG0020');"
        "INSERT INTO ticket_flights VALUES ('9991', 5, 10), ('9991', 5, 20);"
        "INSERT INTO boarding_passes VALUES ('9991', 10, 'seat-on-PG0010'), ('9991', 20, 'seat-on-PG0020');"
        "INSERT INTO bag_tags VALUES ('bag-on-PG0010', '9991', 10), ('bag-on-PG0020', '9991', 20)",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(uat, PASSES) == [("seat-on-PG0010", "PG0010"), ("seat-on-PG0020", "PG0020")]
    # two levels down: a bag tag references its boarding pass by (ticket_no, flight_id)
    assert rows(
        uat, "SELECT t.tag, f.flight_no FROM bag_tags t JOIN flights f USING (flight_id) ORDER BY 1"
    ) == [
        ("bag-on-PG0010", "PG0010"),
        ("bag-on-PG0020", "PG0020"),
    ]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


def test_rekeyed_ids_follow_down_a_multi_column_key(make_db: MakeDb, tmp_path: Path) -> None:
    """UAT's own flight 601 (a flight_no production does not have) is re-keyed because
    production uses 601: before the fix its ticket segment followed but the boarding pass kept
    601, and the run failed on the boarding pass's foreign key (exit 4)."""
    prod, uat = field_databases(make_db, AIRLINE)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO flights VALUES (601, 'PG0601');"
        "INSERT INTO ticket_flights VALUES ('0001', 1, 601); INSERT INTO boarding_passes VALUES ('0001', 601, '1A')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_x'); INSERT INTO flights VALUES (601, 'UAT0001');"
        "INSERT INTO ticket_flights VALUES ('9991', 5, 601); INSERT INTO boarding_passes VALUES ('9991', 601, '9Z')",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    new = rekeyed(report, "flights")[601]
    assert rows(uat, PASSES) == [("9Z", "UAT0001")]
    assert rows(uat, "SELECT ticket_no, flight_id FROM boarding_passes ORDER BY 1") == [
        ("0001", 601),
        ("9991", new),
    ]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


@pytest.mark.parametrize("aliased", [700, 100_602], ids=["aliased-700", "aliased-just-past-the-headroom"])
@pytest.mark.parametrize("passes", [False, True], ids=["segments", "and-their-passes"])
def test_an_id_both_repointed_to_and_rekeyed_away(
    make_db: MakeDb, tmp_path: Path, passes: bool, aliased: int
) -> None:
    """UAT's own flight 601 (UAT0001, which production does not have) must be re-keyed, since
    production uses 601, while UAT's flight 700 is production's 601 (same flight_no) and its
    references are re-pointed to 601. The re-point ran first and the re-key, by value, then
    also took the references just re-pointed to 601: exit 4, rolled back. Each reference must
    move once: to 601 for PG0601, to the new id for UAT0001, down the boarding passes too.
    UAT's rows created since the last sync have ids just past production's largest plus the
    headroom, where re-keyed ids start: the new id must not be the aliased row's old one
    (100602), which its references still hold until they are re-pointed."""
    prod, uat = field_databases(make_db, AIRLINE)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO flights VALUES (601, 'PG0601');"
        "INSERT INTO ticket_flights VALUES ('0001', 1, 601)",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_x');"
        f"INSERT INTO flights VALUES (601, 'UAT0001'), ({aliased}, 'PG0601');"
        f"INSERT INTO ticket_flights VALUES ('9991', 5, 601), ('9991', 5, {aliased})"
        + (
            f";INSERT INTO boarding_passes VALUES ('9991', 601, 'seat-on-UAT0001'), ('9991', {aliased}, 'seat-on-PG0601')"
            if passes
            else ""
        ),
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    new = rekeyed(report, "flights")[601]
    assert new not in (601, aliased)
    assert report["repointed"] == [{"table": "flights", "column": "flight_id", "ids": [[aliased, 601]]}]
    assert rows(
        uat,
        "SELECT t.ticket_no, t.flight_id, f.flight_no FROM ticket_flights t JOIN flights f USING (flight_id) ORDER BY 1, 3",
    ) == [("0001", 601, "PG0601"), ("9991", 601, "PG0601"), ("9991", new, "UAT0001")]
    if passes:
        assert rows(uat, PASSES) == [("seat-on-PG0601", "PG0601"), ("seat-on-UAT0001", "UAT0001")]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


def test_a_self_referencing_global_table_with_rows_production_has_under_other_ids(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """A category tree: UAT's clothes (3) and shoes (5, under clothes) are production's 8 and
    9, and UAT's own category 60 hangs under clothes. Its parent was re-pointed 3 -> 8 before
    the kept categories were digested, and the proof then turned 8 back into 3 to compare:
    "preserved apps_cat_category CHANGED", exit 4, on a valid run. The re-point now follows the
    digest, like every other change the proof turns back."""
    ddl = f"""
    CREATE TABLE apps_cat_category (id int PRIMARY KEY, name text NOT NULL UNIQUE,
        parent_id int REFERENCES apps_cat_category {FK});
    CREATE TABLE apps_shop_item (id int PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        category_id int NOT NULL REFERENCES apps_cat_category {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme');"
        "INSERT INTO apps_cat_category VALUES (8, 'clothes', NULL), (9, 'shoes', 8);"
        "INSERT INTO apps_shop_item VALUES (1, 1, 9)",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_x');"
        "INSERT INTO apps_cat_category VALUES (3, 'clothes', NULL), (5, 'shoes', 3), (60, 'uat-cat', 3);"
        "INSERT INTO apps_shop_item VALUES (10, 5, 5), (11, 5, 60)",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(
        uat,
        "SELECT c.id, c.name, p.name FROM apps_cat_category c LEFT JOIN apps_cat_category p ON p.id = c.parent_id "
        "ORDER BY 1",
    ) == [(8, "clothes", None), (9, "shoes", "clothes"), (60, "uat-cat", "clothes")]
    assert rows(
        uat,
        "SELECT i.id, c.name FROM apps_shop_item i JOIN apps_cat_category c ON c.id = i.category_id ORDER BY 1",
    ) == [(1, "shoes"), (10, "shoes"), (11, "uat-cat")]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


def test_production_versions_of_deleted_objects_do_not_attach_to_preserved_rows(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """django-reversion keeps the versions of deleted objects: production's version of its
    deleted document 2 was copied next to UAT's test document 2, which production's documents
    do not use, so after the sync (exit 0) the test document listed production's version as its
    own. The id counts as production's: the test document is re-keyed with its own version, and
    production's version keeps naming an id no document has, as in production."""
    ddl = f"""
    {CONTENT_TYPES}
    CREATE TABLE apps_docs_document (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
    CREATE TABLE reversion_version (id serial PRIMARY KEY,
        content_type_id integer NOT NULL REFERENCES django_content_type {FK},
        object_id varchar(191) NOT NULL, object_repr text NOT NULL);
    INSERT INTO django_content_type (app_label, model) VALUES ('apps_docs', 'document');
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_docs_document VALUES (1, 1, 'acme doc 1');"
        "INSERT INTO reversion_version (id, content_type_id, object_id, object_repr)"
        " VALUES (1, 1, '1', 'acme doc 1'), (2, 1, '2', 'acme doc 2 (deleted)')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_alpha');"
        "INSERT INTO apps_docs_document VALUES (2, 5, 'test doc');"
        "INSERT INTO reversion_version (id, content_type_id, object_id, object_repr) VALUES (7, 1, '2', 'test doc')",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    new = rekeyed(report, "apps_docs_document")[2]
    assert new > 2
    assert rows(
        uat,
        "SELECT d.id, d.title, v.object_repr FROM apps_docs_document d"
        " LEFT JOIN reversion_version v ON v.object_id = d.id::text ORDER BY 1, 3",
    ) == [(1, "acme doc 1", "acme doc 1"), (new, "test doc", "test doc")]
    assert rows(uat, "SELECT id, object_id FROM reversion_version ORDER BY 1") == [
        (1, "1"),
        (2, "2"),
        (7, str(new)),
    ]
    assert all(p["ok"] for p in report["proofs"]), [p for p in report["proofs"] if not p["ok"]]


@pytest.mark.parametrize("load", ["direct", "staged"])
def test_unmatched_natural_key_in_a_not_null_column_is_refused(
    make_db: MakeDb, tmp_path: Path, load: str
) -> None:
    """A real tenant's role references the group "viewers", which UAT does not have, through a
    NOT NULL column: the direct load wrote the unmatched id as NULL and failed on the
    constraint (exit 4, "violates not-null constraint") before the remap step could refuse it;
    both loads must refuse (exit 3), name the natural key, not suggest on_unmatched "null"
    (which a NOT NULL column cannot take), and leave UAT as it was."""
    ddl = f"""
    CREATE TABLE auth_group (id serial PRIMARY KEY, name varchar(150) NOT NULL UNIQUE);
    CREATE TABLE apps_wh_role (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        group_id integer NOT NULL REFERENCES auth_group {FK}, name text NOT NULL);
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO auth_group VALUES (1, 'editors'), (2, 'viewers');"
        "INSERT INTO apps_wh_role VALUES (1, 1, 1, 'acme editor'), (2, 1, 2, 'acme viewer')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO auth_group VALUES (4, 'editors')",
    )
    before = snapshot(uat)
    config = write_config(tmp_path, f'load = "{load}"\n')
    proc, _ = sync(prod, uat, tmp_path, "--no-backup", "--config", config)
    assert proc.returncode == 3, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert (
        "1 row(s) of apps_wh_role.group_id reference auth_group rows whose natural key (name)" in proc.stderr
    )
    assert "add the rows to the target (group_id is NOT NULL" in proc.stderr, proc.stderr
    assert snapshot(uat).checksum == before.checksum


def test_a_database_without_a_user_table(make_db: MakeDb, tmp_path: Path) -> None:
    """Sample databases (the airlines demo, employees, world) have no user table: the run was
    refused (exit 13, "the user table 'auth_user' does not exist") whatever the config said.
    ``users.table = ""`` says there is none, and nothing is remapped as a user."""
    ddl = f"""
    DROP TABLE auth_user;
    CREATE TABLE apps_docs_doc (id serial PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'), (2, 'test_p');"
        "INSERT INTO apps_docs_doc VALUES (1, 1, 'acme doc'), (2, 2, 'prod test doc')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'test_u'); INSERT INTO apps_docs_doc VALUES (1, 1, 'uat doc')",
    )
    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    assert proc.returncode == 13 and "the user table 'auth_user' does not exist" in proc.stderr, proc.stderr

    proc, report = sync(
        prod, uat, tmp_path, "--no-backup", "--config", write_config(tmp_path, '[users]\ntable = ""\n')
    )
    ok(proc)
    new = rekeyed(report, "apps_tenants_tenant")[1]
    assert rows(uat, "SELECT id, schema_name FROM apps_tenants_tenant ORDER BY 1") == [
        (1, "acme"),
        (new, "test_u"),
    ]
    assert rows(
        uat,
        "SELECT d.title, t.schema_name FROM apps_docs_doc d JOIN apps_tenants_tenant t ON t.id = d.tenant_id ORDER BY 1",
    ) == [
        ("acme doc", "acme"),
        ("uat doc", "test_u"),
    ]
    assert report["remaps"] == [] and all(p["ok"] for p in report["proofs"])


def test_a_multi_column_key_of_references_is_not_taken_for_production_s(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """offerproduct is keyed by (product_id, offer_id), product_id a reference: UAT's (7, 1) is
    on product "a", production's (7, 1) on product "x" (production has "a" as 9). Compared by raw
    ids the rows look the same, and the test line would have committed on production's offer
    for another product; such a key is not compared, the collision is refused (exit 3) and UAT
    is left as it was."""
    ddl = f"""
    CREATE TABLE apps_cat_product (id int PRIMARY KEY, sku text NOT NULL UNIQUE);
    CREATE TABLE apps_cat_offerproduct (product_id int NOT NULL REFERENCES apps_cat_product {FK},
        offer_id int NOT NULL, PRIMARY KEY (product_id, offer_id));
    CREATE TABLE apps_shop_line (id int PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK},
        product_id int NOT NULL, offer_id int NOT NULL,
        FOREIGN KEY (product_id, offer_id) REFERENCES apps_cat_offerproduct {FK});
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_cat_product VALUES (7, 'x'), (9, 'a');"
        "INSERT INTO apps_cat_offerproduct VALUES (7, 1), (9, 1)",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_x'); INSERT INTO apps_cat_product VALUES (7, 'a');"
        "INSERT INTO apps_cat_offerproduct VALUES (7, 1); INSERT INTO apps_shop_line VALUES (1, 5, 7, 1)",
    )
    before = snapshot(uat)
    proc, _ = sync(prod, uat, tmp_path, "--no-backup")
    assert proc.returncode == 3, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "apps_cat_offerproduct" in proc.stderr and "not a single integer or uuid column" in proc.stderr
    assert snapshot(uat).checksum == before.checksum


def test_rows_named_by_production_versions_but_referenced_from_outside_keep_their_ids(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """As above, but a table dbsync does not write (auth_docnote, excluded) references the test
    document: it cannot be re-keyed, so the run goes on with a warning instead of refusing
    (exit 3) because of production's versions of deleted objects."""
    ddl = f"""
    {CONTENT_TYPES}
    CREATE TABLE apps_docs_document (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id integer NOT NULL REFERENCES apps_tenants_tenant {FK}, title text NOT NULL);
    CREATE TABLE reversion_version (id serial PRIMARY KEY,
        content_type_id integer NOT NULL REFERENCES django_content_type {FK},
        object_id varchar(191) NOT NULL, object_repr text NOT NULL);
    CREATE TABLE auth_docnote (id int PRIMARY KEY, doc_id bigint NOT NULL REFERENCES apps_docs_document {FK});
    INSERT INTO django_content_type (app_label, model) VALUES ('apps_docs', 'document');
    """
    prod, uat = field_databases(make_db, ddl)
    execute(
        prod,
        "INSERT INTO apps_tenants_tenant VALUES (1, 'acme'); INSERT INTO apps_docs_document VALUES (1, 1, 'acme doc 1');"
        "INSERT INTO reversion_version (id, content_type_id, object_id, object_repr) VALUES (2, 1, '2', 'deleted')",
    )
    execute(
        uat,
        "INSERT INTO apps_tenants_tenant VALUES (5, 'test_alpha'); INSERT INTO apps_docs_document VALUES (2, 5, 'test doc');"
        "INSERT INTO auth_docnote VALUES (1, 2)",
    )
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert rows(uat, "SELECT id, title FROM apps_docs_document ORDER BY 1") == [
        (1, "acme doc 1"),
        (2, "test doc"),
    ]
    assert any("name the ids of 1 preserved row(s) of apps_docs_document" in w for w in report["warnings"])
