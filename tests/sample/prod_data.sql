-- dbsync sample data: PRODUCTION.
--
-- Load into a database created with schema.sql (either fk_mode):
--   psql -X -v ON_ERROR_STOP=1 -v scale=1 -f prod_data.sql DBNAME
--
-- psql variable scale (integer >= 1, default 1) multiplies the per-tenant row
-- counts and the product catalog; users, tenants, memberships, content types,
-- categories and tags are fixed. scale 1 is about 3,000 rows in all; the file is
-- set-based (generate_series), so scale 100+ loads in seconds.
--
-- Every value is computed from the row number, never from random(): the same
-- scale always produces the same database. Rows of tenant-scoped tables are
-- spread over the tenants round-robin: row g belongs to tenant ((g - 1) % 10) + 1,
-- so test tenants' rows are interleaved with real ones in the id space.
-- Inserts go parents first, so the file also loads with NOT DEFERRABLE keys.

\set ON_ERROR_STOP 1
\if :{?scale}
\else
\set scale 1
\endif
SELECT :'scale' ~ '^[1-9][0-9]*$' AS scale_ok \gset
\if :scale_ok
\else
\warn 'scale must be a positive integer'
DO $$ BEGIN RAISE EXCEPTION 'invalid scale'; END $$;
\endif

SET client_min_messages = warning;
BEGIN;

-- ---------------------------------------------------------------------------
-- Django system tables
-- ---------------------------------------------------------------------------

INSERT INTO django_migrations (id, app, name, applied)
SELECT n, app, name, timestamptz '2021-03-01 09:00:00+00' + n * interval '3 days 4 hours 5.123456 seconds'
FROM (VALUES
    (1, 'contenttypes', '0001_initial'),
    (2, 'auth', '0001_initial'),
    (3, 'admin', '0001_initial'),
    (4, 'admin', '0002_logentry_remove_auto_add'),
    (5, 'admin', '0003_logentry_add_action_flag_choices'),
    (6, 'contenttypes', '0002_remove_content_type_name'),
    (7, 'auth', '0002_alter_permission_name_max_length'),
    (8, 'auth', '0003_alter_user_email_max_length'),
    (9, 'auth', '0012_alter_user_first_name_max_length'),
    (10, 'authtoken', '0001_initial'),
    (11, 'authtoken', '0002_auto_20160226_1747'),
    (12, 'authtoken', '0003_tokenproxy'),
    (13, 'sessions', '0001_initial'),
    (14, 'apps_tenants', '0001_initial'),
    (15, 'apps_tenants', '0002_tenantuser'),
    (16, 'apps_catalog', '0001_initial'),
    (17, 'apps_suppliers', '0001_initial'),
    (18, 'apps_customers', '0001_initial'),
    (19, 'apps_plants', '0001_initial'),
    (20, 'apps_orders', '0001_initial'),
    (21, 'apps_orders', '0002_shipment'),
    (22, 'apps_orders', '0003_orderline_tags'),
    (23, 'apps_orders', '0004_order_notes_jsonb'),
    (24, 'apps_notes', '0001_initial'),
    (25, 'apps_orders', '0005_order_tenant_placed_at_idx')
) AS m(n, app, name);

-- Content types, in the order `migrate` created them on production.
INSERT INTO django_content_type (id, app_label, model) VALUES
    (1, 'admin', 'logentry'),
    (2, 'auth', 'permission'),
    (3, 'auth', 'group'),
    (4, 'auth', 'user'),
    (5, 'contenttypes', 'contenttype'),
    (6, 'sessions', 'session'),
    (7, 'authtoken', 'token'),
    (8, 'authtoken', 'tokenproxy'),
    (9, 'apps_tenants', 'tenant'),
    (10, 'apps_tenants', 'tenantuser'),
    (11, 'apps_catalog', 'category'),
    (12, 'apps_catalog', 'product'),
    (13, 'apps_catalog', 'tag'),
    (14, 'apps_suppliers', 'supplier'),
    (15, 'apps_customers', 'customer'),
    (16, 'apps_plants', 'plant'),
    (17, 'apps_orders', 'order'),
    (18, 'apps_orders', 'orderline'),
    (19, 'apps_orders', 'shipment'),
    (20, 'apps_notes', 'note');

