-- Unique indexes that back no constraint: Django's UniqueConstraint with a condition (a
-- partial index) or on an expression (Lower("name")) creates these, and they bind a load just
-- like a constraint. Each key item is a column or an expression, as pg_get_indexdef prints it
-- (unqualified column names, so it can be evaluated over any relation with those columns); the
-- predicate likewise; "used" lists every column the index reads.
-- psql -v schemas='{public}' -f select_catalog_unique_indexes.sql
SELECT n.nspname AS schema,
       c.relname AS table,
       i.relname AS name,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k)::text[] AS items,
       pg_get_expr(x.indpred, x.indrelid, true) AS predicate,
       ARRAY(SELECT DISTINCT a.attname
             FROM pg_attribute a
             WHERE a.attrelid = x.indrelid AND a.attnum > 0
               AND (a.attnum = ANY (x.indkey::int2[])
                    OR EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid
                                 AND d.refclassid = 'pg_class'::regclass AND d.refobjid = x.indrelid
                                 AND d.refobjsubid = a.attnum)))::text[] AS used,
       x.indnullsnotdistinct AS nulls_not_distinct
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE x.indisunique AND x.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.contype IN ('p', 'u', 'x'))
  AND n.nspname = ANY (:'schemas'::text[])
ORDER BY 1, 2, 3;
