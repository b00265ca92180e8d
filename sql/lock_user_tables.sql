-- Keep writers out of every user table, inside the caller's transaction, until it ends: a
-- restore takes staging's backup in a snapshot exported right after this, so the backup holds
-- exactly what the restore replaces, and no write can land in between and be lost with
-- neither the backup nor staging keeping it. SHARE ROW EXCLUSIVE conflicts with INSERT,
-- UPDATE, DELETE and DDL, not with SELECT or pg_dump's ACCESS SHARE: staging stays readable
-- and its backup can be dumped. Each LOCK waits at most the transaction's lock_timeout.
-- A table this role may not lock (LOCK in this mode needs UPDATE, DELETE or TRUNCATE on it:
-- an extension's table owned by the provider, say) is left unlocked rather than failing the
-- restore that could drop it. Large objects and sequences have no such lock.
-- psql -c 'BEGIN' -c "SET LOCAL lock_timeout = '30s'" -f lock_user_tables.sql ...
DO $dbsync$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS relation
             FROM pg_class AS c
             JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
               AND has_table_privilege(c.oid, 'UPDATE, DELETE, TRUNCATE')
             ORDER BY c.oid
    LOOP
        EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', t.relation);
    END LOOP;
END
$dbsync$;
