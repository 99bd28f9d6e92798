"""Call-centre integrations and the calls they report (manual 2.3.2, 2.3.3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords  # type: ignore[import-untyped]

from eppark.devices import keys


class Provider(models.TextChoices):
    """Call-centre systems EP Park speaks to."""

    GENERIC = "generic", _("generic JSON")
    TINET = "tinet", _("TiNet Clink (天润融通)")


class CallCentre(models.Model):
    """A call-centre integration: where its events come in, where callouts go.

    Events arrive at ``/cti/<provider>/<key>``; only the key's SHA-256 is kept.
    ``secret`` signs both directions (HMAC-SHA256 for the generic provider; TiNet's
    access key secret for its OpenAPI); it must be readable to sign with.
    """

    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    name = models.CharField(_("name"), max_length=64)
    key_digest = models.CharField(
        _("endpoint key digest"), max_length=64, unique=True, editable=False
    )
    key_hint = models.CharField(
        _("endpoint key ends with"), max_length=8, blank=True, editable=False
    )
    callout_url = models.URLField(_("callout address"), blank=True)
    access_key_id = models.CharField(
        _("access key id"), max_length=128, blank=True, help_text=_("TiNet OpenAPI AccessKeyId")
    )
    secret = models.CharField(
        _("signing secret"),
        max_length=256,
        blank=True,
        help_text=_("Set: unsigned or wrongly signed events are refused."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["key_digest", "secret"])

    class Meta:
        verbose_name = _("call centre")
        verbose_name_plural = _("call centres")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str | None:
        """The endpoint key in clear: only on the instance it was just set on, never stored."""
        return self.__dict__.get("_plain_key")

    @key.setter
    def key(self, value: str) -> None:
        """Set a new endpoint key (``CallCentre(key=…)`` works too): keeps its digest and hint."""
        self.__dict__["_plain_key"] = value
        self.key_digest = keys.key_digest(value)
        self.key_hint = keys.key_hint(value)

    @property
    def masked_key(self) -> str:
        """The key as anyone may see it: dots and its last characters."""
        return keys.masked(self.key_hint, bool(self.key_digest))


class CallDirection(models.TextChoices):
    """Who dialled."""

    INBOUND = "inbound", _("incoming")
    OUTBOUND = "outbound", _("outgoing")


class CallState(models.TextChoices):
    """Where a call stands."""

    DIALING = "dialing", _("dialling")  # an agent's callout, not yet connected
    RINGING = "ringing", _("ringing")
    ANSWERED = "answered", _("answered")
    ENDED = "ended", _("hung up")
    FAILED = "failed", _("callout failed")


class Call(models.Model):
    """One call: an EP君's call button, an owner's hotline call, or an agent's callout.

    From the robot's number the call knows the robot, its lot and gate and the car
    waiting there; the desk works the case on it (plate corrections, actions) until
    the agent closes it (关单).
    """

    centre = models.ForeignKey(
        CallCentre,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("call centre"),
    )
    call_id = models.CharField(_("call id"), max_length=128, blank=True)
    request_id = models.CharField(_("callout request id"), max_length=64, blank=True)
    direction = models.CharField(_("direction"), max_length=8, choices=CallDirection.choices)
    state = models.CharField(_("state"), max_length=8, choices=CallState.choices)
    caller = models.CharField(_("caller"), max_length=32, blank=True)
    callee = models.CharField(_("callee"), max_length=32, blank=True)
    seat = models.CharField(_("seat"), max_length=8, blank=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("agent"),
    )
    robot = models.ForeignKey(
        "devices.Robot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("robot"),
    )
    lot = models.ForeignKey(
        "lots.Lot",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("lot"),
    )
    gate = models.ForeignKey(
        "lots.Gate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("gate"),
    )
    visit = models.ForeignKey(
        "stays.GateVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("gate visit"),
    )
    plate = models.CharField(_("plate"), max_length=16, blank=True)
    stay = models.ForeignKey(
        "stays.Stay",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("stay"),
        help_text=_("The entry record the agent picked for a car with none (C6)."),
    )
    started_at = models.DateTimeField(_("started"))
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("hung up"), null=True, blank=True)
    failure = models.CharField(
        _("why the callout failed"),
        max_length=200,
        blank=True,
        help_text=_("What the call centre said when it could not place an agent's callout."),
    )
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["centre", "call_id"],
                condition=~models.Q(call_id=""),
                name="call_once_per_centre",
            )
        ]
        indexes = [
            models.Index(
                fields=["agent", "started_at"],
                condition=models.Q(closed_at__isnull=True),
                name="call_open_by_agent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.caller or '?'} → {self.callee or '?'} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        """Whether the case is still being worked (not yet closed, 关单)."""
        return self.closed_at is None


class CallEvent(models.Model):
    """An event as the call centre sent it: kept once per call and kind (redeliveries drop)."""

    centre = models.ForeignKey(
        CallCentre, on_delete=models.PROTECT, related_name="events", verbose_name=_("call centre")
    )
    call = models.ForeignKey(
        Call,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("call"),
    )
    provider_call_id = models.CharField(_("call id"), max_length=128)
    event = models.CharField(_("event"), max_length=24)
    payload = models.JSONField(_("payload"), default=dict)
    at = models.DateTimeField(_("time"))
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("call event")
        verbose_name_plural = _("call events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["centre", "provider_call_id", "event"], name="call_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.provider_call_id}"
