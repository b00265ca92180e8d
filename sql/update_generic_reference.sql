-- Follow a re-key (or a re-pointing) through a generic relation: preserved rows whose content
-- type names the re-keyed table and whose object id is an old id get the new id.
UPDATE :"preserved" AS p
SET :"id_column" = CAST(k.new::text AS :id_type)
FROM :"map" AS k
WHERE p.:"ct_column" = :'content_type'
  AND p.:"id_column"::text = k.old::text;
