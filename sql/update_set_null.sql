-- Set the remapped columns of some stage rows to NULL (on_remap_conflict = "set_null"). Returns
-- the count and the change of the stage's digest: both sub-statements see the stage as it was
-- before the UPDATE, so "before" hashes the old rows and "after" the rows as rewritten.
WITH before AS (
    SELECT coalesce(sum(hashtextextended(ROW(:row)::text, 0)), 0) AS digest
    FROM :stage AS s
    WHERE s.ctid = ANY (:ctids)
),
after AS (
    UPDATE :stage AS s
    SET :assignments
    WHERE s.ctid = ANY (:ctids)
    RETURNING :returned
)
SELECT (SELECT count(*) FROM after) AS rows,
       ((SELECT coalesce(sum(hashtextextended(ROW(:after_row)::text, 0)), 0) FROM after AS c)
        - (SELECT digest FROM before))::text AS digest;
