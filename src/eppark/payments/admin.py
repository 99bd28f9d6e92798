"""Payments in the back office: notifications, code payments, refunds, daily reconciliations.

Every one of these is a record the payment paths write: read-only here for
everybody (superusers included), scoped to the user's lots. A notification or
a reconciliation with no lot (a trade that is no order of ours) is seen only by
those who see every lot. The one thing a person does here is re-run a day's
reconciliation (重新对账), as an operator of its lot or an admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from eppark.accounts.admin_scoping import LotScopedAdminMixin, LotScopedInlineMixin
from eppark.accounts.scoping import may_act_on_lot
from eppark.payments.models import (
    CodePayment,
    Notification,
    Reconciliation,
    ReconciliationLine,
    Refund,
    RefundState,
    Verdict,
)
from eppark.payments.providers.base import ProviderError, TradeState
from eppark.records.admin import ReadOnlyAdminMixin
from eppark.records.display import yuan

RED = "#ba2121"
GREEN = "#2e7d32"
AMBER = "#b26a00"


def badge(text: Any, colour: str) -> SafeString:
    """A small coloured label (differences, states that need a look)."""
    return format_html(
        '<span style="background:{};color:#fff;border-radius:8px;padding:1px 8px;'
        'white-space:nowrap">{}</span>',
        colour,
        text,
    )


def admin_link(obj: Any) -> SafeString | str:
    """A link to ``obj``'s back-office page if it has one; its name otherwise; — for none."""
    if obj is None:
        return "—"
    opts = obj._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(obj)
    return format_html('<a href="{}">{}</a>', url, obj)


PROVIDER_WORDS: dict[str, Any] = {
    "wechat": gettext_lazy("WeChat Pay"),
    "alipay": gettext_lazy("Alipay"),
    "sandbox": gettext_lazy("sandbox (test payments)"),
}

TRADE_STATE_WORDS: dict[str, Any] = {
    TradeState.SUCCESS: gettext_lazy("paid"),
    TradeState.REFUND: gettext_lazy("refunded"),
    TradeState.NOTPAY: gettext_lazy("not paid"),
    TradeState.CLOSED: gettext_lazy("closed"),
    TradeState.REVOKED: gettext_lazy("reversed"),
    TradeState.USERPAYING: gettext_lazy("waiting for the driver's confirmation"),
    TradeState.PAYERROR: gettext_lazy("declined"),
}


def provider_words(key: str) -> str:
    """A reconciliation's or order's provider in words: 微信支付, 沙箱 (微信支付)."""
    name, _sep, channel = key.partition("/")
    words = str(PROVIDER_WORDS.get(name, name or "—"))
    if channel:
        words = f"{words} · {PROVIDER_WORDS.get(channel, channel)}"
    return words


def order_state_words(state: str) -> str:
    """One of our order states in words (a reconciliation line keeps the code)."""
    from eppark.orders.models import OrderState

    if not state:
        return "—"
    try:
        return str(OrderState(state).label)
    except ValueError:
        return state


def trade_state_words(state: str) -> str:
    """A provider's trade state in words."""
    return str(TRADE_STATE_WORDS.get(state, state or "—"))


# -- inlines under an order ---------------------------------------------------------------------


class _ReadOnlyInline(LotScopedInlineMixin, admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        """Records are written by the payment paths only."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Nobody edits them."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Nobody deletes them."""
        return False


class NotificationInline(_ReadOnlyInline):
    """The provider's notifications of an order, and what each did."""

    model = Notification
    fk_name = "order"
    fields = ("received_at", "provider_name", "amount_yuan", "verdict", "transaction_id", "detail")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("provider"))
    def provider_name(self, obj: Notification) -> str:
        """The provider in words."""
        return provider_words(obj.provider)

    @admin.display(description=gettext_lazy("amount (yuan)"))
    def amount_yuan(self, obj: Notification) -> str:
        """The notified amount in yuan."""
        return yuan(obj.amount)


class CodePaymentInline(_ReadOnlyInline):
    """Payment codes shown at a robot for an order (masked)."""

    model = CodePayment
    fk_name = "order"
    fields = ("started_at", "gate", "channel", "code_masked", "state", "attempts", "detail")
    readonly_fields = fields


