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
    SELECT c.oid, c.relkind, c.relpersistence, format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
)
SELECT line FROM (
    SELECT format('schema|%I', nspname) AS line FROM user_ns
    WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = user_ns.oid)
    UNION ALL
    SELECT format('extension|%s|%s', e.extname, e.extversion) FROM pg_extension e WHERE e.extname <> 'plpgsql'
    UNION ALL
    SELECT format('relation|%s|%s|%s', r.name, r.relkind, r.relpersistence) FROM rel r
    UNION ALL
    SELECT format('column|%s|%s|%s|%s|%s|%s|%s|%s', r.name,
                  row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text || a.attgenerated::text,
                  CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text ELSE '' END)
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
    SELECT format('index|%s|%s', r.name, pg_get_indexdef(i.indexrelid))
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
    UNION ALL
    SELECT format('partition-key|%s|%s', r.name, pg_get_partkeydef(r.oid)) FROM rel r WHERE r.relkind = 'p'
    UNION ALL
    SELECT format('trigger|%s|%s', r.name, pg_get_triggerdef(tg.oid))
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT format('function|%s|%s', p.oid::regprocedure, pg_get_functiondef(p.oid))
    FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid)
    UNION ALL
    SELECT format('aggregate|%s|%s|%s', p.oid::regprocedure, a.aggtransfn::regproc, a.aggfinalfn::regproc)
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
    SELECT format('rule|%I.%I|%s', r.schemaname, r.tablename, r.definition)
    FROM pg_rules r JOIN user_ns n ON n.nspname = r.schemaname
    UNION ALL
    SELECT format('policy|%I.%I|%I|%s|%s|%s', p.schemaname, p.tablename, p.policyname, p.cmd,
                  coalesce(p.qual, ''), coalesce(p.with_check, ''))
    FROM pg_policies p JOIN user_ns n ON n.nspname = p.schemaname
    UNION ALL
    SELECT format('inherits|%s|%s', c.name, p.name)
    FROM pg_inherits i JOIN rel c ON c.oid = i.inhrelid JOIN rel p ON p.oid = i.inhparent
    WHERE p.relkind <> 'p'
) lines
ORDER BY line;
