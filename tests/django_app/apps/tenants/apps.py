from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "apps_tenants"
    verbose_name = "Tenants"
    # The oldest app of the project: its keys are still 32-bit integers.
    default_auto_field = "django.db.models.AutoField"
