"""Orders in the back office."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.orders import actions
from eppark.orders.models import Order, OrderState
from eppark.records.admin import AuditedAdminMixin, ObjectAction, ReasonForm
from eppark.records.display import yuan


def _run_refund(order: Order, user: Any, data: dict[str, Any]) -> str:
    refunded = actions.refund(order, user, data["reason"])
    return _("Order %(number)s refunded (%(amount)s).") % {
        "number": refunded.out_trade_no,
        "amount": yuan(refunded.amount),
    }


REFUND = ObjectAction(
    slug="refund",
    label=_("Refund"),
    form=ReasonForm,
    run=_run_refund,
    shown=lambda order: order.state == OrderState.PAID,
)


@admin.register(Order)
class OrderAdmin(AuditedAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Temp, monthly and unplated orders with their payment state (read-only; refund by action)."""

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
    fields = (
        "out_trade_no",
        "kind",
        "lot",
        "plate",
        "stay",
        "monthly_pass",
        "yuan",
        "state",
        "channel",
        "transaction_id",
        "created_at",
        "paid_at",
    )
    readonly_fields = ("yuan", "created_at")
    object_actions = (REFUND,)
    money_fields = {"amount": _("amount (yuan)")}

    @admin.display(description=_("amount (yuan)"), ordering="amount")
    def yuan(self, order: Order) -> str:
        """The amount in yuan: ¥5.00."""
        return yuan(order.amount)
