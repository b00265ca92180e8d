from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "apps_catalog"
    verbose_name = "Catalog"