INSERT INTO auth_permission (id, name, content_type_id, codename)
SELECT row_number() OVER (ORDER BY ct.id, a.n), 'Can ' || a.action || ' ' || ct.model, ct.id,
       a.action || '_' || ct.model
FROM django_content_type ct
CROSS JOIN (VALUES (1, 'add'), (2, 'change'), (3, 'delete'), (4, 'view')) AS a(n, action);

INSERT INTO auth_group (id, name) VALUES (1, 'Support'), (2, 'Finance'), (3, 'Operations');

-- ~20 users. id 7 was deleted long ago (a gap). qa_bot only belongs to the
-- production test tenants.
INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name,
                       email, is_staff, is_active, date_joined)
SELECT id,
       'pbkdf2_sha256$600000$' || substr(md5('prod-salt:' || username), 1, 22) || '$'
           || encode(sha256(convert_to('prod-password:' || username, 'UTF8')), 'base64'),
       CASE WHEN id % 6 = 0 THEN NULL
            ELSE timestamptz '2024-05-01 09:00:00+00' + id * interval '1 day 3 hours 17 minutes 0.25 seconds' END,
       su, username, first_name, last_name, email, staff, active,
       timestamptz '2021-03-01 10:00:00+00' + id * interval '11 days 7 hours'
FROM (VALUES
    (1, 'admin', 'Ada', 'Admin', 'admin@example.com', true, true, true),
    (2, 'alice', 'Alice', 'Anderson', 'alice@example.com', false, true, true),
    (3, 'bob', 'Bob', 'Brown', 'bob@example.com', false, true, true),
    (4, 'carol', 'Carol', 'Chen', 'carol@example.com', false, false, true),
    (5, 'dave', 'Dave', 'Davis', 'dave@example.com', false, false, true),
    (6, 'erin', 'Erin', 'Eriksson', 'erin@example.com', false, false, true),
    (8, 'frank', 'Frank', 'Fischer', 'frank@example.com', false, false, true),
    (9, 'grace', 'Gráinne', 'Ó Súilleabháin', 'grace@example.com', false, true, true),
    (10, 'heidi', 'Heidi', 'Hoffmann', 'heidi@example.com', false, false, true),
    (11, 'ivan', 'Ivan', 'Иванов', 'ivan@example.com', false, false, true),
    (12, 'judy', 'Judy', 'Jones', '', false, false, true),
    (13, 'mallory', 'Mallory', 'Moore', 'mallory@example.com', false, false, false),
    (14, 'niaj', 'Niaj', 'Nguyễn', 'niaj@example.com', false, false, true),
    (15, 'olivia', 'Olivia', 'O''Neil', 'olivia@example.com', false, false, true),
    (16, 'peggy', 'Peggy', 'Parker', 'peggy@example.com', false, false, true),
    (17, 'rupert', 'Rupert', 'Russell', 'rupert@example.com', false, false, true),
    (18, 'sybil', 'Sybil', 'Schmidt', 'sybil@example.com', false, false, true),
    (19, 'trent', 'Trent', 'Turner', 'trent@example.com', false, false, true),
    (20, 'victor', 'Víctor', 'Vázquez', 'victor@example.com', false, false, true),
    (21, 'walter', 'Walter', 'White', 'walter@example.com', false, false, true),
    (22, 'qa_bot', 'QA', 'Bot', 'qa-bot@example.com', false, false, true)
) AS u(id, username, first_name, last_name, email, su, staff, active);

INSERT INTO auth_user_groups (id, user_id, group_id) VALUES
    (1, 2, 1), (2, 3, 2), (3, 4, 3), (4, 5, 1), (5, 9, 1), (6, 10, 2), (7, 9, 3), (8, 13, 1);

INSERT INTO django_session (session_key, session_data, expire_date)
SELECT md5('prod-session-' || g),
       encode(convert_to('{"_auth_user_id":"' || (2 + g % 20) || '","_auth_user_backend":'
                         || '"django.contrib.auth.backends.ModelBackend"}', 'UTF8'), 'base64'),
       timestamptz '2025-01-01 00:00:00+00' + g * interval '2 hours 0.5 seconds'
