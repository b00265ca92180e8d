-- The digest (sql/select_sync_digest.sql's) of exactly the rows sql/copy_out_filtered_rows.sql
-- sends, as it sends them (remapped), and how many rows it leaves out as production's test
-- tenants', in one scan.
-- OFFSET 0 keeps the subquery a subquery: pulled up, its dbsync_excluded expression would be
-- copied into each of the three FILTER clauses below, each with its own hashed subplans that
-- rebuild the test tenants' key sets (measured: 0.83 s instead of 0.36 s for a 340k-row table
-- three references below the tenants).
:with_clause
SELECT count(*) FILTER (WHERE NOT e.dbsync_excluded) AS rows,
       coalesce(sum(hashtextextended(ROW(:row)::text, 0)) FILTER (WHERE NOT e.dbsync_excluded), 0)::text
           AS digest,
       count(*) FILTER (WHERE e.dbsync_excluded) AS excluded
FROM (SELECT :columns, :excluded AS dbsync_excluded FROM :relation AS c :joins OFFSET 0) AS e;
