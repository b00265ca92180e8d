-- Remove from the stage (a temporary staging table, or the synced table itself when the rows
-- were loaded straight into it) the rows collected in a set; returns the count and digest of
-- what was removed (sql/select_sync_digest.sql's hash), which the content proof subtracts.
WITH gone AS (
    DELETE FROM :stage AS s
    USING :"set" AS x
    WHERE x.dbsync_ctid = s.ctid
      AND x.dbsync_tableoid = s.tableoid
    RETURNING :returned
)
SELECT count(*) AS rows,
       (0 - coalesce(sum(hashtextextended(ROW(:row)::text, 0)), 0))::text AS digest
FROM gone AS c;
