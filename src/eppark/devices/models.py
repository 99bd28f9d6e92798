"""Devices at a gate: the robot kiosk (EP君) and its cameras."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Robot(models.Model):
    """An EP君 kiosk: screen, speaker, light band, call button, ID and environment cameras."""

    code = models.CharField(_("factory code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128, help_text=_("e.g. 彩科出口"))
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="robots", verbose_name=_("lot")
    )
    gate = models.OneToOneField(
        "lots.Gate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="robot",
        verbose_name=_("gate"),
    )
    phone = models.CharField(_("SIM phone number"), max_length=32, blank=True)
    mqtt_password_hash = models.CharField(_("MQTT password hash"), max_length=256, blank=True)
    online = models.BooleanField(_("online"), default=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("robot")
        verbose_name_plural = _("robots")
        ordering = ["lot__code", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Vendor(models.TextChoices):
    """Camera makers whose protocols EP Park speaks."""

    VZENITH = "vzenith", _("Vzenith / Qianyi")
    HXZX = "hxzx", _("HXZX")
    HIKVISION = "hikvision", _("Hikvision")
    DAHUA = "dahua", _("Dahua")
    EZVIZ = "ezviz", _("Ezviz (environment)")


LPR_VENDORS = (Vendor.VZENITH, Vendor.HXZX, Vendor.HIKVISION, Vendor.DAHUA)


class Camera(models.Model):
    """A plate camera (LPR) at a gate, or an Ezviz environment camera beside a robot."""

    vendor = models.CharField(_("vendor"), max_length=16, choices=Vendor.choices)
    name = models.CharField(_("name"), max_length=128, blank=True)
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="cameras", verbose_name=_("lot")
    )
    gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cameras",
        verbose_name=_("gate"),
    )
    robot = models.ForeignKey(
        Robot,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cameras",
        verbose_name=_("robot"),
    )
    key = models.CharField(
        _("endpoint key"),
        max_length=128,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Secret part of the URL the camera posts to (/devices/lpr/<vendor>/<key>)."),
    )
    serial = models.CharField(_("serial number"), max_length=128, blank=True)
    ezviz_serial = models.CharField(_("Ezviz device serial"), max_length=64, blank=True)
    online = models.BooleanField(_("online"), default=False)
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("camera")
        verbose_name_plural = _("cameras")
        ordering = ["lot__code", "vendor", "serial"]

    def __str__(self) -> str:
        return self.name or f"{self.get_vendor_display()} {self.serial or self.ezviz_serial}"

    @property
    def is_plate_camera(self) -> bool:
        """Whether this camera reads plates (as opposed to watching the scene)."""
        return self.vendor in LPR_VENDORS
