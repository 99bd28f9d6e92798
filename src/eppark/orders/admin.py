"""Orders in the back office."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.orders.models import Order, OrderState
from eppark.payments.admin import (
    RED,
    CodePaymentInline,
    NotificationInline,
    RefundInline,
    admin_link,
    badge,
    provider_words,
)
from eppark.payments.models import RefundState
from eppark.records.admin import AuditedAdminMixin, ObjectAction, ReasonForm
from eppark.records.display import yuan


def _run_refund(order: Order, user: Any, data: dict[str, Any]) -> str:
    """Refund through the order's provider (``eppark.payments.refunds``); refusals say why."""
    from eppark.payments.refunds import refund

    done = refund(order, user, data["reason"])
    if done.state == RefundState.SUCCEEDED:
        return _("Order %(number)s refunded (%(amount)s).") % {
            "number": order.out_trade_no,
            "amount": yuan(done.amount),
        }
    return _(
        "Refund %(number)s of %(amount)s asked: the provider is still processing it; "
        "the order is refunded once the provider confirms (at the latest in the day's "
        "reconciliation)."
    ) % {"number": done.out_refund_no, "amount": yuan(done.amount)}


class NeedsReviewFilter(admin.SimpleListFilter):
    """Orders a payment flagged for a person's look (mismatch, paid after closing)."""

    title = _("needs review")
    parameter_name = "review"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, Any]]:
        """Flagged or not."""
        return [("yes", _("needs review")), ("no", _("in order"))]

    def queryset(self, request: Any, queryset: Any) -> Any:
        """The flagged orders, or the others."""
        if self.value() == "yes":
            return queryset.filter(needs_review=True)
        if self.value() == "no":
            return queryset.filter(needs_review=False)
        return queryset


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
        "state_shown",
        "channel",
        "created_at",
        "paid_at",
    )
    list_filter = (NeedsReviewFilter, "kind", "state", "channel", "lot")
    search_fields = ("out_trade_no", "plate", "transaction_id")
    date_hierarchy = "created_at"
    list_select_related = ("lot",)
    fields = (
        "out_trade_no",
        "kind",
        "lot",
        "plate",
        "stay_link",
        "pass_link",
        "ticket_link",
        "gate",
        "yuan",
        "paid_yuan",
        "state_shown",
        "review",
        "channel",
        "provider_name",
        "transaction_id",
        "payer",
        "created_at",
        "priced_at",
        "expires_at",
        "paid_at",
        "closed_at",
    )
    readonly_fields = (
        "yuan",
        "paid_yuan",
        "state_shown",
        "review",
        "provider_name",
        "stay_link",
        "pass_link",
        "ticket_link",
        "created_at",
    )
    inlines = (NotificationInline, CodePaymentInline, RefundInline)
    object_actions = (REFUND,)
    money_fields = {"amount": _("amount (yuan)"), "paid_amount": _("paid amount (yuan)")}

    @admin.display(description=_("amount (yuan)"), ordering="amount")
    def yuan(self, order: Order) -> str:
        """The amount in yuan: ¥5.00."""
        return yuan(order.amount)

    @admin.display(description=_("paid amount (yuan)"), ordering="paid_amount")
    def paid_yuan(self, order: Order) -> str:
        """What the provider said it charged, in yuan."""
        return yuan(order.paid_amount)

    @admin.display(description=_("state"), ordering="state")
    def state_shown(self, order: Order) -> SafeString | str:
        """The state in words; a red badge beside it when the order needs review."""
        words = order.get_state_display()
        if order.needs_review:
            return format_html("{} {}", words, badge(_("needs review"), RED))
        return str(words)

    @admin.display(description=_("needs review"))
    def review(self, order: Order) -> SafeString | str:
        """Why a payment flagged the order, in red; — when it is in order."""
        if not order.needs_review:
            return "—"
        return badge(order.review_note or _("needs review"), RED)

    @admin.display(description=_("provider"), ordering="provider")
    def provider_name(self, order: Order) -> str:
        """The provider in words."""
        return provider_words(order.provider) if order.provider else "—"

    @admin.display(description=_("stay"))
    def stay_link(self, order: Order) -> SafeString | str:
        """The stay the order pays for."""
        return admin_link(order.stay)

    @admin.display(description=_("monthly pass"))
    def pass_link(self, order: Order) -> SafeString | str:
        """The pass the order renews."""
        return admin_link(order.monthly_pass)

    @admin.display(description=_("unplated ticket"))
    def ticket_link(self, order: Order) -> SafeString | str:
        """The unplated ticket the order pays for."""
        return admin_link(order.ticket)
