-- rich_schema.sql: a small, production-like database that uses every kind of schema object a
-- full restore (pg_dump -Fc --no-owner --no-privileges, restored in one transaction) must
-- carry: sequences, views, functions, triggers, partitions, enums, domains, large objects and
-- the rest. A few hundred rows, all deterministic (no random(), no now()): loading it twice
-- gives the same database.
--
--     createdb rich
--     psql -X -v ON_ERROR_STOP=1 -f tests/sample/rich_schema.sql rich
--
-- Load it as a superuser into an empty database (it creates extensions). The test fixtures
-- (tests/fix_pg.py) build the database kind "rich" from it.
--
-- Schemas:  public  customers, room bookings, the extensions, a helper aggregate
--           billing invoices, invoice lines, payments (range-partitioned), views
--           audit   event log (list-partitioned), records (with an inheriting child),
--                   documents (large objects)

SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET search_path = public;


-- =============================================================================================
-- 1. Extensions (in public), schemas
-- =============================================================================================

CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- btree_gist lets an exclusion constraint mix "=" on a scalar with "&&" on a range. It is a
-- contrib module: use it when the server has it, otherwise fall back (section 6).
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist') AS have_btree_gist
\gset
\if :have_btree_gist
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
\endif

CREATE SCHEMA billing;
CREATE SCHEMA audit;
COMMENT ON SCHEMA billing IS 'Invoices, their lines and payments';


-- =============================================================================================
-- 2. Types: enums, a composite type, domains
-- =============================================================================================

-- An enum used as a column type.
CREATE TYPE billing.invoice_status AS ENUM ('draft', 'issued', 'paid', 'void');

-- An enum whose sort order differs from its creation order: 'medium' and 'urgent' were added
-- later, 'medium' before 'high'. Sorted: low < medium < high < urgent.
CREATE TYPE public.priority AS ENUM ('low', 'high');
ALTER TYPE public.priority ADD VALUE 'medium' BEFORE 'high';
ALTER TYPE public.priority ADD VALUE 'urgent' AFTER 'high';

-- An enum used as an array column.
CREATE TYPE public.channel AS ENUM ('email', 'sms', 'push');

-- A composite type used as a column type.
CREATE TYPE billing.postal_address AS (
    street   text,
    city     text,
    postcode text,
    country  character(2)
);

-- Domains with CHECK constraints, defaults and NOT NULL.
CREATE DOMAIN public.email_address AS public.citext
    CONSTRAINT email_address_format CHECK (VALUE ~ '^[^@[:space:]]+@[^@[:space:]]+\.[a-z]+$');

CREATE DOMAIN billing.money_amount AS numeric(12, 2)
    DEFAULT 0 NOT NULL
    CONSTRAINT money_amount_not_negative CHECK (VALUE >= 0);

CREATE DOMAIN billing.currency_code AS character(3)
    DEFAULT 'EUR'
    CONSTRAINT currency_code_format CHECK (VALUE ~ '^[A-Z]{3}$');


-- =============================================================================================
-- 3. A standalone sequence (owned by no column) used by a default expression
-- =============================================================================================

CREATE SEQUENCE billing.invoice_number_seq
    AS bigint START WITH 100000 INCREMENT BY 7 MINVALUE 100000 NO MAXVALUE CACHE 1;


-- =============================================================================================
-- 4. Functions that tables use: an SQL function for an expression index, and an aggregate
--    (a custom state function and a final function) that a view uses
-- =============================================================================================

