-- Sequences that feed a column of a table in the given schemas: owned sequences (serial,
-- identity) and sequences named in a column default (nextval('...')).
-- psql -v schemas='{public}' -f select_catalog_sequences.sql
SELECT DISTINCT
       tn.nspname AS schema,
       t.relname AS table,
       a.attname AS column,
       sn.nspname AS seq_schema,
       s.relname AS seq_name,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       sq.seqmax AS seq_max,
       sq.seqmin AS seq_min,
       sq.seqincrement AS increment
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_sequence sq ON sq.seqrelid = s.oid
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND tn.nspname = ANY (:'schemas'::text[])
UNION
SELECT DISTINCT
       tn.nspname, t.relname, a.attname, sn.nspname, s.relname,
       format_type(a.atttypid, a.atttypmod), sq.seqmax, sq.seqmin, sq.seqincrement
FROM pg_attrdef ad
JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid = 'pg_class'::regclass
JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_sequence sq ON sq.seqrelid = s.oid
JOIN pg_class t ON t.oid = ad.adrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ad.adnum
WHERE tn.nspname = ANY (:'schemas'::text[])
ORDER BY 1, 2, 3;
