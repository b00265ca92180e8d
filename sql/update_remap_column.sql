-- Rewrite a staged column from source ids to target ids.
UPDATE :"stage" AS s
SET :"column" = m.dst
FROM :"map" AS m
WHERE s.:"column" = m.src
  AND s.:"column" IS DISTINCT FROM m.dst;
