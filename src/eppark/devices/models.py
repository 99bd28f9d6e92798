"""Devices at a gate: the robot kiosk (EP君) and its cameras."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords  # type: ignore[import-untyped]

from eppark.devices import keys
from eppark.gateway.protocol import is_robot_code

ROBOT_CODE_RULE = _(
    "1 to 64 characters: ASCII letters, digits, '.', '_' or '-', starting with a letter or "
    "digit (no spaces, no '/', '+' or '#', no Chinese characters), and not 'gateway'"
)
"""What a robot code may be: its MQTT user name and a level of its topics."""


def validate_robot_code(code: str) -> None:
    """Refuse a code that cannot be a robot's MQTT user name and topic level."""
    if not is_robot_code(code):
        raise ValidationError(
            _("%(code)s cannot be a robot code: %(rule)s."),
            code="robot_code",
            params={"code": repr(code), "rule": ROBOT_CODE_RULE},
        )


class Robot(models.Model):
    """An EP君 kiosk: screen, speaker, light band, call button, ID and environment cameras."""

    code = models.CharField(
        _("factory code"),
        max_length=64,
        unique=True,
        validators=[validate_robot_code],
        help_text=ROBOT_CODE_RULE,
    )
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
    # who changed what and why; the password hash is never copied (and the gateway's
    # online/last-seen writes are .update()s, which write no history)
    history = HistoricalRecords(excluded_fields=["mqtt_password_hash"])

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
    key_digest = models.CharField(
        _("endpoint key digest"),
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "SHA-256 of the secret part of the URL the camera posts to "
            "(/devices/lpr/<vendor>/<key>); the key itself is never stored."
        ),
    )
    key_hint = models.CharField(
        _("endpoint key ends with"), max_length=8, blank=True, editable=False
    )
    serial = models.CharField(_("serial number"), max_length=128, blank=True)
    ezviz_serial = models.CharField(_("Ezviz device serial"), max_length=64, blank=True)
    api_url = models.URLField(
        _("camera API address"),
        blank=True,
        help_text=_("e.g. http://192.168.1.64 — for opening the barrier through the camera."),
    )
    api_username = models.CharField(_("camera API user"), max_length=64, blank=True)
    api_password = models.CharField(_("camera API password"), max_length=128, blank=True)
    online = models.BooleanField(_("online"), default=False)
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # who changed what and why; neither the key's digest nor the API password is copied
    # (the push path marks a camera online with raw SQL, which writes no history)
    history = HistoricalRecords(excluded_fields=["key_digest", "api_password"])

    class Meta:
        verbose_name = _("camera")
        verbose_name_plural = _("cameras")
        ordering = ["lot__code", "vendor", "serial"]

    def __str__(self) -> str:
        return self.name or f"{self.get_vendor_display()} {self.serial or self.ezviz_serial}"

    @property
    def key(self) -> str | None:
        """The endpoint key in clear: only on the instance it was just set on, never stored."""
        return self.__dict__.get("_plain_key")

    @key.setter
    def key(self, value: str | None) -> None:
        """Set a new endpoint key (``Camera(key=…)`` works too): its digest and hint are kept."""
        self.__dict__["_plain_key"] = value or None
        self.key_digest = keys.key_digest(value) if value else None
        self.key_hint = keys.key_hint(value) if value else ""

    @property
    def masked_key(self) -> str:
        """The key as anyone may see it: dots and its last characters (empty: no key)."""
        return keys.masked(self.key_hint, bool(self.key_digest))

    @property
    def is_plate_camera(self) -> bool:
        """Whether this camera reads plates (as opposed to watching the scene)."""
        return self.vendor in LPR_VENDORS


class PlateRead(models.Model):
    """One plate read pushed by a camera, kept to de-duplicate re-sends and as evidence."""

    camera = models.ForeignKey(
        Camera, on_delete=models.PROTECT, related_name="reads", verbose_name=_("camera")
    )
    read_id = models.CharField(_("read id"), max_length=128)
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    raw_plate = models.CharField(_("plate as read"), max_length=64, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"))
    offline = models.BooleanField(_("offline backlog"), default=False)
    photo = models.FileField(_("photo"), upload_to="reads/%Y/%m/%d/", blank=True)
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reads",
        verbose_name=_("gate visit"),
    )
    opened = models.BooleanField(_("camera told to open"), default=False)

    class Meta:
        verbose_name = _("plate read")
        verbose_name_plural = _("plate reads")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["camera", "read_id"], name="plate_read_once")
        ]

    def __str__(self) -> str:
        return f"{self.plate or '—'} @ {self.camera}"


class Channel(models.TextChoices):
    """Where a command goes: to a robot over MQTT, or to a plate camera."""

    MQTT = "mqtt", _("robot (MQTT)")
    CAMERA_REPLY = "camera_reply", _("camera reply")
    CAMERA_API = "camera_api", _("camera API")


class CommandState(models.TextChoices):
    """Where a command stands in the outbox."""

    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    ACCEPTED = "accepted", _("accepted")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")


OPEN_STATES = (CommandState.PENDING, CommandState.SENT)
"""States in which a command may still be delivered."""
MAX_RECALLS = 3
"""How many times the gateway asks a robot for a final ack that never came."""