CREATE FUNCTION public.normalize_email(raw text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(btrim(raw)) $$;

CREATE FUNCTION public.text_join_step(acc text, val text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN val IS NULL THEN acc WHEN acc = '' THEN val ELSE acc || ', ' || val END $$;

CREATE FUNCTION public.text_join_final(acc text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT nullif(acc, '') $$;

CREATE AGGREGATE public.text_join(text) (
    SFUNC = public.text_join_step,
    STYPE = text,
    FINALFUNC = public.text_join_final,
    INITCOND = ''
);


-- =============================================================================================
-- 5. Tables: identity (ALWAYS, BY DEFAULT), serial, a generated column, citext, arrays of an
--    enum, a composite column, CHECK constraints, a self-referencing and a deferrable FK
-- =============================================================================================

CREATE TABLE public.customers (
    id           bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY,
    username     public.citext NOT NULL CONSTRAINT customers_username_key UNIQUE,
    email        public.email_address NOT NULL,
    display_name text NOT NULL,
    address      billing.postal_address,
    notify_via   public.channel[] NOT NULL DEFAULT '{email}',
    priority     public.priority NOT NULL DEFAULT 'medium',
    referred_by  bigint CONSTRAINT customers_referred_by_fkey
                        REFERENCES public.customers (id) ON DELETE SET NULL,
    profile      jsonb NOT NULL DEFAULT '{}',
    bio          text,
    created_at   timestamptz NOT NULL,
    CONSTRAINT customers_display_name_not_blank CHECK (btrim(display_name) <> ''),
    CONSTRAINT customers_not_own_referrer CHECK (referred_by <> id)
);

CREATE TABLE billing.invoices (
    id          serial PRIMARY KEY,
    number      bigint NOT NULL DEFAULT nextval('billing.invoice_number_seq')
                       CONSTRAINT invoices_number_key UNIQUE,
    customer_id bigint NOT NULL CONSTRAINT invoices_customer_id_fkey
                       REFERENCES public.customers (id) DEFERRABLE INITIALLY DEFERRED,
    status      billing.invoice_status NOT NULL DEFAULT 'draft',
    currency    billing.currency_code NOT NULL DEFAULT 'EUR',
    issued_on   date,
    due_on      date,
    revision    integer NOT NULL DEFAULT 1,
    memo        text,
    CONSTRAINT invoices_due_after_issue CHECK (due_on >= issued_on),
    CONSTRAINT invoices_issued_has_date CHECK (status = 'draft' OR issued_on IS NOT NULL)
);

CREATE TABLE billing.invoice_lines (
    id          bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 500 INCREMENT BY 5) PRIMARY KEY,
    invoice_id  integer NOT NULL CONSTRAINT invoice_lines_invoice_id_fkey
                        REFERENCES billing.invoices (id) ON DELETE CASCADE,
    position    smallint NOT NULL,
    description text NOT NULL,
    quantity    numeric(10, 3) NOT NULL CONSTRAINT invoice_lines_quantity_positive CHECK (quantity > 0),
    unit_price  billing.money_amount,            -- the domain's default (0) applies
    tax_rate    numeric(5, 4) NOT NULL DEFAULT 0.2000,
    line_total  numeric(14, 2) GENERATED ALWAYS AS (round(quantity * unit_price * (1 + tax_rate), 2)) STORED,
    attachment  bytea,
    CONSTRAINT invoice_lines_invoice_position_key UNIQUE (invoice_id, position)
);


-- =============================================================================================
-- 6. An exclusion constraint: no two bookings of a room overlap
-- =============================================================================================

CREATE TABLE public.room_bookings (
    id        integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    room      text NOT NULL,
    booked_by public.citext NOT NULL,
    during    tstzrange NOT NULL,
    CONSTRAINT room_bookings_during_not_empty CHECK (NOT isempty(during))
);
\if :have_btree_gist
ALTER TABLE public.room_bookings
    ADD CONSTRAINT room_bookings_no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
\else
ALTER TABLE public.room_bookings
    ADD CONSTRAINT room_bookings_no_overlap EXCLUDE USING gist (during WITH &&);
\endif


-- =============================================================================================
-- 7. Partitioned tables: payments by RANGE (with a DEFAULT partition), the event log by LIST
-- =============================================================================================

CREATE TABLE billing.payments (
    id         bigserial,
    invoice_id integer NOT NULL CONSTRAINT payments_invoice_id_fkey REFERENCES billing.invoices (id),
    paid_on    date NOT NULL,
    amount     billing.money_amount,
    method     text NOT NULL CONSTRAINT payments_method_check CHECK (method IN ('card', 'transfer', 'cash')),
    reference  text,
    CONSTRAINT payments_pkey PRIMARY KEY (id, paid_on)
) PARTITION BY RANGE (paid_on);

CREATE TABLE billing.payments_2023 PARTITION OF billing.payments
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE billing.payments_2024_h1 PARTITION OF billing.payments
    FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE billing.payments_2024_h2 PARTITION OF billing.payments
    FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
CREATE TABLE billing.payments_default PARTITION OF billing.payments DEFAULT;

CREATE TABLE audit.event_log (
    id        bigint GENERATED BY DEFAULT AS IDENTITY,
    source    text NOT NULL,
    action    text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}',
    logged_at timestamptz NOT NULL,
    CONSTRAINT event_log_pkey PRIMARY KEY (source, id)
) PARTITION BY LIST (source);

CREATE TABLE audit.event_log_billing PARTITION OF audit.event_log FOR VALUES IN ('billing');
CREATE TABLE audit.event_log_web PARTITION OF audit.event_log FOR VALUES IN ('web', 'api');
CREATE TABLE audit.event_log_other PARTITION OF audit.event_log DEFAULT;


-- =============================================================================================
-- 8. Classic table inheritance, and a table of large objects
-- =============================================================================================

CREATE TABLE audit.records (
    id          bigserial PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    body        text NOT NULL,
    CONSTRAINT records_body_not_empty CHECK (body <> '')
);

-- Inherits id (and its default), recorded_at, body and the CHECK constraint.
CREATE TABLE audit.login_records (
    ip         inet NOT NULL,
    user_agent text,
    CONSTRAINT login_records_pkey PRIMARY KEY (id)
) INHERITS (audit.records);

CREATE TABLE audit.documents (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL,
    content_oid oid NOT NULL CONSTRAINT documents_content_oid_key UNIQUE,  -- a large object
    sha256      bytea NOT NULL                                            -- of its content
);


-- =============================================================================================
-- 9. Indexes: GIN trigram, expression, partial (two), on a partitioned table
-- =============================================================================================

CREATE INDEX customers_display_name_trgm_idx ON public.customers
    USING gin (display_name public.gin_trgm_ops);
CREATE UNIQUE INDEX customers_email_normalized_key ON public.customers
    (public.normalize_email(email::text));
CREATE INDEX customers_urgent_idx ON public.customers (created_at) WHERE priority >= 'high';
CREATE INDEX invoices_unpaid_due_idx ON billing.invoices (due_on) WHERE status <> 'paid';
CREATE INDEX invoices_customer_idx ON billing.invoices (customer_id, status);
CREATE INDEX payments_invoice_idx ON billing.payments (invoice_id);
CREATE INDEX event_log_detail_idx ON audit.event_log USING gin (detail jsonb_path_ops);
CREATE INDEX login_records_ip_idx ON audit.login_records (ip);


-- =============================================================================================
-- 10. Functions that use tables (SQL with a string body, SQL-standard BEGIN ATOMIC body,
--     plpgsql), a procedure, and the triggers: BEFORE row, AFTER statement (with a transition
--     table), BEFORE row on a partitioned table
-- =============================================================================================

CREATE FUNCTION billing.invoice_total(p_invoice integer) RETURNS numeric
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(sum(l.line_total), 0) FROM billing.invoice_lines l WHERE l.invoice_id = p_invoice;
END;

CREATE FUNCTION billing.customer_open_balance(p_customer bigint) RETURNS numeric
    LANGUAGE sql STABLE
    AS $$
        SELECT coalesce(sum(billing.invoice_total(i.id)), 0)
        FROM billing.invoices i
        WHERE i.customer_id = p_customer AND i.status = 'issued'
    $$;

-- BEFORE row: tidy the memo, default the due date, count revisions.
CREATE FUNCTION billing.invoices_before_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.memo := nullif(btrim(NEW.memo, E' \t'), '');
    IF NEW.status <> 'draft' AND NEW.due_on IS NULL THEN
        NEW.due_on := NEW.issued_on + 30;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER invoices_before_write
    BEFORE INSERT OR UPDATE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_before_write();

-- AFTER statement: one event per INSERT statement, read from the transition table.
CREATE FUNCTION audit.log_invoice_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO audit.event_log (source, action, detail, logged_at)
    SELECT 'billing', lower(TG_OP),
           jsonb_build_object('table', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
                              'rows', count(*), 'first_number', min(n.number)),
           coalesce(max(n.issued_on), DATE '2024-01-01')::timestamptz
    FROM new_invoices n;
    RETURN NULL;
END
$$;

CREATE TRIGGER invoices_log_insert
    AFTER INSERT ON billing.invoices
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION audit.log_invoice_insert();

-- On a partitioned table: cloned onto every partition.
CREATE FUNCTION billing.payments_normalize() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.method := lower(btrim(NEW.method));
    NEW.reference := upper(nullif(btrim(NEW.reference), ''));
    RETURN NEW;
END
$$;

CREATE TRIGGER payments_normalize
    BEFORE INSERT OR UPDATE ON billing.payments
    FOR EACH ROW EXECUTE FUNCTION billing.payments_normalize();

-- A procedure: issue the drafts of one set of customers.
CREATE PROCEDURE billing.issue_drafts(p_issued_on date, p_customer_modulus integer)
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE billing.invoices
    SET status = 'issued', issued_on = p_issued_on
    WHERE status = 'draft' AND customer_id % p_customer_modulus = 0;
END
$$;


-- =============================================================================================
-- 11. A rule, row-level security
-- =============================================================================================

-- The audit records are append-only.
CREATE RULE records_append_only AS ON UPDATE TO audit.records DO INSTEAD NOTHING;

ALTER TABLE billing.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_own_customer ON billing.invoices
    FOR SELECT
    USING (customer_id = nullif(current_setting('app.customer_id', true), '')::bigint);
CREATE POLICY invoices_staff_write ON billing.invoices
    FOR ALL TO PUBLIC
    USING (current_setting('app.role', true) = 'staff')
    WITH CHECK (status <> 'void');


-- =============================================================================================
-- 12. Views: one on top of another, one using the custom aggregate
-- =============================================================================================

CREATE VIEW billing.invoice_totals AS
SELECT i.id AS invoice_id, i.number, i.customer_id, i.status, i.currency, i.issued_on, i.due_on,
       coalesce(sum(l.line_total), 0)::numeric(14, 2) AS total, count(l.id) AS lines
FROM billing.invoices i
LEFT JOIN billing.invoice_lines l ON l.invoice_id = i.id
GROUP BY i.id;

CREATE VIEW billing.overdue_invoices AS
SELECT t.invoice_id, t.number, t.customer_id, t.currency, t.due_on, t.total,
       DATE '2024-12-31' - t.due_on AS days_overdue
FROM billing.invoice_totals t
WHERE t.status = 'issued' AND t.due_on < DATE '2024-12-31';

CREATE VIEW public.customer_overview AS
SELECT c.id, c.username, c.priority,
       public.text_join(i.number::text ORDER BY i.number) AS invoice_numbers,
       count(i.id) AS invoices
FROM public.customers c
LEFT JOIN billing.invoices i ON i.customer_id = c.id
GROUP BY c.id;


-- =============================================================================================
-- 13. Comments
-- =============================================================================================

COMMENT ON TABLE billing.invoices IS 'One invoice per customer order; numbers come from billing.invoice_number_seq';
COMMENT ON COLUMN billing.invoices.number IS 'Public invoice number: 100000, 100007, ... (never reused)';
COMMENT ON COLUMN public.customers.username IS 'Case-insensitive login name';


-- =============================================================================================
-- 14. Data: about 450 rows, deterministic
-- =============================================================================================

-- 40 customers (ids 1000-1039), with non-ASCII names, special characters, NULLs.
INSERT INTO public.customers (username, email, display_name, address, notify_via, priority,
                              profile, bio, created_at)
SELECT
    (CASE WHEN g % 5 = 0 THEN 'User' ELSE 'user' END) || lpad(g::text, 2, '0'),
    'user' || g || '@example.' || (ARRAY['com', 'org', 'net'])[g % 3 + 1],
    (ARRAY['Ana Müller', 'Bjørn Ødegård', 'Chloé Dubois', 'Дмитрий Иванов', 'Eve 王',
           'Fatima Zahra', 'Gus O''Neil', 'はな 日本'])[g % 8 + 1] || ' ' || g,
    CASE WHEN g % 7 <> 0
         THEN ROW('Hauptstraße ' || g, (ARRAY['Berlin', 'Köln', 'Paris'])[g % 3 + 1],
                  lpad((10000 + g * 37)::text, 5, '0'), 'DE')::billing.postal_address
    END,
    (ARRAY['{email,sms}', '{push}', '{}', '{email,push,sms}'])[g % 4 + 1]::public.channel[],
    (enum_range(NULL::public.priority))[g % 4 + 1],
    jsonb_build_object('tier', (ARRAY['free', 'pro', 'enterprise'])[g % 3 + 1],
                       'tags', jsonb_build_array('t' || g % 4, g % 2 = 0, NULL),
                       'limits', jsonb_build_object('seats', g * 3, 'ratio', g * 1.5, 'none', NULL),
                       'note', 'naïve café ☕ "quoted"'),
    (ARRAY[E'line one\nline two', E'tab\tseparated', E'back\\slash and \\n literally',
           'emoji 🎉 and CJK 漢字', '', NULL])[g % 6 + 1],
    TIMESTAMPTZ '2023-01-01 00:00:00+00' + g * INTERVAL '1 day 3 hours 17 minutes 0.123456 seconds'
FROM generate_series(1, 40) AS g
ORDER BY g;

-- Self-references, some pointing forward.
UPDATE public.customers SET referred_by = id + 5 WHERE id % 6 = 0 AND id + 5 <= 1039;
UPDATE public.customers SET referred_by = id - 11 WHERE id % 9 = 0 AND id - 11 >= 1000;

-- 80 invoices (one INSERT statement: one audit event), numbers from the standalone sequence.
INSERT INTO billing.invoices (customer_id, status, currency, issued_on, memo)
SELECT
    1000 + (g * 7) % 40,
    s.status,
    (ARRAY['EUR', 'EUR', 'USD', 'GBP'])[g % 4 + 1],
    CASE WHEN s.status <> 'draft' THEN DATE '2024-01-01' + g * 3 END,
    (ARRAY[E'  pay within 30 days\t', E'PO 4711\nref: "A/B"', 'Überweisung bitte', NULL, '   '])[g % 5 + 1]
FROM generate_series(1, 80) AS g
CROSS JOIN LATERAL (SELECT (ARRAY['draft', 'issued', 'paid', 'void'])[g % 4 + 1]::billing.invoice_status) AS s(status)
ORDER BY g;

-- Issue a third of the drafts (the BEFORE trigger sets due dates and revisions).
CALL billing.issue_drafts(DATE '2024-06-15', 3);

-- About 200 invoice lines: 1 to 4 per invoice.
INSERT INTO billing.invoice_lines (invoice_id, position, description, quantity, unit_price,
                                   tax_rate, attachment)
SELECT i.id, p,
       (ARRAY['Consulting', E'Licence\t(annual)', 'Support «premium»', E'Hardware\\rack'])[(i.id + p) % 4 + 1],
       (p * 1.25)::numeric(10, 3),
       ((i.id * 37 + p * 11) % 500 + 0.99)::numeric(12, 2),
       CASE WHEN i.id % 5 = 0 THEN 0.0700 ELSE 0.2000 END,
       CASE WHEN p = 1 AND i.id % 10 = 0 THEN decode(md5('attachment ' || i.id), 'hex') END
FROM billing.invoices i
CROSS JOIN LATERAL generate_series(1, 1 + i.id % 4) AS p
ORDER BY i.id, p;

-- Payments: the paid invoices in 2024 (h1 and h2), prepayments in 2023, old ones in the
-- DEFAULT partition (2021-2022).
INSERT INTO billing.payments (invoice_id, paid_on, amount, method, reference)
SELECT i.id, i.issued_on + i.id % 20, billing.invoice_total(i.id),
       (ARRAY[' Card', 'TRANSFER', 'cash '])[i.id % 3 + 1],
       CASE WHEN i.id % 3 <> 2 THEN ' ref-' || i.number END
FROM billing.invoices i WHERE i.status = 'paid'
ORDER BY i.id;

INSERT INTO billing.payments (invoice_id, paid_on, amount, method, reference)
SELECT i.id, DATE '2023-12-01' - i.id, 10.00, 'transfer', 'prepay-' || i.id
FROM billing.invoices i WHERE i.id % 8 = 1
ORDER BY i.id;

INSERT INTO billing.payments (invoice_id, paid_on, amount, method, reference)
SELECT i.id, DATE '2021-03-01' + i.id * 9, 0.50, 'cash', NULL
FROM billing.invoices i WHERE i.id % 16 = 5
ORDER BY i.id;

-- The event log: sources in every partition (the trigger added one 'billing' event already).
INSERT INTO audit.event_log (source, action, detail, logged_at)
SELECT (ARRAY['billing', 'web', 'api', 'cron', 'support'])[g % 5 + 1],
       (ARRAY['login', 'export', 'refresh', 'delete'])[g % 4 + 1],
       jsonb_build_object('seq', g, 'ok', g % 3 <> 0, 'path', '/v1/items/' || g,
                          'msg', E'multi\nline \\ "json" ✓'),
       TIMESTAMPTZ '2024-02-01 08:00:00+00' + g * INTERVAL '97 minutes 13.5 seconds'
FROM generate_series(1, 30) AS g
ORDER BY g;

-- Records and their inheriting child (which shares the parent's id sequence).
INSERT INTO audit.records (recorded_at, body)
SELECT TIMESTAMPTZ '2024-03-01 00:00:00+00' + g * INTERVAL '1 hour',
       (ARRAY['created', E'changed\tstatus', E'note:\nsecond line', 'ünïcödé'])[g % 4 + 1] || ' #' || g
FROM generate_series(1, 6) AS g
ORDER BY g;

INSERT INTO audit.login_records (recorded_at, body, ip, user_agent)
SELECT TIMESTAMPTZ '2024-03-02 00:00:00+00' + g * INTERVAL '13 minutes',
       'login #' || g,
       ('10.0.' || g % 3 || '.' || g)::inet,
       CASE WHEN g % 2 = 0 THEN 'Mozilla/5.0 (X11; Linux x86_64)' END
FROM generate_series(1, 8) AS g
ORDER BY g;

-- Room bookings: 45 minutes every 50 minutes, rotating over three rooms (so they overlap in
-- no room, and not at all: the fallback exclusion constraint ignores the room).
INSERT INTO public.room_bookings (room, booked_by, during)
SELECT 'room-' || (g % 3 + 1),
       'User' || lpad((g % 40 + 1)::text, 2, '0'),
       tstzrange(TIMESTAMPTZ '2024-05-06 09:00:00+00' + g * INTERVAL '50 minutes',
                 TIMESTAMPTZ '2024-05-06 09:45:00+00' + g * INTERVAL '50 minutes')
FROM generate_series(0, 11) AS g
ORDER BY g;

-- Three large objects, their oids stored in a column: text, binary (every byte value),
-- empty. Fixed oids (this database has no other large object), so every load is the same.
INSERT INTO audit.documents (title, content_oid, sha256)
SELECT d.title, lo_from_bytea(7340000 + d.n, d.content), sha256(d.content)
FROM (VALUES
        (1, 'terms.txt', convert_to(E'Terms & conditions\n\t§1 Ünïcödé ✓\n\\end\n', 'UTF8')),
        (2, 'all-bytes.bin', (SELECT string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b)
                              FROM generate_series(0, 255) AS b)),
        (3, 'empty.dat', ''::bytea)
     ) AS d(n, title, content)
ORDER BY d.n;


-- =============================================================================================
-- 15. A materialized view, populated (WITH DATA), with a unique index
-- =============================================================================================

CREATE MATERIALIZED VIEW billing.monthly_revenue AS
SELECT date_trunc('month', p.paid_on)::date AS month, sum(p.amount) AS revenue, count(*) AS payments
FROM billing.payments p
GROUP BY 1
WITH DATA;

CREATE UNIQUE INDEX monthly_revenue_month_key ON billing.monthly_revenue (month);
