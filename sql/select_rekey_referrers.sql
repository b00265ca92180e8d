-- Rows of a table dbsync does not write that reference a row about to be re-keyed.
SELECT count(*) FROM :relation AS o JOIN :"rekey" AS k ON o.:"column" = k.old;
