-- A normalised description of every user object, one line each, sorted: what pg_dump
-- --schema-only would write, minus owners, privileges, OIDs and physical column numbers.
-- Equal descriptions mean equal schemas. It runs inside an uncommitted transaction, where a
-- separate pg_dump cannot look. Run it with search_path = '' so every name is qualified.
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
), ext_member AS (
    SELECT objid, classid FROM pg_depend WHERE deptype = 'e'
), rel AS (
    SELECT c.oid, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relispopulated,
           c.relreplident, c.reloptions, format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
)
SELECT line FROM (
    SELECT format('schema|%I', nspname) AS line FROM user_ns
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = user_ns.oid)
    UNION ALL
    SELECT format('extension|%s|%s|%s', e.extname, e.extversion, e.extnamespace::regnamespace)
    FROM pg_extension e WHERE e.extname <> 'plpgsql'
    UNION ALL
    SELECT format('relation|%s|%s|%s|rls=%s,%s|populated=%s|replident=%s|options=%s', r.name, r.relkind,
                  r.relpersistence, r.relrowsecurity, r.relforcerowsecurity, r.relispopulated, r.relreplident,
                  coalesce(array_to_string(r.reloptions, ','), ''))
    FROM rel r
    UNION ALL
    SELECT format('column|%s|%s|%s|%s|%s|%s|%s|%s|storage=%s|stats=%s|compression=%s', r.name,
                  row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text || a.attgenerated::text,
                  CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text ELSE '' END,
                  a.attstorage, a.attstattarget, a.attcompression)
    FROM rel r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE r.relkind <> 'S'
    UNION ALL
    SELECT format('constraint|%s|%I|%s', r.name, con.conname, pg_get_constraintdef(con.oid))
    FROM pg_constraint con JOIN rel r ON r.oid = con.conrelid
    UNION ALL
    SELECT format('domain-constraint|%s|%I|%s', format_type(con.contypid, NULL), con.conname, pg_get_constraintdef(con.oid))
    FROM pg_constraint con JOIN pg_type t ON t.oid = con.contypid JOIN user_ns n ON n.oid = t.typnamespace
    UNION ALL
    SELECT format('index|%s|%s|clustered=%s', r.name, pg_get_indexdef(i.indexrelid), i.indisclustered)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid
    UNION ALL
    SELECT format('view|%s|%s', r.name, pg_get_viewdef(r.oid)) FROM rel r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence|%s|%s|%s|%s|%s|%s|%s|%s', r.name, format_type(s.seqtypid, NULL), s.seqstart,
                  s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
    UNION ALL
    SELECT format('sequence-owner|%s|%s.%I', r.name, t.name, a.attname)
    FROM rel r
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype IN ('a', 'i')
                    AND d.refclassid = 'pg_class'::regclass
    JOIN rel t ON t.oid = d.refobjid
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE r.relkind = 'S'
    UNION ALL
    SELECT format('partition|%s|%s|%s', c.name, p.name, pg_get_expr(k.relpartbound, k.oid))
    FROM pg_inherits i JOIN rel c ON c.oid = i.inhrelid JOIN rel p ON p.oid = i.inhparent
    JOIN pg_class k ON k.oid = i.inhrelid
    WHERE k.relispartition
    UNION ALL
    SELECT format('partition-key|%s|%s', r.name, pg_get_partkeydef(r.oid)) FROM rel r WHERE r.relkind = 'p'
    UNION ALL
    SELECT format('trigger|%s|%s|enabled=%s', r.name, pg_get_triggerdef(tg.oid), tg.tgenabled)
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT format('function|%s|%s', p.oid::regprocedure, pg_get_functiondef(p.oid))
    FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid)
    UNION ALL
    SELECT format('aggregate|%s|kind=%s|trans=%s|final=%s|combine=%s|serial=%s|deserial=%s|type=%s|init=%s|sortop=%s|finalextra=%s|finalmodify=%s',
                  p.oid::regprocedure, a.aggkind, a.aggtransfn::regproc, a.aggfinalfn::regproc,
                  a.aggcombinefn::regproc, a.aggserialfn::regproc, a.aggdeserialfn::regproc,
                  a.aggtranstype::regtype, coalesce(a.agginitval, '<null>'), a.aggsortop::regoperator,
                  a.aggfinalextra, a.aggfinalmodify)
    FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid JOIN user_ns n ON n.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid)
    UNION ALL
    SELECT format('enum|%s|%s', t.oid::regtype, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder))
    FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
    GROUP BY t.oid
    UNION ALL
    SELECT format('domain|%s|%s|%s|%s', t.oid::regtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                  coalesce(t.typdefault, ''))
    FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace WHERE t.typtype = 'd'
    UNION ALL
    SELECT format('rule|%s|%s|enabled=%s', r.name, pg_get_ruledef(rw.oid), rw.ev_enabled)
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class
    WHERE rw.rulename <> '_RETURN'
    UNION ALL
    SELECT format('policy|%I.%I|%I|%s|%s|%s|%s|%s', p.schemaname, p.tablename, p.policyname, p.cmd,
                  p.permissive, array_to_string(p.roles, ','), coalesce(p.qual, ''), coalesce(p.with_check, ''))
    FROM pg_policies p JOIN user_ns n ON n.nspname = p.schemaname
    UNION ALL
    -- Comments on user objects (system objects have oids below 16384; schema public too).
    SELECT format('comment|%s|%s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
    FROM pg_description d
    WHERE (d.objoid >= 16384 OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 'public'::regnamespace))
      AND NOT (d.classoid = 'pg_class'::regclass
               AND EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE c.oid = d.objoid AND (n.nspname LIKE 'pg\_temp%' OR n.nspname LIKE 'pg\_toast%')))
    UNION ALL
    SELECT format('inherits|%s|%s', c.name, p.name)
    FROM pg_inherits i JOIN rel c ON c.oid = i.inhrelid JOIN rel p ON p.oid = i.inhparent
    WHERE p.relkind <> 'p'
    UNION ALL
    SELECT format('statistics|%s', pg_get_statisticsobjdef(x.oid))
    FROM pg_statistic_ext x JOIN user_ns n ON n.oid = x.stxnamespace
    UNION ALL
    SELECT format('collation|%I.%I|%s|%s|%s|%s', n.nspname, c.collname, c.collprovider, c.collisdeterministic,
                  coalesce(c.collcollate, ''), coalesce(c.colliculocale, ''))
    FROM pg_collation c JOIN user_ns n ON n.oid = c.collnamespace
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_collation'::regclass AND e.objid = c.oid)
    UNION ALL
    SELECT format('operator|%s|%s|%s', o.oid::regoperator, o.oprcode::regproc, o.oprresult::regtype)
    FROM pg_operator o JOIN user_ns n ON n.oid = o.oprnamespace
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_operator'::regclass AND e.objid = o.oid)
    UNION ALL
    SELECT format('cast|%s|%s|%s|%s|%s', c.castsource::regtype, c.casttarget::regtype,
                  c.castfunc::regprocedure, c.castcontext, c.castmethod)
    FROM pg_cast c
    WHERE c.oid >= 16384
      AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_cast'::regclass AND e.objid = c.oid)
    UNION ALL
    SELECT format('event-trigger|%I|%s|%s|%s|%s', t.evtname, t.evtevent, t.evtfoid::regproc, t.evtenabled,
                  coalesce(array_to_string(t.evttags, ','), ''))
    FROM pg_event_trigger t
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_event_trigger'::regclass AND e.objid = t.oid)
    UNION ALL
    SELECT format('publication|%I|all=%s|%s%s%s%s', p.pubname, p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete,
                  p.pubtruncate)
    FROM pg_publication p
) lines
ORDER BY line COLLATE "C";
