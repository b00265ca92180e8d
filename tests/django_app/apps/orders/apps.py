from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "apps_orders"
    verbose_name = "Orders"
