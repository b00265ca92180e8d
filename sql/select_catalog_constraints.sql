-- Primary keys, unique constraints and foreign keys touching tables of the given schemas.
-- Columns come back in key order; for foreign keys, ref_columns pair up with columns.
-- psql -v schemas='{public}' -f select_catalog_constraints.sql
SELECT con.conname AS name,
       con.contype AS type,
       n.nspname AS schema,
       c.relname AS table,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i)::text[] AS columns,
       rn.nspname AS ref_schema,
       rc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i)::text[] AS ref_columns,
       con.condeferrable AS deferrable,
       con.confdeltype AS on_delete,
       con.convalidated AS validated,
       CASE WHEN con.contype = 'f' THEN pg_get_constraintdef(con.oid) END AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.contype IN ('p', 'u', 'f')
  AND con.conparentid = 0
  AND (n.nspname = ANY (:'schemas'::text[]) OR rn.nspname = ANY (:'schemas'::text[]))
ORDER BY n.nspname, c.relname, con.conname;
