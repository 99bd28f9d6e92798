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
    call = models.ForeignKey(
        "calls.Call",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="abnormal_opens",
        verbose_name=_("call"),
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


class DeskAction(models.TextChoices):
    """What an agent did at the desk (the manual's buttons, plus the query and the callout)."""

    TAKE = "take", _("took the call")
    QUERY = "query", _("queried a plate")  # 查询
    OPEN = "open", _("opened the gate")  # 开闸
    SEND_TO_DISPLAY = "send_to_display", _("sent to the robot's screen")  # 发送到显示屏
    QUICK_PAY = "quick_pay", _("pushed the quick-pay code")  # 临停快速码推送或出示付款码
    VISITOR_RELEASE = "visitor_release", _("let a visitor in")  # 访客登记放行
    CAPTURE_ID = "capture_id", _("asked for ID photos")
    CAPTURE_SCENE = "capture_scene", _("took a scene snapshot")
    ABNORMAL_OPEN = "abnormal_open", _("abnormal open")  # 异常开闸
    CONFIRM_VEHICLE = "confirm_vehicle", _("confirmed the entry record")  # 确认为该车辆
    CLOSE = "close", _("closed the case")  # 关单
    CALL_OUT = "call_out", _("called a robot")  # 呼叫


class AgentAction(models.Model):
    """The desk's audit log: who did what, when, at which gate, the case before and after."""

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="desk_actions",
        verbose_name=_("agent"),
    )
    call = models.ForeignKey(
        "calls.Call",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="actions",
        verbose_name=_("call"),
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("gate"),
    )
    action = models.CharField(_("action"), max_length=24, choices=DeskAction.choices)
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("agent action")
        verbose_name_plural = _("agent actions")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["lot", "at"], name="agent_action_by_lot")]

    def __str__(self) -> str:
        return f"{self.agent} {self.get_action_display()} {self.at:%Y-%m-%d %H:%M:%S}"


def capture_path(instance: Any, filename: str) -> str:
    """Where a photo taken during a call is stored: by lot."""
    return f"evidence/{instance.lot.code}/desk/{filename}"


class CapturedPhoto(models.Model):
    """A photo taken for a call before the gate is opened: an ID document from the robot's
    ID camera, or a snapshot from the environment camera. Stored as it arrives; an
    abnormal open then cites the ones the agent kept."""

    call = models.ForeignKey(
        "calls.Call",
        on_delete=models.PROTECT,
        related_name="photos",
        verbose_name=_("call"),
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=EvidenceKind.choices)
    file = models.FileField(_("file"), upload_to=capture_path)
    cmd_id = models.CharField(_("command id"), max_length=64, blank=True)
    taken_at = models.DateTimeField(_("taken"))

    class Meta:
        verbose_name = _("captured photo")
        verbose_name_plural = _("captured photos")
        ordering = ["call", "kind", "taken_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.taken_at:%H:%M:%S}"