FROM generate_series(1, 40 * :scale) AS g;

INSERT INTO django_admin_log (id, action_time, object_id, object_repr, action_flag, change_message,
                              content_type_id, user_id)
SELECT g,
       timestamptz '2023-01-01 00:00:00+00' + g * interval '3 hours 7 minutes',
       CASE WHEN g % 17 = 0 THEN NULL ELSE (1 + g % 50)::text END,
       'Object #' || (1 + g % 50),
       1 + g % 3,
       CASE 1 + g % 3 WHEN 1 THEN '[{"added": {}}]'
                      WHEN 2 THEN '[{"changed": {"fields": ["Name", "Owner"]}}]'
                      ELSE '' END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE 9 + g % 12 END,
       (ARRAY[1, 2, 3])[1 + g % 3]
FROM generate_series(1, 50 * :scale) AS g;

INSERT INTO authtoken_token (key, created, user_id)
SELECT substr(encode(sha256(convert_to('prod-token:' || id, 'UTF8')), 'hex'), 1, 40),
       timestamptz '2024-02-02 12:00:00+00' + id * interval '1 day', id
FROM auth_user WHERE id IN (1, 2, 3, 9, 22);

-- ---------------------------------------------------------------------------
-- Tenants. 8 real tenants and 2 production TEST tenants (4 and 9). Tenant 8's
-- schema_name 'testbed' starts with "test" but not "test_": it is real (and
-- `schema_name LIKE 'test_%'` wrongly matches it, '_' being a wildcard).
-- ---------------------------------------------------------------------------

INSERT INTO apps_tenants_tenant (id, name, schema_name, slug, created_at, is_active) VALUES
    (1, 'Acme Corporation', 'acme', 'acme', '2021-04-01 09:00:00+00', true),
    (2, 'Globex', 'globex', 'globex', '2021-05-12 14:30:00+00', true),
    (3, 'Initech', 'initech', 'initech', '2021-06-20 08:15:00+00', true),
    (4, 'Test Demo', 'test_demo', 'test-demo', '2021-07-01 00:00:00+00', true),
    (5, 'Umbrella Corp', 'umbrella', 'umbrella', '2021-09-09 09:09:09.090909+00', true),
    (6, 'Hooli', 'hooli', 'hooli', '2022-01-15 16:45:00+00', true),
    (7, 'Stark Industries', 'stark', 'stark', '2022-03-03 11:00:00+00', true),
    (8, 'Testbed Labs', 'testbed', 'testbed-labs', '2022-06-30 23:59:59.999999+00', true),
    (9, 'Test QA', 'test_qa', 'test-qa', '2022-08-08 08:08:08+00', true),
    (10, 'Wonka Industries', 'wonka', 'wonka', '2023-02-14 10:00:00+00', false);

-- Memberships: real tenants get about a third of the ordinary users (and acme
-- also has admin); test tenants get qa_bot and a quarter of the users.
INSERT INTO apps_tenants_tenantuser (id, tenant_id, user_id, role)
SELECT row_number() OVER (ORDER BY t.id, u.id), t.id, u.id,
       CASE WHEN row_number() OVER (PARTITION BY t.id ORDER BY u.id) = 1 THEN 'owner'
            ELSE (ARRAY['admin', 'member', 'viewer'])[1 + u.id % 3] END
FROM apps_tenants_tenant t
JOIN auth_user u ON CASE
    WHEN t.id IN (4, 9) THEN u.id = 22 OR (u.id BETWEEN 2 AND 21 AND (u.id + t.id) % 4 = 0)
    ELSE (u.id BETWEEN 2 AND 21 AND (u.id + t.id) % 3 = 0) OR (u.id = 1 AND t.id = 1) END;

-- Each tenant's members, to pick owners/creators from the same tenant.
CREATE TEMP TABLE tmp_members ON COMMIT DROP AS
SELECT tenant_id, array_agg(user_id ORDER BY user_id) AS users
FROM apps_tenants_tenantuser GROUP BY tenant_id;

-- ---------------------------------------------------------------------------
-- Global catalog. Category 5's parent (13) has a higher id than the child.
-- ---------------------------------------------------------------------------

