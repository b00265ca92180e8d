-- Apply a re-key map to one column of a preserved set (its primary key or a reference to it).
UPDATE :"preserved" AS p
SET :"column" = k.new
FROM :"rekey" AS k
WHERE p.:"column" = k.old;
