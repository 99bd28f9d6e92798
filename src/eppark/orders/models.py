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
    """Where an order stands (the moves are ``eppark.domain.order_states``'s)."""

    CREATED = "created", _("created")
    PAYING = "paying", _("paying")
    PAID = "paid", _("paid")
    CLOSED = "closed", _("closed")
    REFUNDED = "refunded", _("refunded")


class Channel(models.TextChoices):
    """How an order was paid."""

    WECHAT = "wechat", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    SANDBOX = "sandbox", _("sandbox (test payments)")
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
        _("state"), max_length=16, choices=OrderState.choices, default=OrderState.CREATED
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, blank=True)
    provider = models.CharField(
        _("provider"), max_length=16, blank=True, help_text=_("sandbox, wechat or alipay")
    )
    out_trade_no = models.CharField(_("trade number"), max_length=32, unique=True)
    transaction_id = models.CharField(_("payment transaction"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    priced_at = models.DateTimeField(_("priced"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    paid_amount = models.PositiveIntegerField(_("paid amount (fen)"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    months = models.PositiveSmallIntegerField(_("months renewed"), null=True, blank=True)
    ticket = models.ForeignKey(
        "stays.UnplatedTicket",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("unplated ticket"),
    )
    gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("gate"),
        help_text=_("The gate whose QR code or scanner started the order."),
    )
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("gate visit"),
    )
    payer = models.CharField(
        _("payer"), max_length=128, blank=True, help_text=_("WeChat/Alipay user id or phone")
    )
    needs_review = models.BooleanField(_("needs review"), default=False)
    review_note = models.CharField(_("review note"), max_length=256, blank=True)
    # people's changes only (named actions in orders.actions)
    history = PeopleHistory()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=models.Q(state__in=["created", "paying"]),
                name="order_open_by_expiry",
            ),
            models.Index(fields=["lot", "paid_at"], name="order_paid_by_lot"),
        ]

    def __str__(self) -> str:
        return self.out_trade_no

    @property
    def amount_yuan(self) -> str:
        """The amount as 元 with two decimals."""
        return f"{self.amount / 100:.2f}"
