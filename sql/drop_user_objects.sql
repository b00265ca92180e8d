-- Empty a database of everything a full restore recreates, inside the caller's transaction:
-- every user schema (with its tables, views, functions, types, and the extensions installed in
-- it), every publication (database-wide, so no schema takes it along, and in the dump) and
-- every large object. The public schema is recreated with its owner and privileges,
-- since pg_dump never writes CREATE SCHEMA public (nor its default comment). Nothing is
-- committed here.
-- psql -v create_public=true -c 'BEGIN' -f drop_user_objects.sql ...
DO $dbsync$
DECLARE
    public_owner text;
    public_acl aclitem[];
    public_comment text;
    s record;
    g record;
    p record;
BEGIN
    SELECT nspowner::regrole::text, nspacl, obj_description(oid, 'pg_namespace')
    INTO public_owner, public_acl, public_comment
    FROM pg_namespace WHERE nspname = 'public';
    FOR s IN SELECT nspname FROM pg_namespace
             WHERE nspname NOT IN ('pg_catalog', 'information_schema')
               AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', s.nspname);
    END LOOP;
    FOR p IN SELECT pubname FROM pg_publication LOOP
        EXECUTE format('DROP PUBLICATION %I', p.pubname);
    END LOOP;
    PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
    IF :'create_public' THEN
        CREATE SCHEMA public;
        -- pg_dump writes the schema's comment only when it is not the default one.
        EXECUTE format('COMMENT ON SCHEMA public IS %L', public_comment);
        IF public_owner IS NOT NULL THEN
            BEGIN
                EXECUTE format('ALTER SCHEMA public OWNER TO %s', public_owner);
            EXCEPTION WHEN insufficient_privilege THEN
                NULL;  -- a managed role may not hand the schema back; it keeps it
            END;
        END IF;
        FOR g IN SELECT a.grantee, a.privilege_type FROM aclexplode(public_acl) AS a
                 WHERE a.grantee <> (SELECT nspowner FROM pg_namespace WHERE nspname = 'public')
        LOOP
            EXECUTE format('GRANT %s ON SCHEMA public TO %s', g.privilege_type,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
        END LOOP;
    END IF;
END
$dbsync$;
