"""A lot (停车场) is one closed car park; a gate (道口) is one lane in or out of it."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from eppark.domain.decide import LotPolicy
from eppark.domain.errors import BadInput


def validate_tariff(value: Any) -> None:
    """A tariff rule the domain's tariff engine accepts ({} for a lot that charges nothing)."""
    from eppark.domain.tariff import parse_rule

    if value == {}:
        return
    try:
        parse_rule(value)
    except BadInput as exc:
        raise ValidationError(str(exc)) from None


def validate_timezone(value: str) -> None:
    """An IANA time zone name such as Asia/Shanghai."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("%(zone)s is not a time zone"), params={"zone": value}) from None


class Lot(models.Model):
    """A closed car park with its own gates, tariff, passes and rules for visitors."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128)
    temp_entry_confirmation = models.BooleanField(
        _("temp-entry confirmation"),
        default=False,
        help_text=_("On: cars without a monthly pass may not enter (临停确认进场)."),
    )
    capacity = models.PositiveIntegerField(_("capacity"), default=0)
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    emergency_contact_name = models.CharField(_("emergency contact"), max_length=64, blank=True)
    emergency_contact_phone = models.CharField(_("emergency phone"), max_length=32, blank=True)
    tariff = models.JSONField(_("tariff"), default=dict, validators=[validate_tariff])
    expired_grace_days = models.PositiveSmallIntegerField(
        _("expired pass: days the exit still opens"), default=3
    )
    expired_payable_days = models.PositiveSmallIntegerField(
        _("expired pass: days it can still be renewed"), default=7
    )
    monthly_price = models.PositiveIntegerField(
        _("monthly pass price (fen per month)"),
        default=0,
        help_text=_("0: passes cannot be renewed by phone."),
    )
    renewal_offers = models.JSONField(
        _("renewal offers"),
        default=list,
        blank=True,
        help_text=_('Optional: [{"months": 3, "price": 85000}, …]; empty: 1, 3, 6, 12 months.'),
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_timezone]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The thresholds must be ordered: grace ≤ payable."""
        if self.expired_grace_days > self.expired_payable_days:
            raise ValidationError(
                {"expired_grace_days": _("must not exceed the days it can still be renewed")}
            )

    @property
    def policy(self) -> LotPolicy:
        """The settings the gate decision depends on."""
        return LotPolicy(
            self.temp_entry_confirmation, self.expired_grace_days, self.expired_payable_days
        )

    @property
    def tariff_text(self) -> str:
        """The tariff as the driver reads it (e.g. 30分钟内免费，1小时内5元…)."""
        from eppark.domain.tariff import describe, parse_rule

        if not self.tariff:
            return str(_("free parking"))
        try:
            return describe(parse_rule(self.tariff))
        except BadInput as exc:
            return f"⚠ {exc}"

    @property
    def visitors_allowed(self) -> bool:
        """Whether cars without a pass may enter (temp-entry confirmation off)."""
        return not self.temp_entry_confirmation

    def cars_inside(self) -> int:
        """Cars with an open stay in this lot."""
        return self.stays.filter(exited_at__isnull=True).count()

    def free_spaces(self) -> int:
        """Capacity minus cars inside, never negative."""
        return max(0, self.capacity - self.cars_inside())


class Direction(models.TextChoices):
    """Which way a gate lets cars through."""

    ENTRY = "entry", _("entry")
    EXIT = "exit", _("exit")


class OpeningChannel(models.TextChoices):
    """How an open reaches a gate's barrier."""

    AUTO = "auto", _("automatic (by the plate camera's vendor)")
    ROBOT = "robot", _("the robot's relay (MQTT)")
    CAMERA_REPLY = "camera_reply", _("the plate camera's HTTP reply (Vzenith, HXZX)")
    CAMERA_API = "camera_api", _("the plate camera's HTTP API (Hikvision, Dahua)")


class Gate(models.Model):
    """One lane of a lot, in or out, with its barrier, robot and plate cameras."""

    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="gates", verbose_name=_("lot")
    )
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=128)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices)
    opening_channel = models.CharField(
        _("opening channel"),
        max_length=16,
        choices=OpeningChannel.choices,
        default=OpeningChannel.AUTO,
        help_text=_("How an open decided later (agent, payment) reaches the barrier."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("gate")
        verbose_name_plural = _("gates")
        ordering = ["lot__code", "code"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "code"], name="gate_code_unique_in_lot")
        ]

    def __str__(self) -> str:
        return f"{self.lot.name} · {self.name}"
