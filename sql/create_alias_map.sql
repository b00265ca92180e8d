-- Referenced global rows that production has under another id (equal on a unique key, such as a
-- name or a SKU): old target id -> production's id. References are re-pointed to production's row.
CREATE TEMP TABLE :"alias" ON COMMIT DROP AS
SELECT DISTINCT ON (r.:"pk") r.:"pk" AS old, s.:"pk" AS new
FROM :"set" AS r
JOIN :"stage" AS s ON :any_key
ORDER BY r.:"pk", s.:"pk";
