"""What payments leave on record: notifications, code payments, refunds, reconciliations.

Records people rely on: written by the payment paths, read-only in the back
office, never edited by hand. The sandbox's own books (``SandboxTrade``,
``SandboxDelivery``) play the provider's side when no real provider is configured.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Verdict(models.TextChoices):
    """What a provider's report did to our order (``eppark.domain.billing.Verdict``)."""

    PAYS = "pays", _("paid the order")
    PAYS_LATE = "pays_late", _("paid a closed order (review)")
    DUPLICATE = "duplicate", _("duplicate: nothing changed")
    MISMATCH = "mismatch", _("mismatch: flagged for review")
    UNKNOWN_ORDER = "unknown_order", _("no such order")
    NOT_PAID = "not_paid", _("not a payment")
    REJECTED = "rejected", _("refused: bad signature or stale")


class Notification(models.Model):
    """One payment notification as it arrived, and what it did (append-only)."""

    provider = models.CharField(_("provider"), max_length=16)
    received_at = models.DateTimeField(_("received"), db_index=True)
    out_trade_no = models.CharField(_("trade number"), max_length=64, blank=True, db_index=True)
    transaction_id = models.CharField(_("payment transaction"), max_length=64, blank=True)
    amount = models.PositiveIntegerField(_("amount (fen)"), null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("order"),
    )
    lot = models.ForeignKey(
        "lots.Lot",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lot"),
    )
    verdict = models.CharField(_("verdict"), max_length=16, choices=Verdict.choices)
    detail = models.CharField(_("detail"), max_length=256, blank=True)

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.provider} {self.out_trade_no} ({self.get_verdict_display()})"


class CodeState(models.TextChoices):
    """Where a payment code shown at a robot stands."""

    QUEUED = "queued", _("queued")
    USERPAYING = "userpaying", _("waiting for the driver's confirmation")
    CHECKING = "checking", _("checking after an error")
    SUCCEEDED = "succeeded", _("paid")
    DECLINED = "declined", _("declined")
    REVERSED = "reversed", _("reversed")
    FAILED = "failed", _("failed")


