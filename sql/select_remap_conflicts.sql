-- Staged rows that collide on a unique key once remapped, with each other or with a preserved
-- row. The key's items (columns or expressions) are evaluated in each branch as k1..kn, under
-- the key's predicate when it is a partial unique index. In each group of equal keys the
-- preserved row wins, then the lowest physical address; every other staged row is returned.
SELECT r.s_ctid
FROM (SELECT u.s_ctid,
             row_number() OVER (PARTITION BY :keys ORDER BY u.preserved DESC, u.s_ctid) AS n
      FROM (SELECT NULL::tid AS s_ctid, true AS preserved, :items FROM :"preserved" WHERE :predicate
            UNION ALL
            SELECT ctid, false, :items FROM :"stage" WHERE :predicate) AS u
      WHERE :not_null) AS r
WHERE r.n > 1 AND r.s_ctid IS NOT NULL;