class RefundInline(_ReadOnlyInline):
    """Refunds of an order: who asked, why, and how it went."""

    model = Refund
    fk_name = "order"
    fields = (
        "requested_at",
        "out_refund_no",
        "amount_yuan",
        "state",
        "requested_by",
        "refund_reason",
        "finished_at",
        "detail",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("amount (yuan)"))
    def amount_yuan(self, obj: Refund) -> str:
        """The refunded amount in yuan."""
        return yuan(obj.amount)

    @admin.display(description=gettext_lazy("requested at"))
    def requested_at(self, obj: Refund) -> Any:
        """When the refund was asked."""
        return obj.created_at

    @admin.display(description=gettext_lazy("refund reason"))
    def refund_reason(self, obj: Refund) -> str:
        """Why the person refunded."""
        return obj.reason


# -- the records' own lists ---------------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Payment notifications as they arrived, and what each did to our order."""

    list_display = (
        "received_at",
        "provider_name",
        "out_trade_no",
        "order_link",
        "lot",
        "amount_yuan",
        "verdict_shown",
        "detail",
    )
    list_filter = ("verdict", "provider", "lot")
    search_fields = ("out_trade_no", "transaction_id")
    date_hierarchy = "received_at"
    list_select_related = ("lot", "order")
    fields = (
        "received_at",
        "provider_name",
        "out_trade_no",
        "transaction_id",
        "amount_yuan",
        "order_link",
        "lot",
        "verdict",
        "detail",
    )
    readonly_fields = ("provider_name", "amount_yuan", "order_link")

    @admin.display(description=gettext_lazy("provider"), ordering="provider")
    def provider_name(self, obj: Notification) -> str:
        """The provider in words."""
        return provider_words(obj.provider)

    @admin.display(description=gettext_lazy("amount (yuan)"), ordering="amount")
    def amount_yuan(self, obj: Notification) -> str:
        """The notified amount in yuan."""
        return yuan(obj.amount)

    @admin.display(description=gettext_lazy("order"), ordering="order")
    def order_link(self, obj: Notification) -> SafeString | str:
        """The order it was about."""
        return admin_link(obj.order)

    @admin.display(description=gettext_lazy("verdict"), ordering="verdict")
    def verdict_shown(self, obj: Notification) -> SafeString | str:
        """What it did; a mismatch or a refusal in red."""
        words = obj.get_verdict_display()
        if obj.verdict in (Verdict.MISMATCH, Verdict.REJECTED, Verdict.PAYS_LATE):
            return badge(words, RED)
        return str(words)


