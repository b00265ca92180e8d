-- Remap a generic relation's object ids that point at an excluded table (a note about a user):
-- production's id -> the target's, through that table's natural-key map.
UPDATE :"stage" AS s
SET :"id_column" = CAST(m.dst::text AS :id_type)
FROM :"map" AS m
WHERE s.:"ct_column" = :'content_type'
  AND s.:"id_column"::text = m.src::text;
