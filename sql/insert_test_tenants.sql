-- Seed a set with the test tenants: rows of the tenant table that the config's test condition
-- selects: its test column, compared as text, starts with the test prefix or equals one of the
-- test values (in psql, e.g. \set is_test 'left(t.schema_name::text, 5) = ''test_''').
INSERT INTO :"set"
SELECT t.tableoid, t.ctid, :columns
FROM :relation AS t
WHERE :is_test;
