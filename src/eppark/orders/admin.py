"""Orders in the back office."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from eppark.accounts.scoping import LotScopedAdminMixin
from eppark.orders.models import Order


@admin.register(Order)
class OrderAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Temp, monthly and unplated orders with their payment state."""

    list_display = (
        "out_trade_no",
        "kind",
        "lot",
        "plate",
        "yuan",
        "state",
        "channel",
        "created_at",
        "paid_at",
    )
    list_filter = ("kind", "state", "channel", "lot")
    search_fields = ("out_trade_no", "plate", "transaction_id")
    date_hierarchy = "created_at"
    list_select_related = ("lot",)
    readonly_fields = ("out_trade_no", "transaction_id", "created_at", "paid_at")

    @admin.display(description=_("amount (yuan)"), ordering="amount")
    def yuan(self, order: Order) -> str:
        """The amount in 元."""
        return order.amount_yuan