INSERT INTO apps_catalog_category (id, name, parent_id) VALUES
    (1, 'Plants', NULL),
    (2, 'Tools', NULL),
    (3, 'Soil & Fertiliser', NULL),
    (4, 'Indoor Plants', 1),
    (5, 'Outdoor Plants', 13),
    (6, 'Hand Tools', 2),
    (7, 'Power Tools', 2),
    (8, 'Seeds', 1),
    (9, 'Succulents', 4),
    (10, 'Pots & Planters', NULL),
    (11, 'Irrigation', 2),
    (12, 'Bonsai', 4),
    (13, 'Garden', 1);

-- Product g is the same for every scale (uat_data.sql copies products 1-30).
INSERT INTO apps_catalog_product (id, sku, name, category_id, price)
SELECT g,
       'SKU-' || lpad(g::text, 6, '0'),
       (ARRAY['Monstera', 'Fiddle Leaf Fig', 'Snake Plant', 'Pruning Shears', 'Trowel',
              'Hedge Trimmer', 'Potting Mix', 'Terracotta Pot', 'Drip Kit', 'Bonsai Juniper',
              'Aloe Vera', 'Tomato Seeds'])[1 + g % 12]
           || ' ' || (ARRAY['Mini', 'Classic', 'Pro', 'XL', 'Deluxe'])[1 + (g / 12) % 5] || ' #' || g,
       (ARRAY[4, 5, 4, 6, 6, 7, 3, 10, 11, 12, 9, 8])[1 + g % 12],
       round((3 + (g * 37) % 400 + ((g * 13) % 100) / 100.0)::numeric, 2)
FROM generate_series(1, 60 * :scale) AS g;

INSERT INTO apps_catalog_tag (id, name) VALUES
    (1, 'fragile'), (2, 'express'), (3, 'gift'), (4, 'bulk'), (5, 'organic'),
    (6, 'seasonal'), (7, 'clearance'), (8, 'wholesale'), (9, 'imported'), (10, 'eco');

-- ---------------------------------------------------------------------------
-- Tenant-scoped rows: row g belongs to tenant ((g - 1) % 10) + 1. The rows of
-- tenant t in a table with N rows per tenant are t, t + 10, ..., t + 10 (N - 1).
-- ---------------------------------------------------------------------------

-- 5 per tenant per scale.
INSERT INTO apps_suppliers_supplier (id, tenant_id, name, owner_id, created_by_id)
SELECT g, x.t,
       (ARRAY['Green Leaf', 'Müller Gartenbau', 'Østergaard Planteskole', 'Café Ñandú Imports',
              'O''Brien & Sons', 'Smith & Co.', 'Nakamura 園芸', 'Rivera Viveros',
              'Dupont Jardinage', 'Kowalski Ogrody'])[1 + (g / 10) % 10] || ' #' || g,
       CASE WHEN g % 4 = 0 THEN NULL ELSE m.users[1 + g % cardinality(m.users)] END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE m.users[1 + (g * 7) % cardinality(m.users)] END
FROM generate_series(1, 50 * :scale) AS g
CROSS JOIN LATERAL (SELECT (g - 1) % 10 + 1 AS t) AS x
JOIN tmp_members m ON m.tenant_id = x.t
ORDER BY g;

-- 20 per tenant per scale.
INSERT INTO apps_customers_customer (id, tenant_id, name, email, owner_id)
SELECT g, x.t, x.first_name || ' ' || x.last_name,
       CASE WHEN g % 13 = 0 THEN ''
            ELSE lower(x.first_name) || '.' || g || '@' || tn.schema_name || '.example' END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE m.users[1 + (g * 5) % cardinality(m.users)] END
FROM generate_series(1, 200 * :scale) AS g
CROSS JOIN LATERAL (
    SELECT (g - 1) % 10 + 1 AS t,
           (ARRAY['Anna', 'Björn', 'Chloé', 'Dmitri', 'Eva', 'François', 'Giulia', 'Hiroshi',
                  'Ingrid', 'José', 'Kwame', 'Léa', 'Mateus', 'Nadia', 'Oskar'])[1 + g % 15] AS first_name,
           (ARRAY['Smith', 'Müller', 'García', 'Rossi', 'Dubois', 'Kowalski', 'Tanaka', 'O''Connor',
                  'Nielsen', 'Silva', 'Novák'])[1 + (g * 7) % 11] AS last_name
) AS x
JOIN apps_tenants_tenant tn ON tn.id = x.t
JOIN tmp_members m ON m.tenant_id = x.t
ORDER BY g;

