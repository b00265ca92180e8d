-- Grow a set along one foreign key: add the rows of the child relation that reference a row
-- already in the parent's set (and are not in the child's set yet). Repeated over every edge
-- until nothing is added, this collects everything that belongs to the seeded rows.
INSERT INTO :"child_set"
SELECT c.tableoid, c.ctid, :columns
FROM :relation AS c
WHERE EXISTS (SELECT 1 FROM :"parent_set" AS p WHERE :match)
  AND NOT EXISTS (SELECT 1 FROM :"child_set" AS x
                  WHERE x.dbsync_tableoid = c.tableoid AND x.dbsync_ctid = c.ctid);
