-- Fresh ids for preserved rows whose primary key production now also uses: old -> new.
-- :in_use holds for a row p whose key production's rows have (EXISTS in the staged rows), or
-- that a generic reference among production's copied rows names.
CREATE TEMP TABLE :"rekey" ON COMMIT DROP AS
SELECT p.:"pk" AS old, :new_id AS new
FROM :"preserved" AS p
WHERE :in_use;
