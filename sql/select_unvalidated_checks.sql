-- CHECK constraints added NOT VALID: rows older than the constraint may violate it, and in
-- production they can. Inserting such rows into the target would fail the check, so a sync
-- drops these constraints (of the tables it writes) for the load and adds them back exactly
-- as they were, NOT VALID. Inherited copies are left to their parent's. A check may sit on a
-- partitioned table or on one of its partitions: root_* name the table dbsync writes through.
-- psql -v schemas='{public}' -f select_unvalidated_checks.sql
SELECT n.nspname AS schema,
       c.relname AS table,
       con.conname AS name,
       pg_get_constraintdef(con.oid) AS definition,
       rn.nspname AS root_schema,
       r.relname AS root_table
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.contype = 'c'
  AND NOT con.convalidated
  AND con.conislocal
  AND con.coninhcount = 0
  AND c.relkind IN ('r', 'p')
  AND rn.nspname = ANY (:'schemas'::text[])
ORDER BY 1, 2, 3;
