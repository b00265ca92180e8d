"""Deterministic data for the dbsync Django test project, loaded through the ORM.

    DJANGO_DB_NAME=... python seed.py prod     # "production": run after `manage.py migrate`
    DJANGO_DB_NAME=... python seed.py uat      # "UAT" (migrated with DJANGO_APPS_ORDER=reversed)

The database settings come from the environment (see djproject/settings.py). Every row has an
explicit primary key and fixed timestamps, so the same command gives the same database every
time; the sequences are then reset the way `manage.py sqlsequencereset` does.

Production
  Users admin (superuser), alice, bob, carol, dave, erin, frank, grace, heidi, ivan, qa_bot
  (ids 1-12, no 7; qa_bot only belongs to test tenants). Ten tenants: eight real ones (among
  them `testbed`, which `LIKE 'test_%'` matches) and two test tenants, 4 `test_demo` and
  9 `test_qa`. Tenant-scoped rows go to the tenants round-robin (row g belongs to tenant
  ((g - 1) % 10) + 1), so test tenants' rows sit between real ones in every id space. A global
  catalog (categories with a forward parent reference, 40 products, 7 tags). Orders with lines,
  shipments, tags (m2m), JSON notes; orders 50 and 100 deleted (gaps, sequence ahead of max(id)).
  Rush orders (multi-table inheritance) for orders 1, 4, 6, 11, 14, ... Notes (generic foreign
  keys) on orders, customers, suppliers, tenants and products; activities (a generic relation
  with a text key) on orders and UUID-keyed attachments; primary memberships (a conditional
  unique constraint) and preferences (keyed by their user) only for users UAT has, so that the
  sync's user remap makes none of them collide; an admin log, a session, a group.

UAT
  Its own users: uatadmin (superuser, id 1), qa_tester, bob (same id as production's), alice
  (another id), uat_zoe (UAT only), grace (another id); an extra stale content type. Two test
  tenants, 2 `test_alpha` and 5 `test_beta`, whose ids production uses for real tenants, with
  rows in every tenant table colliding with production's ids (attachments by UUID too), plus
  rows above 90,000,000 from bumped sequences; rush orders 2 and 11 (production's 11 is one too),
  activities on a test order and on the colliding attachment. UAT's own catalog rows used by those tenants:
  category 9 "UAT Fixtures", products 31 UAT-FIX-A and 32 UAT-FIX-B, tag 7 "uat-regression"
  (production uses those ids for other rows); category 12 "Toys", product 45 "P-005" and tag
  9 "promo", which production has under other ids. Stale copies of real tenants (1 acme,
  3 initech, and stark under id 11), tenant 12 `legacy`, and their rows: all to be replaced.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASE_TIME = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
UUID_NAMESPACE = uuid.UUID("5b2f6f0e-8a61-4d0c-9a57-2f1d1c1f0d10")
PASSWORD = "!seeded-unusable-password"  # fixed: make_password() would salt it at random


def at(hours: float, micro: int = 0) -> datetime:
    return BASE_TIME + timedelta(hours=hours, microseconds=micro)


def attachment_id(name: str) -> uuid.UUID:
    return uuid.uuid5(UUID_NAMESPACE, name)


# -- production ----------------------------------------------------------------------------------

PROD_USERS = [  # (id, username, superuser)
    (1, "admin", True),
    (2, "alice", False),
    (3, "bob", False),
    (4, "carol", False),
    (5, "dave", False),
    (6, "erin", False),
    (8, "frank", False),
    (9, "grace", False),
    (10, "heidi", False),
    (11, "ivan", False),
    (12, "qa_bot", False),
]
PROD_TENANTS = [  # (id, name, schema_name)
    (1, "Acme Corp", "acme"),
    (2, "Globex", "globex"),
    (3, "Initech", "initech"),
    (4, "Demo (test)", "test_demo"),
    (5, "Umbrella", "umbrella"),
    (6, "Testbed Labs", "testbed"),
    (7, "Stark Industries", "stark"),
    (8, "Wayne Enterprises", "wayne"),
    (9, "QA (test)", "test_qa"),
    (10, "Hooli", "hooli"),
]
PROD_MEMBERS = {  # tenant -> usernames, the first one the owner
    1: ["admin", "alice", "bob"],
    2: ["bob", "carol", "dave"],
    3: ["alice", "erin", "frank"],
    4: ["qa_bot", "alice"],
    5: ["grace", "heidi", "bob"],
    6: ["ivan", "carol"],
    7: ["dave", "erin", "grace"],
    8: ["frank", "heidi"],
    9: ["qa_bot", "bob"],
    10: ["alice", "ivan", "carol"],
}
PROD_PRIMARY = {(1, "alice"), (2, "bob"), (4, "qa_bot")}  # (tenant, username): is_primary
PROD_PREFERENCES = {"alice": "dark", "bob": "light", "qa_bot": "test"}  # primary key = the user
PROD_PROFILES = {  # username -> tenant
    "admin": 1, "alice": 1, "bob": 2, "carol": 2, "dave": 7, "erin": 3,
    "frank": 3, "grace": 5, "heidi": 8, "ivan": 10, "qa_bot": 4,
}
CATEGORIES = [  # (id, name, parent): 5's parent comes after it
    (1, "Hardware", None),
    (2, "Software", None),
    (3, "Tools", 1),
    (4, "Services", None),
    (5, "Garden", 8),
    (6, "Books", None),
    (7, "Food", None),
    (8, "Outdoor", None),
    (9, "Office", None),
    (10, "Toys", None),
]
TAGS = [(1, "urgent"), (2, "gift"), (3, "fragile"), (4, "bulk"), (5, "promo"), (6, "export"), (7, "priority")]
ORDER_NOTES: list[Any] = [
    None,
    {"gift": True, "message": "Grüße aus Köln 🎁"},
    {"lines": [1, None, "x"], "nested": {"a": {"b": []}}},
    {"memo": "line one\nline two\ttabbed \\ back 'quoted' \"double\""},
    [],
    {"cjk": "注文", "empty": ""},
    None,
]
N_SUPPLIERS, N_CUSTOMERS, N_ORDERS, N_NOTES, N_ATTACHMENTS = 30, 50, 100, 40, 20
DELETED_ORDERS = (50, 100)


def tenant_of(g: int) -> int:
    return ((g - 1) % 10) + 1


def seed_prod() -> None:
    from apps.catalog.models import Category, Product, Tag
    from apps.customers.models import Customer
    from apps.notes.models import Activity, Attachment, Note
    from apps.orders.models import Order, OrderLine, RushOrder, Shipment
    from apps.suppliers.models import Supplier
    from apps.tenants.models import Preferences, Profile, Tenant, TenantUser
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import Group, User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.models import Session

    users = {
        name: User(
            id=uid, username=name, password=PASSWORD, is_superuser=su, is_staff=su,
            email=f"{name}@prod.example", first_name=name.title(), date_joined=at(-1000 + uid),
        )
        for uid, name, su in PROD_USERS
    }
    User.objects.bulk_create(users.values())
    editors = Group.objects.create(id=1, name="editors")
    editors.user_set.add(users["alice"], users["bob"])

    Tenant.objects.bulk_create(
        Tenant(id=i, name=name, schema_name=schema, slug=schema.replace("_", "-"), created_at=at(-500 + i))
        for i, name, schema in PROD_TENANTS
    )
    memberships = []
    for tenant, names in PROD_MEMBERS.items():
        for k, name in enumerate(names):
            memberships.append(
                TenantUser(tenant_id=tenant, user=users[name], role="owner" if k == 0 else "member")
            )
    for i, m in enumerate(memberships, start=1):
        m.id = i
        m.is_primary = (m.tenant_id, m.user.username) in PROD_PRIMARY
    TenantUser.objects.bulk_create(memberships)
    Profile.objects.bulk_create(
        Profile(id=i, user=users[name], tenant_id=tenant, bio=f"{name}'s profile", timezone="Europe/Paris")
        for i, (name, tenant) in enumerate(PROD_PROFILES.items(), start=1)
    )
    Preferences.objects.bulk_create(
        Preferences(user=users[name], tenant_id=PROD_PROFILES[name], theme=theme)
        for name, theme in PROD_PREFERENCES.items()
    )

    Category.objects.bulk_create(Category(id=i, name=n, parent_id=p) for i, n, p in CATEGORIES)
    Product.objects.bulk_create(
        Product(id=i, sku=f"P-{i:03d}", name=f"Product {i}", category_id=tenant_of(i),
                price=Decimal(f"{i * 3}.{i % 100:02d}"))
        for i in range(1, 41)
    )
    Tag.objects.bulk_create(Tag(id=i, name=n) for i, n in TAGS)

    def member(tenant: int, k: int) -> User:
        names = PROD_MEMBERS[tenant]
        return users[names[k % len(names)]]

    Supplier.objects.bulk_create(
        Supplier(id=g, tenant_id=tenant_of(g), name=f"{PROD_TENANTS[tenant_of(g) - 1][1]} supplier {(g - 1) // 10}",
                 owner=member(tenant_of(g), g), created_by=None if g % 4 == 0 else member(tenant_of(g), 0))
        for g in range(1, N_SUPPLIERS + 1)
    )
    Customer.objects.bulk_create(
        Customer(id=g, tenant_id=tenant_of(g), name=f"Customer {g}", email=f"c{g}@{PROD_TENANTS[tenant_of(g) - 1][2]}.example",
                 owner=None if g % 5 == 0 else member(tenant_of(g), g), created_by=member(tenant_of(g), 1))
        for g in range(1, N_CUSTOMERS + 1)
    )
    orders = []
    for g in range(1, N_ORDERS + 1):
        t = tenant_of(g)
        orders.append(
            Order(
                id=g, tenant_id=t, customer_id=t + 10 * (g % 5),
                supplier_id=None if g % 3 == 0 else t + 10 * (g % 3),
                created_by=None if g % 7 == 0 else member(t, g),
                total=Decimal(f"{g * 17 % 1000}.{g % 100:02d}"), placed_at=at(g, g * 1013),
                notes=ORDER_NOTES[g % len(ORDER_NOTES)], status=["placed", "paid", "shipped"][g % 3],
            )
        )
    Order.objects.bulk_create(orders)
    for order in orders:
        if order.id % 10 in (1, 4, 6):
            RushOrder(order_ptr=order, deadline=order.placed_at + timedelta(days=1)).save_base(raw=True)
    through = Order.tags.through
    order_tags = []
    for g in range(1, N_ORDERS + 1):
        if g % 5 == 0:
            continue
        for tag in sorted({g % 7 + 1, g * 3 % 7 + 1}):
            order_tags.append(through(id=len(order_tags) + 1, order_id=g, tag_id=tag))
    through.objects.bulk_create(order_tags)
    lines, shipments = [], []
    for g in range(1, N_ORDERS + 1):
        for j in range(1 + g % 3):
            line_id = len(lines) + 1
            lines.append(
                OrderLine(id=line_id, order_id=g, product_id=(g * 7 + j * 11) % 40 + 1,
                          quantity=1 + (g + j) % 4, unit_price=Decimal(f"{(g + j) % 50}.99"))
            )
            if line_id % 2 == 0:
                shipments.append(
                    Shipment(id=len(shipments) + 1, order_line_id=line_id,
                             shipped_at=None if line_id % 6 == 0 else at(g + 24, line_id),
                             tracking=f"TRK{line_id:06d}")
                )
    OrderLine.objects.bulk_create(lines)
    Shipment.objects.bulk_create(shipments)

    ct = ContentType.objects.get_for_models(Order, Customer, Supplier, Tenant, Product, Attachment)
    notes = []
    for i in range(1, N_NOTES + 1):
        t = tenant_of(i)
        model, object_id = [(Order, t + 10 * (i % 4)), (Customer, t), (Supplier, t), (Tenant, t)][i % 4]
        notes.append(Note(id=i, tenant_id=t, content_type=ct[model], object_id=object_id,
                          body=f"note {i} on {model.__name__.lower()} {object_id}", created_at=at(i, i)))
    for i in range(N_NOTES + 1, N_NOTES + 6):  # remarks on global products
        notes.append(Note(id=i, tenant_id=tenant_of(i), content_type=ct[Product], object_id=i - N_NOTES,
                          body=f"note {i} on product {i - N_NOTES}", created_at=at(i, i)))
    Note.objects.bulk_create(notes)
    Attachment.objects.bulk_create(
        Attachment(id=attachment_id(f"att-{i}"), tenant_id=tenant_of(i),
                   order_id=None if i % 4 == 0 else tenant_of(i) + 10 * (i % 3),
                   filename=f"scan-{i}.pdf", size=1000 * i, uploaded_at=at(i, 7))
        for i in range(1, N_ATTACHMENTS + 1)
    )
    activities = [
        Activity(tenant_id=tenant_of(g), content_type=ct[Order], object_pk=str(g), verb="placed")
        for g in range(1, 31, 3)
    ] + [
        Activity(tenant_id=tenant_of(i), content_type=ct[Attachment], object_pk=str(attachment_id(f"att-{i}")),
                 verb="uploaded")
        for i in range(1, 11)
    ]
    for i, activity in enumerate(activities, start=1):
        activity.id = i
    Activity.objects.bulk_create(activities)

    LogEntry.objects.bulk_create(
        LogEntry(id=i, action_time=at(i), user=users["admin"], content_type=ct[Order], object_id=str(i),
                 object_repr=f"Order {i}", action_flag=ADDITION, change_message="[]")
        for i in range(1, 6)
    )
    Session.objects.create(session_key="prodsession0000000000000000000001", session_data="e30=",
                           expire_date=at(10000))

    reset_sequences()
    Order.objects.filter(id__in=DELETED_ORDERS).delete()  # cascades to lines, shipments, tags


# -- UAT -------------------------------------------------------------------------------------------

UAT_USERS = [(1, "uatadmin", True), (2, "qa_tester", False), (3, "bob", False), (4, "alice", False),
             (5, "uat_zoe", False), (6, "grace", False)]
UAT_TENANTS = [  # (id, name, schema_name, slug)
    (1, "Acme Corp (stale)", "acme", "acme"),
    (2, "Alpha (test)", "test_alpha", "test-alpha"),
    (3, "Initech (stale)", "initech", "initech"),
    (5, "Beta (test)", "test_beta", "test-beta"),
    (11, "Stark Industries (old id)", "stark", "stark"),
    (12, "Legacy", "legacy", "legacy"),
]
UAT_FREE = 90_000_001  # ids above UAT's bumped sequences: production never uses them


def seed_uat() -> None:
    from apps.catalog.models import Category, Product, Tag
    from apps.customers.models import Customer
    from apps.notes.models import Activity, Attachment, Note
    from apps.orders.models import Order, OrderLine, RushOrder, Shipment
    from apps.suppliers.models import Supplier
    from apps.tenants.models import Preferences, Profile, Tenant, TenantUser
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    User.objects.bulk_create(
        User(id=uid, username=name, password=PASSWORD, is_superuser=su, is_staff=su,
             email=f"{name}@uat.example", date_joined=at(-2000 + uid))
        for uid, name, su in UAT_USERS
    )
    ContentType.objects.create(app_label="apps_legacy", model="widget")  # a model removed long ago
    Tenant.objects.bulk_create(
        Tenant(id=i, name=name, schema_name=schema, slug=slug, created_at=at(-300 + i), is_active=i != 12)
        for i, name, schema, slug in UAT_TENANTS
    )
    TenantUser.objects.bulk_create([
        TenantUser(id=1, tenant_id=1, user_id=4, role="owner", is_primary=True),  # stale
        TenantUser(id=2, tenant_id=2, user_id=2, role="owner", is_primary=True),  # test_alpha: qa_tester
        TenantUser(id=3, tenant_id=2, user_id=3, role="member"),      # bob: production's globex (2) has bob
        TenantUser(id=4, tenant_id=2, user_id=1, role="viewer"),      # uatadmin
        TenantUser(id=5, tenant_id=5, user_id=5, role="owner", is_primary=True),  # test_beta: uat_zoe
        TenantUser(id=6, tenant_id=5, user_id=4, role="member"),      # alice
        TenantUser(id=7, tenant_id=11, user_id=6, role="owner"),      # stale
        TenantUser(id=UAT_FREE, tenant_id=12, user_id=3, role="member"),  # legacy
    ])
    Profile.objects.bulk_create([
        Profile(id=1, user_id=1, tenant_id=2, bio="UAT admin", timezone="UTC"),       # test_alpha
        Profile(id=2, user_id=2, tenant_id=2, bio="QA", timezone="UTC"),               # test_alpha
        Profile(id=3, user_id=5, tenant_id=5, bio="Zoë tests beta", timezone="Asia/Tokyo"),  # test_beta
        Profile(id=4, user_id=4, tenant_id=1, bio="stale alice", timezone="UTC"),     # stale acme
        Profile(id=5, user_id=6, tenant_id=11, bio="stale grace", timezone="UTC"),    # stale stark
    ])
    Preferences.objects.bulk_create([
        Preferences(user_id=2, tenant_id=2, theme="qa-contrast"),   # test_alpha
        Preferences(user_id=5, tenant_id=5, theme="solarized"),     # test_beta
        Preferences(user_id=4, tenant_id=1, theme="stale"),         # stale acme
    ])

    Category.objects.bulk_create([
        Category(id=1, name="Hardware"), Category(id=2, name="Software"), Category(id=3, name="Tools", parent_id=1),
        Category(id=4, name="Services"),
        Category(id=9, name="UAT Fixtures", parent_id=1),   # UAT's own; production's 9 is Office
        Category(id=12, name="Toys"),                        # production's Toys is 10
    ])
    Product.objects.bulk_create([
        *(Product(id=i, sku=f"P-{i:03d}", name=f"Product {i} (stale)", category_id=1, price=Decimal("1.00"))
          for i in range(1, 5)),
        Product(id=31, sku="UAT-FIX-A", name="UAT fixture A", category_id=9, price=Decimal("0.01")),
        Product(id=32, sku="UAT-FIX-B", name="UAT fixture B", category_id=12, price=Decimal("0.02")),
        Product(id=45, sku="P-005", name="Product 5 (UAT id)", category_id=2, price=Decimal("5.00")),
    ])
    Tag.objects.bulk_create([Tag(id=1, name="urgent"), Tag(id=2, name="gift"), Tag(id=7, name="uat-regression"),
                             Tag(id=9, name="promo")])

    Supplier.objects.bulk_create([
        Supplier(id=1, tenant_id=1, name="Acme supplier (stale)", owner_id=4),
        Supplier(id=2, tenant_id=2, name="Alpha supplier A", owner_id=2, created_by_id=1),
        Supplier(id=4, tenant_id=2, name="Alpha supplier B", owner_id=None, created_by_id=2),
        Supplier(id=UAT_FREE, tenant_id=5, name="Beta supplier", owner_id=5),
    ])
    Customer.objects.bulk_create([
        Customer(id=1, tenant_id=1, name="Stale customer", email="stale@acme.example"),
        Customer(id=5, tenant_id=2, name="Alpha customer 1", email="a1@alpha.example", owner_id=2),
        Customer(id=9, tenant_id=2, name="Alpha customer 2", email="a2@alpha.example", created_by_id=1),
        Customer(id=15, tenant_id=5, name="Beta customer 1", email="b1@beta.example", owner_id=5),
        Customer(id=UAT_FREE, tenant_id=5, name="Beta customer 2", email="b2@beta.example", owner_id=4),
    ])
    Order.objects.bulk_create([
        Order(id=1, tenant_id=1, customer_id=1, total=Decimal("1.00"), placed_at=at(-5)),  # stale
        Order(id=2, tenant_id=2, customer_id=5, supplier_id=2, created_by_id=2, total=Decimal("123.45"),
              placed_at=at(-48, 1), notes={"qa": "regression run #1", "ok": True}, status="paid"),
        Order(id=3, tenant_id=2, customer_id=9, supplier_id=4, created_by_id=None, total=Decimal("9.99"),
              placed_at=at(-47, 2), notes=None),
        Order(id=11, tenant_id=5, customer_id=15, supplier_id=UAT_FREE, created_by_id=5, total=Decimal("77.00"),
              placed_at=at(-46, 3), notes=["β", None], status="shipped"),
        Order(id=UAT_FREE, tenant_id=5, customer_id=UAT_FREE, supplier_id=None, created_by_id=4,
              total=Decimal("0.50"), placed_at=at(-45, 4), notes={}),
    ])
    for order_id, deadline in ((1, at(-4)), (2, at(-24, 5)), (11, at(-22, 6))):  # 11: production's 11 is rush too
        RushOrder(order_ptr=Order.objects.get(id=order_id), deadline=deadline).save_base(raw=True)
    through = Order.tags.through
    through.objects.bulk_create([
        through(id=1, order_id=1, tag_id=1),          # stale
        through(id=2, order_id=2, tag_id=2),          # gift: production's too, same id
        through(id=3, order_id=2, tag_id=7),          # uat-regression: UAT's own
        through(id=4, order_id=3, tag_id=9),          # promo: production's is 5
        through(id=5, order_id=11, tag_id=1),
        through(id=UAT_FREE, order_id=UAT_FREE, tag_id=7),
    ])
    OrderLine.objects.bulk_create([
        OrderLine(id=1, order_id=1, product_id=1, quantity=1, unit_price=Decimal("1.00")),  # stale
        OrderLine(id=2, order_id=2, product_id=31, quantity=2, unit_price=Decimal("10.00")),
        OrderLine(id=3, order_id=2, product_id=45, quantity=1, unit_price=Decimal("5.00")),
        OrderLine(id=4, order_id=3, product_id=32, quantity=3, unit_price=Decimal("3.33")),
        OrderLine(id=5, order_id=11, product_id=2, quantity=7, unit_price=Decimal("11.00")),
        OrderLine(id=UAT_FREE, order_id=UAT_FREE, product_id=31, quantity=1, unit_price=Decimal("0.50")),
    ])
    Shipment.objects.bulk_create([
        Shipment(id=1, order_line_id=2, shipped_at=at(-40), tracking="UAT-TRK-1"),
        Shipment(id=2, order_line_id=5, shipped_at=None, tracking="UAT-TRK-2"),
        Shipment(id=3, order_line_id=1, shipped_at=None, tracking="stale"),
        Shipment(id=UAT_FREE, order_line_id=UAT_FREE, shipped_at=at(-39, 9), tracking="UAT-TRK-3"),
    ])
    ct = ContentType.objects.get_for_models(Order, Customer, Supplier, Tenant, Product, Attachment)
    Note.objects.bulk_create([
        Note(id=1, tenant_id=2, content_type=ct[Order], object_id=2, body="alpha: on order 2", created_at=at(-30)),
        Note(id=2, tenant_id=2, content_type=ct[Customer], object_id=5, body="alpha: on customer 5",
             created_at=at(-29)),
        Note(id=3, tenant_id=2, content_type=ct[Supplier], object_id=2, body="alpha: on supplier 2",
             created_at=at(-28)),
        Note(id=4, tenant_id=2, content_type=ct[Product], object_id=31, body="alpha: on UAT-FIX-A",
             created_at=at(-27)),
        Note(id=5, tenant_id=2, content_type=ct[Tenant], object_id=2, body="alpha: on the tenant itself",
             created_at=at(-26)),
        Note(id=6, tenant_id=5, content_type=ct[Order], object_id=11, body="beta: on order 11", created_at=at(-25)),
        Note(id=7, tenant_id=1, content_type=ct[Order], object_id=1, body="stale note", created_at=at(-24)),
        Note(id=UAT_FREE, tenant_id=5, content_type=ct[Customer], object_id=UAT_FREE,
             body="beta: on customer 90000001", created_at=at(-23)),
    ])
    Attachment.objects.bulk_create([
        Attachment(id=attachment_id("att-1"), tenant_id=1, order_id=1, filename="stale.pdf", size=1,
                   uploaded_at=at(-20)),
        Attachment(id=attachment_id("att-3"), tenant_id=2, order_id=2, filename="alpha.pdf", size=2,
                   uploaded_at=at(-19)),   # production's att-3 belongs to initech: a UUID collision
        Attachment(id=attachment_id("uat-1"), tenant_id=5, order_id=11, filename="beta.pdf", size=3,
                   uploaded_at=at(-18)),
    ])
    Activity.objects.bulk_create([
        Activity(id=1, tenant_id=1, content_type=ct[Order], object_pk="1", verb="stale"),
        Activity(id=2, tenant_id=2, content_type=ct[Order], object_pk="2", verb="alpha placed"),
        Activity(id=3, tenant_id=2, content_type=ct[Attachment], object_pk=str(attachment_id("att-3")),
                 verb="alpha uploaded"),   # a text key naming a UUID that gets re-keyed
        Activity(id=UAT_FREE, tenant_id=5, content_type=ct[Order], object_pk=str(UAT_FREE), verb="beta placed"),
    ])
    reset_sequences()


def reset_sequences() -> None:
    """What `manage.py sqlsequencereset` prints for every app, run (sequences at max(id))."""
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import connection

    statements = connection.ops.sequence_reset_sql(no_style(), apps.get_models(include_auto_created=True))
    with connection.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("prod", "uat"):
        print("usage: seed.py prod|uat", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")
    import django

    django.setup()
    from django.db import transaction

    with transaction.atomic():
        if argv[1] == "prod":
            seed_prod()
        else:
            seed_uat()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
