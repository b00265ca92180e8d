-- The content types of a database: id, app label and model (Django's django_content_type).
SELECT t.id, t.app_label, t.model FROM :relation AS t;
