-- The primary key and unique constraints of a table that a direct load drops before its COPY
-- and adds again after it, from pg_get_constraintdef (a sorted build plus one uniqueness check
-- instead of an index insertion a row). Only those that definition recreates exactly, as for
-- sql/select_rebuildable_indexes.sql, and none that another object depends on (a view that
-- groups by the key; the run's foreign keys are suspended by now, so they do not count).
SELECT format('%I', k.conname) AS name, pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint AS k
JOIN pg_index AS i ON i.indexrelid = k.conindid
JOIN pg_class AS c ON c.oid = k.conindid
WHERE k.conrelid = :'table'::regclass
  AND k.contype IN ('p', 'u')
  AND NOT i.indisclustered AND NOT i.indisreplident
  AND c.reltablespace = 0
  AND obj_description(k.oid, 'pg_constraint') IS NULL
  AND obj_description(k.conindid, 'pg_class') IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = k.conindid AND a.attstattarget > 0)
  AND NOT EXISTS (SELECT 1 FROM pg_trigger AS t WHERE t.tgrelid = k.conrelid AND t.tgdeferrable)
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.deptype = 'n'
                    AND ((d.refclassid = 'pg_constraint'::regclass AND d.refobjid = k.oid)
                         OR (d.refclassid = 'pg_class'::regclass AND d.refobjid = k.conindid)))
ORDER BY k.contype, k.conname;
