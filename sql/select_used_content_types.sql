-- The content types a generic relation's rows actually name, in production's snapshot: only
-- those can link a row to a parent, so only those become edges of the source filter (two
-- tables with generic relations would otherwise reference each other, a cycle that keeps the
-- COPY from leaving production's test tenants out). Django indexes the column.
-- psql -v relation=apps_notes_note -v ct_column=content_type_id -f select_used_content_types.sql
SELECT DISTINCT t.:"ct_column" FROM :relation AS t WHERE t.:"ct_column" IS NOT NULL;
