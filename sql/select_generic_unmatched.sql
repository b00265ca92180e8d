-- Staged rows of a generic relation pointing at an excluded table's row that has no target
-- counterpart (no natural-key match and no fallback): they cannot be remapped.
SELECT count(*)
FROM :"stage" AS s
LEFT JOIN :"map" AS m ON m.src::text = s.:"id_column"::text
WHERE s.:"ct_column" = :'content_type'
  AND (m.src IS NULL OR m.dst IS NULL);
