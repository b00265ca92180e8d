from django.conf import settings
from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    """A customer organisation. A tenant whose schema_name starts with "test_" is a test tenant."""

    name = models.CharField(max_length=100)
    schema_name = models.CharField(max_length=63, unique=True)
    slug = models.SlugField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)  # added by a later migration

    def __str__(self) -> str:
        return self.schema_name


class TenantUser(models.Model):
    ROLES = (("owner", "Owner"), ("member", "Member"), ("viewer", "Viewer"))

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=ROLES, default="member")
    is_primary = models.BooleanField(default=False)  # the tenant a user lands in

    class Meta:
        unique_together = (("tenant", "user"),)
        # A conditional unique constraint: PostgreSQL gets a partial unique index, not a constraint.
        constraints = (
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(is_primary=True), name="one_primary_tenant_per_user"
            ),
        )


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="profiles")
    bio = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, default="UTC")


class Preferences(models.Model):
    """Django's documented way to extend User: a one-to-one link that is the primary key."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="preferences")
    theme = models.CharField(max_length=20, default="light")
