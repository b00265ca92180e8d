from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "apps.customers"
    label = "apps_customers"
    verbose_name = "Customers"
