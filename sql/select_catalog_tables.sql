-- Ordinary and partitioned tables of the given schemas, with their columns.
-- Partitions are left out: their rows are read and written through the partitioned parent.
-- row_security: row-level security policies filter what this role sees of the table (it is
-- neither a superuser, nor BYPASSRLS, nor the owner of a table without FORCE): a COPY or a
-- DELETE would silently act on a subset of the rows.
-- psql -v schemas='{public}' -f select_catalog_tables.sql
SELECT n.nspname AS schema,
       c.relname AS name,
       c.relkind = 'p' AS partitioned,
       c.relrowsecurity
           AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles AS r WHERE r.rolname = current_user)
           AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AS row_security,
       json_agg(json_build_object(
           'name', a.attname,
           'type', format_type(a.atttypid, a.atttypmod),
           'not_null', a.attnotnull,
           'generated', a.attgenerated <> '',
           'identity', a.attidentity,
           'has_default', a.atthasdef,
           'boolean', (SELECT coalesce(nullif(ty.typbasetype, 0), ty.oid) FROM pg_type AS ty
                       WHERE ty.oid = a.atttypid) = 'boolean'::regtype  -- or a domain over it
       ) ORDER BY a.attnum) AS columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relpersistence <> 't'
  AND n.nspname = ANY (:'schemas'::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
GROUP BY n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relowner
ORDER BY 1, 2;
