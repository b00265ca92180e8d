from django.contrib import admin

from apps.tenants.models import Profile, Tenant, TenantUser


class TenantUserInline(admin.TabularInline):
    model = TenantUser
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("schema_name", "name", "created_at")
    search_fields = ("name", "schema_name")
    inlines = (TenantUserInline,)


admin.site.register(Profile)
