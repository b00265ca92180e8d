-- Remap a generic relation's object ids that point at an excluded table (a note about a user):
-- production's id -> the target's, through that table's natural-key map. Returns the count and
-- the change of the stage's digest, like sql/update_remap_column.sql.
WITH changed AS (
    UPDATE :stage AS s
    SET :"id_column" = CAST(m.dst::text AS :id_type)
    FROM :"map" AS m
    WHERE s.:"ct_column" = :'content_type'
      AND s.:"id_column"::text = m.src::text
    RETURNING :returned
)
SELECT count(*) AS rows,
       (coalesce(sum(hashtextextended(ROW(:new_row)::text, 0)), 0)
        - coalesce(sum(hashtextextended(ROW(:old_row)::text, 0)), 0))::text AS digest
FROM changed AS c;
