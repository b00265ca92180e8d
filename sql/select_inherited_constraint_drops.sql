-- The statements `pg_restore --clean --if-exists` writes to drop the keys a partition inherits
-- from its partitioned table's key. PostgreSQL refuses them ("cannot drop inherited
-- constraint"), which stopped `dbsync backups restore` (and the plain pg_restore fallback) on
-- any database with a partitioned primary key; the DROP TABLE of the partition that follows in
-- the same script removes them anyway, so dbsync leaves those lines out. Quoted as pg_dump
-- quotes (quote_ident and pg_dump's fmtId quote the same names).
SELECT format('ALTER TABLE IF EXISTS ONLY %I.%I DROP CONSTRAINT IF EXISTS %I;',
              n.nspname, c.relname, con.conname) AS statement
FROM pg_constraint AS con
JOIN pg_class AS c ON c.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE con.conparentid <> 0
  AND c.relispartition;
