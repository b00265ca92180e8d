from django.contrib import admin

from apps.orders.models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "customer", "total", "placed_at")
    list_filter = ("tenant",)
    filter_horizontal = ("tags",)
    inlines = (OrderLineInline,)
