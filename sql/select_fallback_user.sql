-- The user that references to unknown users fall back to: the named one, else the first
-- superuser by id.
SELECT t.:"pk"
FROM :relation AS t
WHERE (:'username'::text IS NOT NULL AND t.:"key_column"::text = :'username'::text)
   OR (:'username'::text IS NULL AND t.:"superuser_column")
ORDER BY t.:"pk"
LIMIT 1;
