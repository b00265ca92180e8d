"""`manage.py orm_probe`: read the database through the ORM and print what it finds as JSON.

The dbsync tests run it before and after a sync: every model can be counted, and every test
tenant's data (memberships, profiles, preferences, orders with their lines, shipments, tags,
attachments and rush-order part, notes and activities with the object their generic foreign key
resolves to) is described by values, never by
ids, so re-keyed rows compare equal.
"""

import json
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import BaseCommand

from apps.notes.models import Activity, Note
from apps.tenants.models import Tenant


def describe(obj: Any) -> str | None:
    if obj is None:
        return None
    return f"{obj._meta.label_lower}: {obj}"


def rush_deadline(order: Any) -> str | None:
    """The deadline of a rush order (multi-table inheritance: the child row), else None."""
    try:
        return str(order.rushorder.deadline.isoformat())
    except ObjectDoesNotExist:
        return None


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    orders = []
    for order in tenant.orders.select_related("customer", "supplier", "created_by", "rushorder").prefetch_related(
        "tags", "lines__product", "lines__shipments", "attachments"
    ):
        orders.append(
            {
                "customer": order.customer.email,
                "supplier": order.supplier.name if order.supplier else None,
                "created_by": order.created_by.username if order.created_by else None,
                "total": str(order.total),
                "placed_at": order.placed_at.isoformat(),
                "status": order.status,
                "rush_deadline": rush_deadline(order),
                "notes": order.notes,
                "tags": sorted(tag.name for tag in order.tags.all()),
                "lines": sorted(
                    [
                        line.product.sku,
                        line.quantity,
                        str(line.unit_price),
                        sorted(s.tracking for s in line.shipments.all()),
                    ]
                    for line in order.lines.all()
                ),
                "attachments": sorted(a.filename for a in order.attachments.all()),
            }
        )
    return {
        "name": tenant.name,
        "members": sorted(
            [m.user.username, m.role, m.is_primary] for m in tenant.memberships.select_related("user")
        ),
        "preferences": sorted([p.user.username, p.theme] for p in tenant.preferences.select_related("user")),
        "profiles": sorted([p.user.username, p.bio, p.timezone] for p in tenant.profiles.select_related("user")),
        "suppliers": sorted(
            [s.name, s.owner.username if s.owner else None] for s in tenant.suppliers.select_related("owner")
        ),
        "customers": sorted(c.email for c in tenant.customers.all()),
        "orders": sorted(orders, key=lambda o: (o["placed_at"], o["total"])),
        "notes": sorted([n.body, describe(n.content_object)] for n in tenant.notes.all()),
        "activities": sorted([a.verb, describe(a.content_object)] for a in tenant.activities.all()),
        "attachments": sorted([a.filename, a.size] for a in tenant.attachments.all()),
    }


class Command(BaseCommand):
    help = "Print model counts and the test tenants' data, read through the ORM, as JSON."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {m._meta.db_table: m.objects.count() for m in apps.get_models(include_auto_created=True)}
        tenants = Tenant.objects.filter(schema_name__startswith="test_").order_by("schema_name")
        report = {
            "counts": counts,
            "test_tenants": {t.schema_name: tenant_data(t) for t in tenants},
            "unresolved": sorted(
                [*(n.body for n in Note.objects.all() if n.content_object is None),
                 *(a.verb for a in Activity.objects.all() if a.content_object is None)]
            ),
        }
        self.stdout.write(json.dumps(report, indent=1, sort_keys=True))
