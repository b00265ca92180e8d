-- A natural key column that is itself an id of another excluded table (auth_permission's
-- content type): translate it to the target's id before matching.
UPDATE :"keys" AS k
SET :"column" = m.dst
FROM :"map" AS m
WHERE k.:"column" = m.src;
