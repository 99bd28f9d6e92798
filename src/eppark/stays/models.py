"""Stays (a car's time inside a lot) and gate visits (a car waiting at a gate)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from eppark.records.history import PeopleHistory


class EnteredAs(models.TextChoices):
    """How a car entered: as a pass holder or as temp parking (临停)."""

    PASS = "pass", _("monthly pass")
    TEMP = "temp", _("temp parking")
    UNPLATED = "unplated", _("unplated")


class StayState(models.TextChoices):
    """Whether the car is still inside."""

    INSIDE = "inside", _("inside")
    LEFT = "left", _("left")
    CLOSED_BY_HAND = "closed", _("closed by hand")


def evidence_path(instance: Any, filename: str) -> str:
    """Where a gate photo is stored: by lot and day."""
    lot = getattr(instance, "lot", None) or instance.gate.lot
    return f"photos/{lot.code}/{filename}"


class Stay(models.Model):
    """A car's time in a lot, from the entry gate to the exit gate (an entry/exit record)."""

    lot = models.ForeignKey(
        "lots.Lot",
        on_delete=models.PROTECT,
        related_name="stays",
        verbose_name=_("lot"),
        db_index=False,  # stay_lookup leads with it
    )
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    entered_as = models.CharField(_("entered as"), max_length=16, choices=EnteredAs.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=StayState.choices, default=StayState.INSIDE
    )
    entered_at = models.DateTimeField(_("entered"))
    entry_gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entry gate"),
    )
    entry_photo = models.FileField(_("entry photo"), upload_to=evidence_path, blank=True)
    exited_at = models.DateTimeField(_("left"), null=True, blank=True)
    exit_gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("exit gate"),
    )
    exit_photo = models.FileField(_("exit photo"), upload_to=evidence_path, blank=True)
    monthly_pass = models.ForeignKey(
        "passes.MonthlyPass",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stays",
        verbose_name=_("monthly pass"),
    )
    total = models.PositiveIntegerField(_("fee (fen)"), default=0)
    paid = models.PositiveIntegerField(_("paid (fen)"), default=0)
    closed_by = models.ForeignKey(
        "auth.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
        db_index=False,  # stay_closed_by: only the stays closed by hand
    )
    close_note = models.CharField(_("closing note"), max_length=256, blank=True)
    # people's changes only (named actions in stays.actions); the gate loop keeps none
    history = PeopleHistory()

    class Meta:
        verbose_name = _("stay")
        verbose_name_plural = _("stays")
        ordering = ["-entered_at"]
        # a stay is written on entry and again on exit: plain btree indexes only (no
        # LIKE-pattern twin), the lot's FK served by stay_lookup, who closed it only where set
        indexes = [
            models.Index(fields=["lot", "plate", "exited_at"], name="stay_lookup"),
            models.Index(fields=["plate"], name="stay_by_plate"),
            models.Index(
                fields=["closed_by"],
                condition=models.Q(closed_by__isnull=False),
                name="stay_closed_by",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(exited_at__isnull=True)
                | models.Q(exited_at__gte=models.F("entered_at")),
                name="stay_exit_after_entry",
            )
        ]

    def __str__(self) -> str:
        return f"{self.plate or _('unplated')} @ {self.lot}"

    @property
    def inside(self) -> bool:
        """Whether the car is still in the lot."""
        return self.exited_at is None


class Resolution(models.TextChoices):
    """How a gate visit ended."""

    OPENED = "opened", _("gate opened")
    DRIVER_ACTED = "driver_acted", _("driver acted")
    LEFT = "left", _("car backed away")
    AGENT = "agent", _("resolved by an agent")
    ABNORMAL_OPEN = "abnormal_open", _("abnormal open")
    SUPERSEDED = "superseded", _("superseded by a new read")


class GateVisit(models.Model):
    """A car at a gate: the plate read, what the robot was told, and how it ended."""

    gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.PROTECT,
        related_name="visits",
        verbose_name=_("gate"),
        db_index=False,  # visit_by_gate_plate leads with it
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="visits", verbose_name=_("lot")
    )
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    arrived_at = models.DateTimeField(_("arrived"))
    photo = models.FileField(_("photo"), upload_to=evidence_path, blank=True)
    scenario = models.CharField(_("scenario"), max_length=40)
    decision = models.JSONField(_("decision"), default=dict)
    expected_action = models.CharField(_("expected action"), max_length=32, blank=True)
    opened = models.BooleanField(_("gate opened"), default=False)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.CharField(
        _("resolution"), max_length=16, choices=Resolution.choices, blank=True
    )
    stay = models.ForeignKey(
        Stay,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="visits",
        verbose_name=_("stay"),
    )

    class Meta:
        verbose_name = _("gate visit")
        verbose_name_plural = _("gate visits")
        ordering = ["-arrived_at"]
        # Visits are written on every read and updated as they resolve; every index is
        # written with them. Plain btree indexes only (no LIKE-pattern twins), and partial
        # ones where a query looks only at unresolved visits.
        indexes = [
            # the congestion list: unresolved visits, longest first
            models.Index(
                fields=["arrived_at"],
                condition=models.Q(resolved_at__isnull=True),
                name="visit_waiting",
            ),
            # the gate loop's repeat check (same plate at the same gate just now); the gate's FK
            models.Index(fields=["gate", "plate", "arrived_at"], name="visit_by_gate_plate"),
            models.Index(fields=["plate"], name="visit_by_plate"),
            # the gate loop's "a new car ends the waiting one": only unresolved visits
            models.Index(
                fields=["gate"],
                condition=models.Q(resolved_at__isnull=True),
                name="visit_unresolved_by_gate",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plate or _('unplated')} @ {self.gate} ({self.scenario})"


class UnplatedTicket(models.Model):
    """An unplated car's ticket (无牌车入场凭证): who the driver is and the car's temporary plate.

    Created when the driver scans the entry gate's QR code and confirms; its stay
    carries the temporary plate; the exit QR finds it again by the driver's phone
    or WeChat/Alipay user id.
    """

    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    temp_plate = models.CharField(_("temporary plate"), max_length=16)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    payer = models.CharField(
        _("WeChat/Alipay user"), max_length=128, blank=True, help_text=_("openid or user id")
    )
    stay = models.OneToOneField(
        Stay, on_delete=models.PROTECT, related_name="ticket", verbose_name=_("stay")
    )
    entry_visit = models.OneToOneField(
        GateVisit,
        on_delete=models.PROTECT,
        related_name="ticket",
        verbose_name=_("entry visit"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("unplated ticket")
        verbose_name_plural = _("unplated tickets")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "temp_plate"], name="ticket_plate_per_lot")
        ]
        indexes = [models.Index(fields=["lot", "phone"], name="ticket_by_phone")]

    def __str__(self) -> str:
        return self.temp_plate
