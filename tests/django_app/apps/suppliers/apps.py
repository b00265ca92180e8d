from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "apps.suppliers"
    label = "apps_suppliers"
    verbose_name = "Suppliers"
