-- Rewrite a staged column from source ids to target ids. Returns how many rows changed and
-- the change of the stage's digest (new rows' hashes minus old rows' hashes; an old row is the
-- new one with m.src in place of the column), which the content proof adds.
WITH changed AS (
    UPDATE :stage AS s
    SET :"column" = m.dst
    FROM :"map" AS m
    WHERE s.:"column" = m.src
      AND s.:"column" IS DISTINCT FROM m.dst
    RETURNING :returned
)
SELECT count(*) AS rows,
       (coalesce(sum(hashtextextended(ROW(:new_row)::text, 0)), 0)
        - coalesce(sum(hashtextextended(ROW(:old_row)::text, 0)), 0))::text AS digest
FROM changed AS c;
