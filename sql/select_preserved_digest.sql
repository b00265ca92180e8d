-- Digest of a table's preserved rows as they are after the load, with re-keyed ids turned
-- back into the ids they had: it must equal the digest taken before anything changed
-- (sql/select_sync_digest.sql's hash).
SELECT count(*) AS rows,
       coalesce(sum(hashtextextended(ROW(:restored)::text, 0)), 0)::text AS digest
FROM :relation AS t
JOIN :"preserved" AS p ON :on
:joins;