-- 4 per tenant per scale; supplier of the same tenant, or NULL.
INSERT INTO apps_plants_plant (id, tenant_id, name, owner_id, supplier_id)
SELECT g, x.t,
       (ARRAY['North Greenhouse', 'South Field', 'Hydroponics Bay', 'Nursery Row',
              'Orchard Block', 'Seed Vault'])[1 + g % 6] || ' ' || g,
       CASE WHEN g % 5 = 0 THEN NULL ELSE m.users[1 + (g * 3) % cardinality(m.users)] END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE x.t + 10 * ((g * 3) % (5 * :scale)) END
FROM generate_series(1, 40 * :scale) AS g
CROSS JOIN LATERAL (SELECT (g - 1) % 10 + 1 AS t) AS x
JOIN tmp_members m ON m.tenant_id = x.t
ORDER BY g;

-- 30 per tenant per scale, spread over two years; customer and supplier of the
-- same tenant. total is filled in from the lines below.
INSERT INTO apps_orders_order (id, tenant_id, customer_id, supplier_id, created_by_id, total,
                               placed_at, notes)
SELECT g, x.t,
       x.t + 10 * ((g * 7) % (20 * :scale)),
       CASE WHEN g % 5 = 0 THEN NULL ELSE x.t + 10 * ((g * 3) % (5 * :scale)) END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE m.users[1 + (g * 11) % cardinality(m.users)] END,
       0,
       timestamptz '2022-01-03 08:00:00+00' + g * (interval '730 days' / (300 * :scale))
           + (g % 997) * interval '1 microsecond',
       CASE WHEN g % 8 = 0 THEN NULL ELSE jsonb_build_object(
           'channel', (ARRAY['web', 'phone', 'email', 'édi'])[1 + g % 4],
           'priority', g % 5,
           'gift', g % 11 = 0,
           'ref', 'PO-' || lpad(g::text, 7, '0'),
           'discount', CASE WHEN g % 6 = 0 THEN to_jsonb(0.15) ELSE 'null'::jsonb END,
           'delivery', jsonb_build_object(
               'window', jsonb_build_array(8 + g % 4, 12 + g % 6),
               'instructions', CASE WHEN g % 10 = 0
                                    THEN E'Leave at the back door.\nRing twice, "please" \\ thanks.' END))
       END
FROM generate_series(1, 300 * :scale) AS g
CROSS JOIN LATERAL (SELECT (g - 1) % 10 + 1 AS t) AS x
JOIN tmp_members m ON m.tenant_id = x.t
ORDER BY g;

-- 1 to 5 lines per order (3 on average), each for a global product.
INSERT INTO apps_orders_orderline (id, order_id, product_id, quantity, unit_price)
SELECT row_number() OVER (ORDER BY o.id, n), o.id, p.id, 1 + (o.id + n) % 9,
       CASE WHEN (o.id + n) % 7 = 0 THEN round(p.price * 0.9, 2) ELSE p.price END
FROM apps_orders_order o
CROSS JOIN LATERAL generate_series(1, 1 + (o.id % 5)::int) AS n
JOIN apps_catalog_product p ON p.id = 1 + (o.id * 31 + n * 17) % (60 * :scale)
ORDER BY o.id, n;

-- Every other line is shipped (two levels below the order); some are pending.
INSERT INTO apps_orders_shipment (id, order_line_id, shipped_at, tracking)
SELECT row_number() OVER (ORDER BY l.id), l.id,
       CASE WHEN l.id % 10 = 0 THEN NULL
            ELSE o.placed_at + (1 + l.id % 5) * interval '1 day 2 hours' END,
       CASE l.id % 3 WHEN 0 THEN 'DHL ' || lpad((l.id * 7919)::text, 10, '0')
                     WHEN 1 THEN '1Z' || upper(substr(md5('track-' || l.id), 1, 16))
                     ELSE '' END
