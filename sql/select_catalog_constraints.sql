-- Primary keys, unique constraints and foreign keys touching tables of the given schemas.
-- Columns come back in key order; for foreign keys, ref_columns pair up with columns.
-- A foreign key declared on a partition (not inherited from its parent: pagila declares
-- payment's that way) also names the partition's root, through which dbsync reads and writes
-- the rows (root_schema, root_table; the same for a referenced partition: ref_root_*).
-- psql -v schemas='{public}' -f select_catalog_constraints.sql
SELECT con.conname AS name,
       con.contype AS type,
       n.nspname AS schema,
       c.relname AS table,
       rootn.nspname AS root_schema,
       root.relname AS root_table,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i)::text[] AS columns,
       rn.nspname AS ref_schema,
       rc.relname AS ref_table,
       rrootn.nspname AS ref_root_schema,
       rroot.relname AS ref_root_table,
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
LEFT JOIN pg_class root ON c.relispartition AND root.oid = pg_partition_root(c.oid)
LEFT JOIN pg_namespace rootn ON rootn.oid = root.relnamespace
LEFT JOIN pg_class rroot ON rc.relispartition AND rroot.oid = pg_partition_root(rc.oid)
LEFT JOIN pg_namespace rrootn ON rrootn.oid = rroot.relnamespace
WHERE con.contype IN ('p', 'u', 'f')
  AND con.conparentid = 0
  AND (n.nspname = ANY (:'schemas'::text[]) OR rn.nspname = ANY (:'schemas'::text[]))
ORDER BY n.nspname, c.relname, con.conname;
