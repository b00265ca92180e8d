-- Rows whose foreign key points at no row (MATCH SIMPLE: a key with a NULL is not checked).
SELECT count(*) AS violations
FROM :"table" AS c
WHERE :not_null
  AND NOT EXISTS (SELECT 1 FROM :"ref_table" AS p WHERE :match);