FROM apps_orders_orderline l
JOIN apps_orders_order o ON o.id = l.order_id
WHERE l.id % 2 = 0
ORDER BY l.id;

-- Many-to-many through table: one or two tags per line.
INSERT INTO apps_orders_orderline_tags (id, orderline_id, tag_id)
SELECT row_number() OVER (ORDER BY l.id, t.id), l.id, t.id
FROM apps_orders_orderline l
JOIN apps_catalog_tag t ON (l.id * 3 + t.id) % 7 = 0
ORDER BY l.id, t.id;

-- Advance every sequence past its column's max, as `manage.py sqlsequencereset`
-- (or loaddata) does after explicit ids were inserted.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS tbl, a.attname AS col,
               pg_get_serial_sequence(c.oid::regclass::text, a.attname) AS seq
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND pg_get_serial_sequence(c.oid::regclass::text, a.attname) IS NOT NULL
    LOOP
        EXECUTE format('SELECT setval(%L, coalesce(max(%I), 1), max(%I) IS NOT NULL) FROM %s',
                       r.seq, r.col, r.col, r.tbl);
    END LOOP;
END
$$;

-- Some orders were deleted later (with their lines, shipments and tags), the
-- newest one among them: gaps in the ids, and sequences ahead of max(id).
CREATE TEMP TABLE tmp_deleted_orders ON COMMIT DROP AS
SELECT id FROM apps_orders_order WHERE id % 97 = 0 OR id = 300 * :scale;
DELETE FROM apps_orders_orderline_tags
WHERE orderline_id IN (SELECT id FROM apps_orders_orderline
                       WHERE order_id IN (SELECT id FROM tmp_deleted_orders));
DELETE FROM apps_orders_shipment
WHERE order_line_id IN (SELECT id FROM apps_orders_orderline
                        WHERE order_id IN (SELECT id FROM tmp_deleted_orders));
DELETE FROM apps_orders_orderline WHERE order_id IN (SELECT id FROM tmp_deleted_orders);
DELETE FROM apps_orders_order WHERE id IN (SELECT id FROM tmp_deleted_orders);

UPDATE apps_orders_order o SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total
      FROM apps_orders_orderline GROUP BY order_id) AS s
WHERE s.order_id = o.id;

-- Notes: a generic relation to a supplier, customer or (existing) order of the
-- note's own tenant. 10 per tenant per scale. Bodies hold newlines, tabs,
-- backslashes, quotes and non-ASCII text.
CREATE TEMP TABLE tmp_orders ON COMMIT DROP AS
SELECT tenant_id, array_agg(id ORDER BY id) AS ids FROM apps_orders_order GROUP BY tenant_id;

INSERT INTO apps_notes_note (id, tenant_id, content_type_id, object_id, body)
SELECT g, x.t, ct.id,
       CASE g % 3 WHEN 0 THEN x.t + 10 * ((g * 7) % (5 * :scale))
                  WHEN 1 THEN x.t + 10 * ((g * 11) % (20 * :scale))
                  ELSE o.ids[1 + (g * 13) % cardinality(o.ids)] END,
       CASE g % 5 WHEN 0 THEN E'Called them.\nFollow-up needed:\t"urgent" \\ see C:\\notes\\' || g
                  WHEN 1 THEN 'Réunion prévue — 会議 ' || g || ' 🌱'
                  WHEN 2 THEN ''
                  ELSE 'Note ' || g || ' for ' || x.model || ' (it''s fine)' END
FROM generate_series(1, 100 * :scale) AS g
CROSS JOIN LATERAL (
    SELECT (g - 1) % 10 + 1 AS t,
           (ARRAY['apps_suppliers', 'apps_customers', 'apps_orders'])[1 + g % 3] AS app_label,
           (ARRAY['supplier', 'customer', 'order'])[1 + g % 3] AS model
) AS x
JOIN django_content_type ct ON ct.app_label = x.app_label AND ct.model = x.model
JOIN tmp_orders o ON o.tenant_id = x.t
ORDER BY g;

SELECT setval(pg_get_serial_sequence('apps_notes_note', 'id'), max(id)) FROM apps_notes_note \g /dev/null

COMMIT;

ANALYZE;
