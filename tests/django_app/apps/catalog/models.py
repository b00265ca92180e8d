from django.db import models
from django.db.models.functions import Lower


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    price = models.DecimalField(max_digits=12, decimal_places=2)

    def __str__(self) -> str:
        return self.sku


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        # Case-insensitive uniqueness: an expression index ("urgent" and "Urgent" cannot coexist).
        constraints = (models.UniqueConstraint(Lower("name"), name="tag_name_ci_unique"),)

    def __str__(self) -> str:
        return self.name
