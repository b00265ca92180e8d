-- Source id -> target id of an excluded table, matched by natural key. An unmatched id maps to
-- NULL here (matched = false); the caller applies the fallback.
CREATE TEMP TABLE :"map" ON COMMIT DROP AS
SELECT DISTINCT ON (k.src) k.src, t.:"pk" AS dst, (t.:"pk" IS NOT NULL) AS matched
FROM :"keys" AS k
LEFT JOIN :relation AS t ON :match
ORDER BY k.src, t.:"pk";
