from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "apps.notes"
    label = "apps_notes"
    verbose_name = "Notes"
