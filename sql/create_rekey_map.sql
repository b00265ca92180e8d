-- Fresh ids for preserved rows whose primary key production now also uses: old -> new.
CREATE TEMP TABLE :"rekey" ON COMMIT DROP AS
SELECT p.:"pk" AS old, :new_id AS new
FROM :"preserved" AS p
WHERE EXISTS (SELECT 1 FROM :"stage" AS s WHERE s.:"pk" = p.:"pk");
