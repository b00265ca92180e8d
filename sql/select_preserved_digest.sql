-- Digest of a table's preserved rows as they are after the load, with re-keyed ids turned
-- back into the ids they had: it must equal the digest taken before anything changed.
SELECT count(*) AS rows,
       coalesce(sum(('x' || substr(md5(ROW(:restored)::text), 1, 16))::bit(64)::bigint), 0)::text AS digest
FROM :relation AS t
JOIN :"preserved" AS p ON :on
:joins;
