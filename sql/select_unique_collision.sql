-- One preserved row whose unique key (columns or expressions, under the key's predicate) an
-- incoming row shares: both cannot exist, so the run is refused before it writes, naming it.
SELECT p.*
FROM (SELECT :items FROM :"preserved" WHERE :predicate) AS p
WHERE :not_null
  AND EXISTS (SELECT 1 FROM (SELECT :items FROM :"stage" WHERE :predicate) AS s WHERE :match)
LIMIT 1;
