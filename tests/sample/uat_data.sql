-- dbsync sample data: UAT (the sync's target).
--
-- Load into a database created with schema.sql (either fk_mode):
--   psql -X -v ON_ERROR_STOP=1 -f uat_data.sql DBNAME
--
-- UAT has its own users and content types (Django system tables are never
-- synced), two UAT TEST tenants whose rows must survive a sync, and stale copies
-- of production tenants that a sync must replace. See README.md for the traps.
-- Ids below 90,000,000 in the test tenants' rows deliberately collide with ids
-- production uses (at every scale; a few only with rows of production's own
-- test tenants, which the sync skips); ids from 90,000,001 (900,001 for the
-- integer-keyed plants) collide with nothing.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;

-- ---------------------------------------------------------------------------
-- Django system tables: UAT's own.
-- ---------------------------------------------------------------------------

INSERT INTO django_migrations (id, app, name, applied)
SELECT n, app, name, timestamptz '2023-10-02 07:00:00+00' + n * interval '17 minutes 0.5 seconds'
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

-- Same (app_label, model) pairs as production, but the app models got other
-- ids: UAT once had an app (apps_legacy) that production never had, and its
-- apps were migrated in another order. Production: supplier 14, customer 15,
-- order 17. UAT: supplier 12, customer 13, order 14.
INSERT INTO django_content_type (id, app_label, model) VALUES
    (1, 'admin', 'logentry'),
    (2, 'auth', 'permission'),
    (3, 'auth', 'group'),
    (4, 'auth', 'user'),
    (5, 'contenttypes', 'contenttype'),
    (6, 'sessions', 'session'),
    (7, 'authtoken', 'token'),
    (8, 'authtoken', 'tokenproxy'),
    (9, 'apps_legacy', 'widget'),
    (10, 'apps_tenants', 'tenant'),
    (11, 'apps_tenants', 'tenantuser'),
    (12, 'apps_suppliers', 'supplier'),
    (13, 'apps_customers', 'customer'),
    (14, 'apps_orders', 'order'),
    (15, 'apps_orders', 'orderline'),
    (16, 'apps_orders', 'shipment'),
    (17, 'apps_catalog', 'category'),
    (18, 'apps_catalog', 'product'),
    (19, 'apps_catalog', 'tag'),
    (20, 'apps_plants', 'plant'),
    (21, 'apps_notes', 'note');

INSERT INTO auth_permission (id, name, content_type_id, codename)
SELECT row_number() OVER (ORDER BY ct.id, a.n), 'Can ' || a.action || ' ' || ct.model, ct.id,
       a.action || '_' || ct.model
FROM django_content_type ct
CROSS JOIN (VALUES (1, 'add'), (2, 'change'), (3, 'delete'), (4, 'view')) AS a(n, action);

INSERT INTO auth_group (id, name) VALUES (1, 'QA'), (2, 'Support');

-- UAT users. No 'admin' (UAT's superuser is 'uatadmin'). alice, bob, carol,
-- grace and heidi also exist in production, mostly under other ids (bob and
-- heidi happen to have the same id on both sides). qa_tester1, qa_tester2 and
-- uat_zoe exist only here. UAT ids 2, 4, 5, 6, 8 are other people in production.
INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name,
                       email, is_staff, is_active, date_joined)
SELECT id,
       'pbkdf2_sha256$600000$' || substr(md5('uat-salt:' || username), 1, 22) || '$'
           || encode(sha256(convert_to('uat-password:' || username, 'UTF8')), 'base64'),
       CASE WHEN id = 8 THEN NULL
            ELSE timestamptz '2024-09-01 08:30:00+00' + id * interval '2 days 1 hour' END,
       su, username, first_name, last_name, email, staff, true,
       timestamptz '2023-10-02 09:00:00+00' + id * interval '1 day 5 minutes'
FROM (VALUES
    (1, 'uatadmin', 'UAT', 'Admin', 'uat-admin@example.com', true, true),
    (2, 'qa_tester1', 'Quentin', 'Tester', 'qa1@example.com', false, true),
    (3, 'bob', 'Bob', 'Brown', 'bob@example.com', false, true),
    (4, 'alice', 'Alice', 'Anderson', 'alice@uat.example.com', false, true),
    (5, 'carol', 'Carol', 'Chen', 'carol@example.com', false, false),
    (6, 'qa_tester2', 'Quinn', 'Tester', 'qa2@example.com', false, false),
    (7, 'grace', 'Gráinne', 'Ó Súilleabháin', 'grace@example.com', false, false),
    (8, 'uat_zoe', 'Zoë', 'Zimmermann', 'zoe@uat.example.com', false, false),
    (10, 'heidi', 'Heidi', 'Hoffmann', 'heidi@example.com', false, false)
) AS u(id, username, first_name, last_name, email, su, staff);

INSERT INTO auth_user_groups (id, user_id, group_id) VALUES (1, 2, 1), (2, 6, 1), (3, 4, 2);

INSERT INTO django_session (session_key, session_data, expire_date)
SELECT md5('uat-session-' || g),
       encode(convert_to('{"_auth_user_id":"' || (1 + g % 8) || '"}', 'UTF8'), 'base64'),
       timestamptz '2025-03-01 00:00:00+00' + g * interval '5 hours'
FROM generate_series(1, 10) AS g;

INSERT INTO django_admin_log (id, action_time, object_id, object_repr, action_flag, change_message,
                              content_type_id, user_id)
SELECT g, timestamptz '2024-10-01 12:00:00+00' + g * interval '1 hour', g::text, 'UAT object ' || g,
       1 + g % 3, '[]', 10 + g % 12, (ARRAY[1, 2, 6])[1 + g % 3]
FROM generate_series(1, 12) AS g;

INSERT INTO authtoken_token (key, created, user_id)
SELECT substr(encode(sha256(convert_to('uat-token:' || id, 'UTF8')), 'hex'), 1, 40),
       timestamptz '2024-11-11 11:11:11+00' + id * interval '1 hour', id
FROM auth_user WHERE id IN (1, 2);

-- ---------------------------------------------------------------------------
-- Tenants. TEST tenants: 3 (test_alpha; production's 3 is Initech) and 11
-- (test_beta; production has no 11). The others are stale copies of
-- production tenants, to be replaced, except 14 which production never had.
-- Stale tenant 6 carries the schema_name/slug 'stark' that production's
-- tenant 7 has. Tenant 8 'testbed' is NOT a test tenant.
-- ---------------------------------------------------------------------------

INSERT INTO apps_tenants_tenant (id, name, schema_name, slug, created_at, is_active) VALUES
    (1, 'Acme Corporation', 'acme', 'acme', '2021-04-01 09:00:00+00', true),
    (2, 'Globex Corporation', 'globex', 'globex', '2021-05-12 14:30:00+00', true),
    (3, 'Test Alpha', 'test_alpha', 'test-alpha', '2023-10-05 10:00:00+00', true),
    (5, 'Umbrella Corp', 'umbrella', 'umbrella', '2021-09-09 09:09:09.090909+00', true),
    (6, 'Stark Industries', 'stark', 'stark', '2022-03-03 11:00:00+00', true),
    (8, 'Testbed Labs', 'testbed', 'testbed-labs', '2022-06-30 23:59:59.999999+00', true),
    (11, 'Test Beta', 'test_beta', 'test-beta', '2024-01-20 15:00:00+00', true),
    (14, 'Legacy Co', 'legacy', 'legacy', '2020-12-31 23:00:00+00', false);

INSERT INTO apps_tenants_tenantuser (id, tenant_id, user_id, role) VALUES
    -- stale
    (1, 1, 3, 'owner'),
    (2, 1, 4, 'member'),
    (4, 2, 5, 'owner'),
    (5, 5, 7, 'owner'),
    (6, 6, 3, 'admin'),
    (8, 8, 10, 'owner'),
    (9, 14, 5, 'member'),
    (10, 2, 3, 'viewer'),
    -- test_alpha (3). bob is a member here and production's tenant 3
    -- (Initech) has a membership for bob too: same (tenant_id, user_id) once
    -- users are remapped, unless test_alpha is re-keyed first.
    (3, 3, 2, 'owner'),
    (7, 3, 3, 'member'),
    (13, 3, 4, 'member'),
    (40, 3, 1, 'admin'),
    -- test_beta (11)
    (41, 11, 6, 'owner'),
    (12, 11, 3, 'viewer'),
    (90000001, 11, 8, 'member');

-- ---------------------------------------------------------------------------
-- Catalog: a stale copy of production's (categories 1-8 and 10-13, products
-- 1-30, tags 1-6) plus UAT's own rows, referenced by test_alpha/test_beta
-- order lines: category 9, products 31 and 32, tag 7. Production uses those
-- ids for other rows.
-- ---------------------------------------------------------------------------

INSERT INTO apps_catalog_category (id, name, parent_id) VALUES
    (1, 'Plants', NULL),
    (2, 'Tools', NULL),
    (3, 'Soil & Fertiliser', NULL),
    (4, 'Indoor Plants', 1),
    (5, 'Outdoor Plants', 1),
    (6, 'Hand Tools', 2),
    (7, 'Power Tools', 2),
    (8, 'Seeds', 1),
    (9, 'UAT Fixtures', NULL),
    (10, 'Pots & Planters', NULL),
    (11, 'Irrigation', 2),
    (12, 'Bonsai', 4),
    (13, 'Garden', 1);

-- Products 1-30 as production made them (same formula), at older prices; their
-- 'Succulents' products sit in 'Indoor Plants' here.
INSERT INTO apps_catalog_product (id, sku, name, category_id, price)
SELECT g,
       'SKU-' || lpad(g::text, 6, '0'),
       (ARRAY['Monstera', 'Fiddle Leaf Fig', 'Snake Plant', 'Pruning Shears', 'Trowel',
              'Hedge Trimmer', 'Potting Mix', 'Terracotta Pot', 'Drip Kit', 'Bonsai Juniper',
              'Aloe Vera', 'Tomato Seeds'])[1 + g % 12]
           || ' ' || (ARRAY['Mini', 'Classic', 'Pro', 'XL', 'Deluxe'])[1 + (g / 12) % 5] || ' #' || g,
       (ARRAY[4, 5, 4, 6, 6, 7, 3, 10, 11, 12, 4, 8])[1 + g % 12],
       round((2 + (g * 37) % 400 + ((g * 13) % 100) / 100.0)::numeric, 2)
FROM generate_series(1, 30) AS g;

INSERT INTO apps_catalog_product (id, sku, name, category_id, price) VALUES
    (31, 'UAT-FIX-A', 'UAT fixture: pump (do not delete)', 9, 12.34),
    (32, 'UAT-FIX-B', 'UAT fixture: hose', 3, 5.00);

INSERT INTO apps_catalog_tag (id, name) VALUES
    (1, 'fragile'), (2, 'express'), (3, 'gift'), (4, 'bulk'), (5, 'organic'), (6, 'seasonal'),
    (7, 'uat-regression');

-- ---------------------------------------------------------------------------
-- Tenant-scoped rows.
-- ---------------------------------------------------------------------------

INSERT INTO apps_suppliers_supplier (id, tenant_id, name, owner_id, created_by_id) VALUES
    -- stale
    (1, 1, 'Green Leaf #1', 3, 3),
    (2, 2, 'Green Leaf #2', 5, NULL),
    (5, 5, 'Green Leaf #5', NULL, 7),
    (6, 6, 'Green Leaf #6', 3, 3),
    (8, 8, 'Green Leaf #8', 10, NULL),
    (11, 1, 'Müller Gartenbau #11', 4, 3),
    (12, 2, 'Müller Gartenbau #12', NULL, NULL),
    (14, 14, 'Legacy Supplies', 5, 5),
    (95000001, 14, 'Legacy Supplies (old)', NULL, NULL),
    -- test_alpha: 3 and 13 are Initech suppliers in production; 4 is a
    -- production test_demo supplier (which the sync skips).
    (3, 3, 'Alpha Test Supplier A', 2, 1),
    (13, 3, 'Alpha Test Supplier B', NULL, 4),
    (4, 3, 'Alpha Test Supplier C', 4, NULL),
    -- test_beta
    (7, 11, 'Beta Test Supplier', 6, 6),
    (90000002, 11, 'Beta Spare Supplier', NULL, 3);

INSERT INTO apps_customers_customer (id, tenant_id, name, email, owner_id) VALUES
    -- stale
    (1, 1, 'Björn García', 'björn.1@acme.example', 3),
    (2, 2, 'Chloé Rossi', 'chloé.2@globex.example', NULL),
    (5, 5, 'François Tanaka', 'françois.5@umbrella.example', 7),
    (6, 6, 'Giulia O''Connor', '', 3),
    (11, 1, 'Léa Nielsen', 'léa.11@acme.example', 4),
    (12, 2, 'Mateus Silva', 'mateus.12@globex.example', NULL),
    (15, 5, 'Anna Smith', 'anna.15@umbrella.example', NULL),
    (18, 8, 'Dmitri Novák', 'dmitri.18@testbed.example', 10),
    (24, 14, 'Legacy Customer', 'legacy@legacy.example', 5),
    -- test_alpha: 3, 13, 23 are Initech customers in production
    (3, 3, 'QA Customer One', 'qa+1@example.test', 2),
    (13, 3, 'QA Customer Two', 'qa+2@example.test', NULL),
    (23, 3, 'QA Customer Três', 'qa+3@example.test', 4),
    -- test_beta: 8 is a Testbed Labs customer in production
    (8, 11, 'Beta Customer', 'beta@example.test', 6),
    (90000002, 11, 'Beta Customer Two', '', NULL);

-- Plants have an integer primary key.
INSERT INTO apps_plants_plant (id, tenant_id, name, owner_id, supplier_id) VALUES
    (1, 1, 'South Field 1', 3, 1),
    (2, 2, 'Hydroponics Bay 2', NULL, 12),
    (5, 5, 'Seed Vault 5', 7, NULL),
    (3, 3, 'Alpha Greenhouse', 2, 3),
    (900001, 3, 'Alpha Nursery', NULL, 13),
    (8, 11, 'Beta Plot', 6, 7);

INSERT INTO apps_orders_order (id, tenant_id, customer_id, supplier_id, created_by_id, total,
                               placed_at, notes) VALUES
    -- stale
    (1, 1, 1, 1, 3, 0, '2022-01-05 08:00:00+00', '{"ref": "PO-0000001", "channel": "web"}'),
    (2, 2, 2, 2, 5, 0, '2022-01-07 09:30:00+00', NULL),
    (5, 5, 5, 5, NULL, 0, '2022-01-14 17:45:00.5+00', '{"ref": "PO-0000005", "gift": true}'),
    (11, 1, 11, NULL, 4, 0, '2022-02-11 10:00:00+00', '{}'),
    (95000001, 14, 24, 14, 5, 0, '2020-06-01 00:00:00+00', '{"legacy": true}'),
    -- test_alpha: 3 and 13 are Initech orders in production
    (3, 3, 3, 3, 2, 0, '2024-02-01 10:00:00+00', '{"qa": "checkout with UAT-only product", "case": 17}'),
    (13, 3, 13, NULL, 4, 0, '2024-02-02 11:00:00.123456+00', '{"qa": "no supplier"}'),
    (90000001, 3, 23, 13, NULL, 0, '2024-02-03 12:00:00+00', NULL),
    -- test_beta: 8 is a Testbed Labs order in production
    (8, 11, 8, 7, 6, 0, '2024-03-01 09:00:00+00', '{"qa": ["beta", "smoke"]}'),
    (90000002, 11, 90000002, 90000002, 3, 0, '2024-03-02 09:00:00+00', '{"qa": null}');

INSERT INTO apps_orders_orderline (id, order_id, product_id, quantity, unit_price) VALUES
    -- stale (line 4 uses UAT's own product 31)
    (1, 1, 1, 2, 0),
    (2, 1, 2, 1, 0),
    (3, 2, 5, 4, 0),
    (4, 5, 31, 1, 0),
    (5, 11, 3, 3, 0),
    (6, 95000001, 4, 1, 0),
    -- test_alpha: lines 7-9 collide with production lines of orders 3 and 4
    (7, 3, 2, 2, 0),
    (8, 3, 31, 1, 0),
    (9, 13, 32, 5, 0),
    (90000001, 90000001, 7, 1, 0),
    -- test_beta
    (10, 8, 32, 2, 0),
    (90000002, 90000002, 1, 3, 0);

UPDATE apps_orders_orderline l SET unit_price = p.price
FROM apps_catalog_product p WHERE p.id = l.product_id;

UPDATE apps_orders_order o SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total
      FROM apps_orders_orderline GROUP BY order_id) AS s
WHERE s.order_id = o.id;

INSERT INTO apps_orders_shipment (id, order_line_id, shipped_at, tracking) VALUES
    (1, 2, '2022-01-06 10:00:00+00', 'DHL 0000015838'),
    (2, 3, '2022-01-09 12:00:00+00', ''),
    (3, 6, NULL, 'legacy'),
    (4, 7, '2024-02-03 08:00:00+00', 'QA-TRACK-ALPHA-1'),
    (6, 9, NULL, E'QA\tpending\nsecond line'),
    (90000001, 90000001, '2024-02-04 08:00:00+00', 'QA-TRACK-ALPHA-2'),
    (90000002, 10, NULL, 'QA-TRACK-BETA-1');

INSERT INTO apps_orders_orderline_tags (id, orderline_id, tag_id) VALUES
    (1, 1, 1),
    (2, 3, 2),
    (3, 4, 7),
    (4, 5, 3),
    (5, 7, 1),
    (6, 8, 7),
    (7, 9, 2),
    (90000001, 90000001, 5),
    (90000002, 10, 7),
    (90000003, 90000002, 2);

-- Notes use UAT's content type ids: 12 supplier, 13 customer, 14 order.
-- Their object_id points at rows that collide (and so get new ids).
INSERT INTO apps_notes_note (id, tenant_id, content_type_id, object_id, body) VALUES
    (1, 1, 12, 1, 'stale note on supplier 1'),
    (2, 2, 13, 2, 'stale note on customer 2'),
    (4, 14, 14, 95000001, 'legacy order note'),
    (3, 3, 12, 3, 'QA: supplier A onboarding checklist'),
    (13, 3, 14, 13, E'QA: order without supplier\nexpected total 25.00'),
    (90000001, 3, 13, 23, 'QA: customer três'),
    (8, 11, 14, 8, 'QA beta: order smoke test'),
    (90000002, 11, 12, 90000002, 'QA beta: spare supplier');

-- Sequences past every max, as Django leaves them.
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

COMMIT;

ANALYZE;