class Command(models.Model):
    """The outbox: a command to a robot or a camera, stored with the decision that caused it.

    The gateway publishes pending commands and retries until the robot acks or
    the command expires; an expired command is never delivered late.
    """

    cmd_id = models.CharField(_("command id"), max_length=64)  # unique: command_cmd_id
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    robot = models.ForeignKey(
        Robot,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="commands",
        verbose_name=_("robot"),
    )
    camera = models.ForeignKey(
        Camera,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="commands",
        verbose_name=_("camera"),
        db_index=False,  # command_by_camera: only the commands that have one
    )
    cmd = models.CharField(_("command"), max_length=16)
    args = models.JSONField(_("arguments"), default=dict)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    state = models.CharField(
        _("state"), max_length=16, choices=CommandState.choices, default=CommandState.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    acked_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    recalls = models.PositiveSmallIntegerField(
        _("times the robot was asked for its ack"),
        default=0,
        help_text=_("A command sent whose final ack never came (lost with the broker)."),
    )
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="commands",
        verbose_name=_("gate visit"),
    )
    requested_by = models.ForeignKey(
        "auth.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
        db_index=False,  # command_by_requester: only the commands an agent asked for
    )

    class Meta:
        verbose_name = _("command")
        verbose_name_plural = _("commands")
        ordering = ["-created_at"]
        # A command is written about four times (staged, sent, acked, done), never in
        # place: each time every index whose condition it meets takes a new entry. So the
        # outbox's own lookups are partial indexes over the few commands still in play,
        # and the foreign keys that are mostly empty are indexed only where set.
        constraints = [models.UniqueConstraint(fields=["cmd_id"], name="command_cmd_id")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "sent"]),
                name="command_due",
            ),
            models.Index(
                fields=["camera"],
                condition=models.Q(camera__isnull=False),
                name="command_by_camera",
            ),
            models.Index(
                fields=["requested_by"],
                condition=models.Q(requested_by__isnull=False),
                name="command_by_requester",
            ),
            # a new prompt supersedes the robot's pending ones; a camera's reply takes its open:
            # both look only at pending commands, however long the history grows
            models.Index(
                fields=["robot", "cmd"],
                condition=models.Q(state="pending"),
                name="command_pending_by_robot",
            ),
            models.Index(
                fields=["camera"],
                condition=models.Q(state="pending"),
                name="command_pending_by_camera",
            ),
            # sent, but the final ack never came: the gateway asks the robot again
            models.Index(
                fields=["created_at"],
                condition=(
                    models.Q(state="accepted") | models.Q(state="expired", acked_at__isnull=True)
                )
                & models.Q(sent_at__isnull=False, recalls__lt=MAX_RECALLS),
                name="command_unanswered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cmd} → {self.robot or self.camera} ({self.state})"


class RobotScreen(models.Model):
    """What a robot shows now, as its acks reported it (the console mirrors this)."""

    robot = models.OneToOneField(
        Robot, on_delete=models.CASCADE, related_name="screen", verbose_name=_("robot")
    )
    voice = models.CharField(_("voice"), max_length=500, blank=True)
    display = models.JSONField(_("display"), default=dict)
    light = models.CharField(_("light"), max_length=8, blank=True)
    since = models.DateTimeField(_("since"), null=True, blank=True)
    cmd_id = models.CharField(_("command id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("robot screen")
        verbose_name_plural = _("robot screens")

    def __str__(self) -> str:
        return f"{self.robot}: {self.voice}"


class RobotEvent(models.Model):
    """Something a robot reported (call button, loop detector, ID photo, …), once per event id."""

    robot = models.ForeignKey(
        Robot, on_delete=models.CASCADE, related_name="events", verbose_name=_("robot")
    )
    event_id = models.CharField(_("event id"), max_length=64)
    type = models.CharField(_("type"), max_length=32)
    ts = models.DateTimeField(_("time"))
    data = models.JSONField(_("data"), default=dict)
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("robot event")
        verbose_name_plural = _("robot events")
        ordering = ["-ts"]
        constraints = [
            models.UniqueConstraint(fields=["robot", "event_id"], name="robot_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.robot} {self.type} {self.ts:%H:%M:%S}"


class AlarmKind(models.TextChoices):
    """What a device alarm is about, in words."""

    SERIAL_MISMATCH = "serial_mismatch", _("serial number differs from the provisioned one")


class DeviceAlarm(models.Model):
    """Something wrong with a device that staff should look at; raised once until acknowledged.

    A camera posting with a lot's key but another serial (a replaced or swapped
    camera) is still acted on, so the gate keeps working; the alarm tells the
    back office. One open alarm per camera and kind: a repeat updates when it
    was last seen and how often.
    """

    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.CASCADE, related_name="device_alarms", verbose_name=_("lot")
    )
    camera = models.ForeignKey(
        Camera, on_delete=models.CASCADE, related_name="alarms", verbose_name=_("camera")
    )
    kind = models.CharField(_("kind"), max_length=32, choices=AlarmKind.choices)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    count = models.PositiveIntegerField(_("times seen"), default=1)
    acknowledged = models.BooleanField(_("acknowledged"), default=False)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "auth.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )

    class Meta:
        verbose_name = _("device alarm")
        verbose_name_plural = _("device alarms")
        ordering = ["acknowledged", "-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["camera", "kind"],
                condition=models.Q(acknowledged=False),
                name="device_alarm_open_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.camera}: {self.get_kind_display()}"
