import uuid

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from apps.orders.models import Order
from apps.tenants.models import Tenant


class Note(models.Model):
    """A remark on any object (an order, a customer, a supplier, a tenant, a product)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="notes")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = (models.Index(fields=["content_type", "object_id"]),)


class Attachment(models.Model):
    """Files: keyed by UUID, as uploads often are."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="attachments")
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="attachments")
    filename = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.filename


class Activity(models.Model):
    """A generic relation with a text object key (as django-contrib-comments, guardian...)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="activities")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_pk = models.CharField(max_length=64)
    content_object = GenericForeignKey("content_type", "object_pk")
    verb = models.CharField(max_length=50)
