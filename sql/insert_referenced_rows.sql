-- Collect target rows of a global table that a surviving row references (a preserved row, or
-- a row of a table dbsync does not write), so the reference can still hold after the replace.
-- :relation is the live table, or a set of its rows copied before it was emptied; :tableoid and
-- :ctid name where its rows came from (g.tableoid and g.ctid, or the set's dbsync_ columns).
-- :unless is empty, or a condition that skips rows production already has under the same key.
INSERT INTO :"set"
SELECT :tableoid, :ctid, :columns
FROM :relation AS g
WHERE EXISTS (SELECT 1 FROM :referrer AS r WHERE :match)
  :unless
  AND NOT EXISTS (SELECT 1 FROM :"set" AS x
                  WHERE x.dbsync_tableoid = :tableoid AND x.dbsync_ctid = :ctid);
