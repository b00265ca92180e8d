-- Remove from a staging table the rows collected in a set.
DELETE FROM :"stage" AS s
USING :"set" AS x
WHERE x.dbsync_ctid = s.ctid;
