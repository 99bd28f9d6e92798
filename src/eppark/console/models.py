"""The agent console's records: seats and the abnormal-open log (开闸列表)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Seat(models.Model):
    """A call-centre seat (坐席); calls to it pop up on the console of the agent bound to it."""

    number = models.CharField(_("seat number"), max_length=8, unique=True)
    agent = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="seat",
        verbose_name=_("agent"),
    )

    class Meta:
        verbose_name = _("seat")
        verbose_name_plural = _("seats")
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class AbnormalReason(models.TextChoices):
    """Why a gate was opened outside the rules (manual B3b, C3b)."""

    SPECIAL_VEHICLE = "special_vehicle", _("special vehicle")  # 特殊车辆
    SPECIAL_PERSON = "special_person", _("special person")  # 特殊人员
    NON_MOTOR = "non_motor", _("non-motor vehicle")  # 非机动车
    OTHER = "other", _("other")


class AbnormalOpen(models.Model):
    """A gate an agent opened outside the rules, with who, why and the evidence."""

    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="abnormal_opens", verbose_name=_("lot")
    )
    gate = models.ForeignKey(
        "lots.Gate", on_delete=models.PROTECT, related_name="abnormal_opens", verbose_name=_("gate")
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="abnormal_opens",
        verbose_name=_("agent"),
    )
    opened_at = models.DateTimeField(_("opened"))
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    reason = models.CharField(_("reason"), max_length=32, choices=AbnormalReason.choices)
    note = models.CharField(_("note"), max_length=256)
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="abnormal_opens",
        verbose_name=_("gate visit"),
    )

    class Meta:
        verbose_name = _("abnormal open")
        verbose_name_plural = _("abnormal opens")
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.gate} {self.opened_at:%Y-%m-%d %H:%M}"


class EvidenceKind(models.TextChoices):
    """Where an evidence photo came from."""

    ID_DOCUMENT = "id", _("ID document (robot's ID camera)")
    SCENE = "scene", _("scene (environment camera)")


def evidence_path(instance: Any, filename: str) -> str:
    """Where evidence is stored: by lot."""
    return f"evidence/{instance.abnormal_open.lot.code}/{filename}"


class AbnormalOpenEvidence(models.Model):
    """One photo proving why a gate was opened."""

    abnormal_open = models.ForeignKey(
        AbnormalOpen,
        on_delete=models.PROTECT,
        related_name="evidence",
        verbose_name=_("abnormal open"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=EvidenceKind.choices)
    file = models.FileField(_("file"), upload_to=evidence_path)
    taken_at = models.DateTimeField(_("taken"))

    class Meta:
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        ordering = ["abnormal_open", "kind", "taken_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.taken_at:%H:%M:%S}"
