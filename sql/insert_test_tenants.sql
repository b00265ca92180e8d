-- Seed a set with the test tenants: rows of the tenant table whose test column starts with the
-- test prefix (compared as text, so no LIKE wildcard in the prefix can misfire).
INSERT INTO :"set"
SELECT t.tableoid, t.ctid, :columns
FROM :relation AS t
WHERE left(t.:"test_column"::text, length(:'prefix')) = :'prefix';
