"""Orders (订单): what a driver owes for a stay, a pass renewal or an unplated exit."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from eppark.records.history import PeopleHistory


class OrderKind(models.TextChoices):
    """What an order pays for."""

    TEMP = "temp", _("temp parking")
    MONTHLY = "monthly", _("monthly pass")
    UNPLATED = "unplated", _("unplated exit")


class OrderState(models.TextChoices):
    """Where an order stands."""

    PENDING = "pending", _("pending")
    PAID = "paid", _("paid")
    CLOSED = "closed", _("closed")
    REFUNDED = "refunded", _("refunded")


class Channel(models.TextChoices):
    """How an order was paid."""

    WECHAT = "wechat", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    CASH = "cash", _("cash")
    AGENT = "agent", _("waived by an agent")


class Order(models.Model):
    """An amount owed, in fen, and whether and how it was paid."""

    kind = models.CharField(_("kind"), max_length=16, choices=OrderKind.choices)
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="orders", verbose_name=_("lot")
    )
    plate = models.CharField(_("plate"), max_length=16, blank=True, db_index=True)
    stay = models.ForeignKey(
        "stays.Stay",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("stay"),
    )
    monthly_pass = models.ForeignKey(
        "passes.MonthlyPass",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("monthly pass"),
    )
    amount = models.PositiveIntegerField(_("amount (fen)"))
    state = models.CharField(
        _("state"), max_length=16, choices=OrderState.choices, default=OrderState.PENDING
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, blank=True)
    out_trade_no = models.CharField(_("trade number"), max_length=32, unique=True)
    transaction_id = models.CharField(_("payment transaction"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    # people's changes only (named actions in orders.actions)
    history = PeopleHistory()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def amount_yuan(self) -> str:
        """The amount as 元 with two decimals."""
        return f"{self.amount / 100:.2f}"
