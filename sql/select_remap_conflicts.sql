-- Staged rows that collide on a unique key once remapped, with each other or with a preserved
-- row. In each group of equal keys the preserved row wins, then the lowest physical address;
-- every other staged row of the group is returned.
SELECT r.s_ctid
FROM (SELECT u.s_ctid,
             row_number() OVER (PARTITION BY :key ORDER BY u.preserved DESC, u.s_ctid) AS n
      FROM (SELECT NULL::tid AS s_ctid, true AS preserved, :key FROM :"preserved"
            UNION ALL
            SELECT s.ctid, false, :key FROM :"stage" AS s) AS u
      WHERE :not_null) AS r
WHERE r.n > 1 AND r.s_ctid IS NOT NULL;