class CodePayment(models.Model):
    """A payment code (付款码) a driver showed a robot's scanner, and its way to a result."""

    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        related_name="code_payments",
        verbose_name=_("order"),
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    gate = models.ForeignKey(
        "lots.Gate", on_delete=models.PROTECT, related_name="+", verbose_name=_("gate")
    )
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("gate visit"),
    )
    event_id = models.CharField(_("robot event"), max_length=64, unique=True)
    channel = models.CharField(_("channel"), max_length=16)
    code = models.CharField(
        _("payment code"), max_length=32, blank=True, help_text=_("Erased once settled.")
    )
    code_masked = models.CharField(_("payment code"), max_length=32)
    state = models.CharField(
        _("state"), max_length=16, choices=CodeState.choices, default=CodeState.QUEUED
    )
    started_at = models.DateTimeField(_("started"))
    next_step_at = models.DateTimeField(_("next step"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("provider calls"), default=0)
    detail = models.CharField(_("detail"), max_length=256, blank=True)

    class Meta:
        verbose_name = _("code payment")
        verbose_name_plural = _("code payments")
        ordering = ["-started_at"]
        indexes = [
            models.Index(
                fields=["next_step_at"],
                condition=models.Q(finished_at__isnull=True),
                name="codepay_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code_masked} → {self.order}"


class RefundState(models.TextChoices):
    """Where a refund stands at the provider."""

    REQUESTED = "requested", _("requested")
    SUCCEEDED = "succeeded", _("refunded")
    FAILED = "failed", _("failed")


class Refund(models.Model):
    """Money given back for a paid order, asked by a person with a reason."""

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order")
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    out_refund_no = models.CharField(_("refund number"), max_length=64, unique=True)
    amount = models.PositiveIntegerField(_("amount (fen)"))
    state = models.CharField(
        _("state"), max_length=16, choices=RefundState.choices, default=RefundState.REQUESTED
    )
    reason = models.CharField(_("reason"), max_length=256)
    requested_by = models.ForeignKey(
        "auth.User",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    detail = models.CharField(_("detail"), max_length=256, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.out_refund_no


class Reconciliation(models.Model):
    """One lot's day of payments: our paid orders against the provider's records."""

    lot = models.ForeignKey(
        "lots.Lot",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lot"),
        help_text=_("Empty: trades of the provider's bill that are no order of ours."),
    )
    day = models.DateField(_("day"))
    provider = models.CharField(_("provider"), max_length=16)
    ours_count = models.PositiveIntegerField(_("our payments"), default=0)
    ours_total = models.PositiveIntegerField(_("our total (fen)"), default=0)
    theirs_count = models.PositiveIntegerField(_("provider's payments"), default=0)
    theirs_total = models.PositiveIntegerField(_("provider's total (fen)"), default=0)
    differences = models.PositiveIntegerField(_("differences"), default=0)
    run_at = models.DateTimeField(_("checked"))
    detail = models.CharField(_("detail"), max_length=256, blank=True)

    class Meta:
        verbose_name = _("daily reconciliation")
        verbose_name_plural = _("daily reconciliations")
        ordering = ["-day", "lot__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["lot", "day", "provider"], name="one_reconciliation_per_lot_day"
            )
        ]

    def __str__(self) -> str:
        where = str(self.lot) if self.lot_id is not None else str(_("unmatched trades"))
        return f"{where} {self.day} ({self.provider})"


class Difference(models.TextChoices):
    """How our record and the provider's differ for one trade."""

    MISSING_OURS = "missing_ours", _("paid at the provider, not paid here")
    MISSING_THEIRS = "missing_theirs", _("paid here, unknown to the provider")
    AMOUNT = "amount", _("amounts differ")
    STATE = "state", _("states differ")


class ReconciliationLine(models.Model):
    """One trade that does not agree between our books and the provider's."""

    reconciliation = models.ForeignKey(
        Reconciliation, on_delete=models.CASCADE, related_name="lines", verbose_name=_("day")
    )
    out_trade_no = models.CharField(_("trade number"), max_length=64)
    difference = models.CharField(_("difference"), max_length=16, choices=Difference.choices)
    ours_amount = models.IntegerField(_("our amount (fen)"), null=True, blank=True)
    ours_state = models.CharField(_("our state"), max_length=16, blank=True)
    theirs_amount = models.IntegerField(_("provider's amount (fen)"), null=True, blank=True)
    theirs_state = models.CharField(_("provider's state"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("reconciliation difference")
        verbose_name_plural = _("reconciliation differences")
        ordering = ["out_trade_no"]

    def __str__(self) -> str:
        return f"{self.out_trade_no}: {self.get_difference_display()}"


class SandboxTrade(models.Model):
    """The sandbox provider's own record of a trade (plays WeChat Pay / Alipay locally)."""

    out_trade_no = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=16)
    amount = models.PositiveIntegerField()
    description = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16, default="NOTPAY")
    transaction_id = models.CharField(max_length=64, blank=True)
    payer = models.CharField(max_length=128, blank=True)
    notify_url = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    confirms_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded = models.PositiveIntegerField(default=0)
    refunds = models.JSONField(default=dict, blank=True)  # out_refund_no → fen (idempotent refunds)

    class Meta:
        verbose_name = _("sandbox trade")
        verbose_name_plural = _("sandbox trades")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.state}"


class SandboxDelivery(models.Model):
    """A notification the sandbox still has to send (it retries like the real providers)."""

    trade = models.ForeignKey(SandboxTrade, on_delete=models.CASCADE, related_name="deliveries")
    url = models.CharField(max_length=512)
    body = models.TextField()
    headers = models.JSONField(default=dict)
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=256, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(delivered_at__isnull=True),
                name="sandbox_delivery_due",
            )
        ]
