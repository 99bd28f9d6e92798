"""Lots and gates in the back office."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.lots.models import Gate, Lot


class GateInline(admin.TabularInline):  # type: ignore[type-arg]
    """A lot's gates on the lot form."""

    model = Gate
    extra = 0
    fields = ("code", "name", "direction")


@admin.register(Lot)
class LotAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Lots: free spaces, whether visitors may enter, the tariff as text, emergency contact."""

    lot_path = "pk"
    list_display = (
        "name",
        "code",
        "capacity",
        "inside",
        "free",
        "visitors",
        "tariff_text",
        "emergency_contact_name",
        "emergency_contact_phone",
    )
    list_filter = ("temp_entry_confirmation",)
    search_fields = ("name", "code", "emergency_contact_name")
    readonly_fields = ("tariff_text", "created_at", "updated_at")
    inlines = (GateInline,)
    fieldsets = (
        (None, {"fields": ("code", "name", "capacity", "timezone")}),
        (
            _("rules"),
            {
                "fields": (
                    "temp_entry_confirmation",
                    "expired_grace_days",
                    "expired_payable_days",
                    "tariff",
                    "tariff_text",
                )
            },
        ),
        (
            _("location and contact"),
            {
                "fields": (
                    "latitude",
                    "longitude",
                    "emergency_contact_name",
                    "emergency_contact_phone",
                )
            },
        ),
        (_("record"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lot]:
        """Lots with their cars inside counted in the same query."""
        queryset: QuerySet[Lot] = super().get_queryset(request)
        return queryset.annotate(
            cars_inside_count=Count("stays", filter=Q(stays__exited_at__isnull=True))
        ).order_by("code")  # an aggregate drops Meta.ordering, and pages need an order

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Only staff who see every lot may create lots."""
        from eppark.accounts.scoping import sees_all_lots

        return super().has_add_permission(request) and sees_all_lots(request.user)

    @admin.display(description=_("cars inside"), ordering="cars_inside_count")
    def inside(self, lot: Lot) -> int:
        """Cars with an open stay."""
        return getattr(lot, "cars_inside_count", None) or lot.cars_inside()

    @admin.display(description=_("free spaces"))
    def free(self, lot: Lot) -> int:
        """Capacity minus cars inside, never negative."""
        return max(0, lot.capacity - self.inside(lot))

    @admin.display(description=_("visitors may enter"), boolean=True)
    def visitors(self, lot: Lot) -> bool:
        """Temp-entry confirmation off."""
        return lot.visitors_allowed


@admin.register(Gate)
class GateAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Gates: each lane in or out, with its robot."""

    list_display = ("name", "lot", "code", "direction", "robot")
    list_filter = ("direction", "lot")
    search_fields = ("name", "code", "lot__name")
    list_select_related = ("lot", "robot")