@admin.register(CodePayment)
class CodePaymentAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Payment codes shown at the robots' scanners (the code itself only masked)."""

    list_display = (
        "started_at",
        "lot",
        "gate",
        "channel",
        "code_masked",
        "order_link",
        "amount_yuan",
        "state",
        "attempts",
        "finished_at",
    )
    list_filter = ("state", "channel", "lot")
    search_fields = ("order__out_trade_no", "code_masked")
    date_hierarchy = "started_at"
    list_select_related = ("lot", "gate", "order")
    fields = (
        "started_at",
        "lot",
        "gate",
        "event_id",
        "channel",
        "code_masked",
        "order_link",
        "amount_yuan",
        "state",
        "attempts",
        "next_step_at",
        "finished_at",
        "detail",
    )
    readonly_fields = ("order_link", "amount_yuan")

    @admin.display(description=gettext_lazy("order"), ordering="order")
    def order_link(self, obj: CodePayment) -> SafeString | str:
        """The order the code paid for."""
        return admin_link(obj.order)

    @admin.display(description=gettext_lazy("amount (yuan)"))
    def amount_yuan(self, obj: CodePayment) -> str:
        """The order's amount in yuan."""
        return yuan(obj.order.amount)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Refunds asked from the back office: who, why, how much, and how it went."""

    list_display = (
        "requested_at",
        "out_refund_no",
        "order_link",
        "lot",
        "amount_yuan",
        "state_shown",
        "requested_by",
        "refund_reason",
        "finished_at",
    )
    list_filter = ("state", "lot")
    search_fields = ("out_refund_no", "order__out_trade_no")
    date_hierarchy = "created_at"
    list_select_related = ("lot", "order", "requested_by")
    fields = (
        "out_refund_no",
        "order_link",
        "lot",
        "amount_yuan",
        "state",
        "refund_reason",
        "requested_by",
        "requested_at",
        "finished_at",
        "provider_refund_id",
        "detail",
    )
    readonly_fields = ("order_link", "amount_yuan", "refund_reason", "requested_at")
    actions = ("recheck",)

    def has_recheck_permission(self, request: HttpRequest) -> bool:
        """Those who may refund (operators of the lot, admins) ask again."""
        return bool(request.user.has_perm("orders.change_order"))

    @admin.action(description=gettext_lazy("Ask the provider again"), permissions=["recheck"])
    def recheck(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        """Refunds still processing: ask the provider again under the same refund number."""
        from eppark.payments.refunds import recheck
        from eppark.records.errors import Refused

        settled = 0
        for row in queryset.filter(state=RefundState.REQUESTED):
            if not may_act_on_lot(request.user, row.lot_id):
                continue
            try:
                done = recheck(row)
            except Refused as refused:
                self.message_user(request, f"{row}: {refused.message}", messages.WARNING)
                continue
            if done.state != RefundState.REQUESTED:
                settled += 1
        self.message_user(
            request,
            _("Refunds settled: %(count)d.") % {"count": settled},
            messages.SUCCESS,
        )

    @admin.display(description=gettext_lazy("requested at"), ordering="created_at")
    def requested_at(self, obj: Refund) -> Any:
        """When the refund was asked."""
        return obj.created_at

    @admin.display(description=gettext_lazy("refund reason"))
    def refund_reason(self, obj: Refund) -> str:
        """Why the person refunded."""
        return obj.reason

    @admin.display(description=gettext_lazy("order"), ordering="order")
    def order_link(self, obj: Refund) -> SafeString | str:
        """The refunded order."""
        return admin_link(obj.order)

    @admin.display(description=gettext_lazy("amount (yuan)"), ordering="amount")
    def amount_yuan(self, obj: Refund) -> str:
        """The refunded amount in yuan."""
        return yuan(obj.amount)

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_shown(self, obj: Refund) -> SafeString:
        """The state in words: failed in red, still processing in amber."""
        colour = {RefundState.FAILED: RED, RefundState.REQUESTED: AMBER}.get(
            RefundState(obj.state), GREEN
        )
        return badge(obj.get_state_display(), colour)


# -- daily reconciliations ----------------------------------------------------------------------


class ReconciliationLineInline(_ReadOnlyInline):
    """The trades of a day that do not agree, each difference in words, amounts in yuan."""

    model = ReconciliationLine
    show_change_link = False
    fields = (
        "out_trade_no",
        "difference_shown",
        "ours_yuan",
        "ours_state_words",
        "theirs_yuan",
        "theirs_state_words",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("difference"))
    def difference_shown(self, obj: ReconciliationLine) -> SafeString:
        """The difference, in red."""
        return badge(obj.get_difference_display(), RED)

    @admin.display(description=gettext_lazy("our amount (yuan)"))
    def ours_yuan(self, obj: ReconciliationLine) -> str:
        """Our amount in yuan."""
        return yuan(obj.ours_amount)

    @admin.display(description=gettext_lazy("our state"))
    def ours_state_words(self, obj: ReconciliationLine) -> str:
        """Our order's state in words."""
        return order_state_words(obj.ours_state)

    @admin.display(description=gettext_lazy("provider's amount (yuan)"))
    def theirs_yuan(self, obj: ReconciliationLine) -> str:
        """The provider's amount in yuan."""
        return yuan(obj.theirs_amount)

    @admin.display(description=gettext_lazy("provider's state"))
    def theirs_state_words(self, obj: ReconciliationLine) -> str:
        """The provider's state in words."""
        return trade_state_words(obj.theirs_state)


