-- Collect target rows of a global table that a surviving row references (a preserved row, or
-- a row of a table dbsync does not write), so the reference can still hold after the replace.
-- :unless is empty, or a condition that skips rows production already has under the same key.
INSERT INTO :"set"
SELECT g.tableoid, g.ctid, :columns
FROM :relation AS g
WHERE EXISTS (SELECT 1 FROM :referrer AS r WHERE :match)
  :unless
  AND NOT EXISTS (SELECT 1 FROM :"set" AS x
                  WHERE x.dbsync_tableoid = g.tableoid AND x.dbsync_ctid = g.ctid);
