-- An empty set of rows of a relation, each remembered with its physical address so that a row
-- is added only once: used for the rows of production's test tenants (dropped from the stage),
-- UAT's preserved rows, and rows dropped because a remap made them collide.
CREATE TEMP TABLE :"set" ON COMMIT DROP AS
SELECT t.tableoid AS dbsync_tableoid, t.ctid AS dbsync_ctid, :columns
FROM :relation AS t WITH NO DATA;
