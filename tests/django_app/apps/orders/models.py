from django.conf import settings
from django.db import models

from apps.catalog.models import Product, Tag
from apps.customers.models import Customer
from apps.suppliers.models import Supplier
from apps.tenants.models import Tenant


class Order(models.Model):
    STATUSES = (("placed", "Placed"), ("paid", "Paid"), ("shipped", "Shipped"), ("cancelled", "Cancelled"))

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="orders")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    supplier = models.ForeignKey(Supplier, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    total = models.DecimalField(max_digits=12, decimal_places=2)
    placed_at = models.DateTimeField()
    notes = models.JSONField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="orders")
    status = models.CharField(max_length=16, choices=STATUSES, default="placed")  # added later

    class Meta:
        indexes = (models.Index(fields=["tenant", "-placed_at"]),)

    def __str__(self) -> str:
        return f"order of {self.customer} for {self.total}"


class OrderLine(models.Model):
    """Belongs to a tenant only through its order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)


class Shipment(models.Model):
    """Belongs to a tenant through its order line's order (two foreign keys away)."""

    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="shipments")
    shipped_at = models.DateTimeField(null=True, blank=True)
    tracking = models.CharField(max_length=64)


class RushOrder(Order):
    """Multi-table inheritance: the primary key is also a foreign key to the parent order."""

    deadline = models.DateTimeField()