class ProviderFilter(admin.SimpleListFilter):
    """The providers of the days the user sees, in words."""

    title = gettext_lazy("provider")
    parameter_name = "provider"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        """The providers of the visible rows."""
        keys = (
            model_admin.get_queryset(request)
            .order_by("provider")
            .values_list("provider", flat=True)
            .distinct()
        )
        return [(key, provider_words(key)) for key in keys]

    def queryset(self, request: Any, queryset: Any) -> Any:
        """The rows of the chosen provider."""
        if self.value():
            return queryset.filter(provider=self.value())
        return queryset


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Each lot's day: our payments against the provider's, differences in red."""

    list_display = (
        "day",
        "lot_shown",
        "provider_name",
        "ours_count",
        "ours_yuan",
        "theirs_count",
        "theirs_yuan",
        "differences_shown",
        "run_at",
    )
    list_display_links = ("day", "lot_shown")
    list_filter = ("lot", ProviderFilter)
    date_hierarchy = "day"
    list_select_related = ("lot",)
    fields = (
        "day",
        "lot_shown",
        "provider_name",
        "ours_count",
        "ours_yuan",
        "theirs_count",
        "theirs_yuan",
        "differences_shown",
        "run_at",
        "detail",
    )
    readonly_fields = (
        "lot_shown",
        "provider_name",
        "ours_yuan",
        "theirs_yuan",
        "differences_shown",
    )
    inlines = (ReconciliationLineInline,)
    actions = ("rerun",)

    @admin.display(description=gettext_lazy("lot"), ordering="lot__code")
    def lot_shown(self, obj: Reconciliation) -> str:
        """The lot, or the unmatched trades."""
        return str(obj.lot) if obj.lot_id is not None else _("unmatched trades (no order of ours)")

    @admin.display(description=gettext_lazy("provider"), ordering="provider")
    def provider_name(self, obj: Reconciliation) -> str:
        """The provider in words."""
        return provider_words(obj.provider)

    @admin.display(description=gettext_lazy("our total (yuan)"), ordering="ours_total")
    def ours_yuan(self, obj: Reconciliation) -> str:
        """Our total in yuan."""
        return yuan(obj.ours_total)

    @admin.display(description=gettext_lazy("provider's total (yuan)"), ordering="theirs_total")
    def theirs_yuan(self, obj: Reconciliation) -> str:
        """The provider's total in yuan."""
        return yuan(obj.theirs_total)

    @admin.display(description=gettext_lazy("differences"), ordering="differences")
    def differences_shown(self, obj: Reconciliation) -> SafeString:
        """A red badge with the count of differences; a green one when the day agrees."""
        if obj.differences:
            return badge(
                _("%(count)d difference(s)") % {"count": obj.differences},
                RED,
            )
        return badge(_("in agreement"), GREEN)

    # -- re-run ---------------------------------------------------------------------------------

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        """Operators of the lot and admins re-run a day (the model's change permission)."""
        opts = self.model._meta
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))

    @admin.action(description=gettext_lazy("Re-run the reconciliation"), permissions=["rerun"])
    def rerun(self, request: HttpRequest, queryset: QuerySet[Reconciliation]) -> None:
        """Fetch the provider's bill again and replace the selected days' lines."""
        from eppark.payments.reconcile import provider_for_key, reconcile

        now = timezone.now()
        done = 0
        for record in queryset.select_related("lot"):
            if record.lot_id is not None and not may_act_on_lot(request.user, record.lot_id):
                continue
            provider = provider_for_key(record.provider)
            if provider is None:
                self.message_user(
                    request,
                    _("%(record)s: its provider is no longer configured.") % {"record": record},
                    messages.ERROR,
                )
                continue
            try:
                reconcile(record.lot, record.day, provider, now)
            except ProviderError as error:
                self.message_user(
                    request,
                    _("%(record)s: the provider's bill is not available (%(why)s).")
                    % {"record": record, "why": error},
                    messages.ERROR,
                )
                continue
            done += 1
        self.message_user(
            request, _("Reconciliations re-run: %(count)d.") % {"count": done}, messages.SUCCESS
        )
