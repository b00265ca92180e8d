-- Keep a target row of a global table that a surviving row references (a preserved row or a
-- row of a table dbsync does not write) when production has no row with the same key: add it
-- to the table's preserved set so the reference still holds after the replace.
INSERT INTO :"set"
SELECT g.tableoid, g.ctid, :columns
FROM :relation AS g
WHERE EXISTS (SELECT 1 FROM :referrer AS r WHERE :match)
  AND NOT EXISTS (SELECT 1 FROM :"stage" AS s WHERE :stage_match)
  AND NOT EXISTS (SELECT 1 FROM :"set" AS x
                  WHERE x.dbsync_tableoid = g.tableoid AND x.dbsync_ctid = g.ctid);
