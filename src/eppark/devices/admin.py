"""Robot list, camera list and the device links (manual 2.1).

Secrets are shown to no one once set: a robot's MQTT password and a camera's
endpoint key are stored hashed, shown masked, and replaced only by an audited
action whose page shows the new one once; a camera's API password is
write-only (never rendered; left blank, it stays as it was).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin  # type: ignore[import-untyped]

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.devices.models import Camera, PlateRead, Robot
from eppark.devices.rotation import new_robot_password, rotate_camera_key
from eppark.records.admin import ReadOnlyAdminMixin


class CameraInline(admin.TabularInline):  # type: ignore[type-arg]
    """Cameras linked to a robot (device list: camera ↔ robot)."""

    model = Camera
    extra = 0
    fields = ("vendor", "name", "serial", "ezviz_serial", "gate", "online")
    readonly_fields = ("online",)
    fk_name = "robot"


class AuditedAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """The history page lists who changed what and why; no old version can be restored."""

    def revert_disabled(self, request: Any, obj: Any = None) -> bool:
        """History is read-only: restoring a version would bypass the form's checks."""
        return True

    def history_form_view(
        self, request: Any, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        """No old version is opened as a form (nor restored)."""
        raise PermissionDenied

    def secret_page(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        template: str,
        make: Any,
        title: Any,
        extra: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Ask to confirm (GET); on POST make the new secret and show it this once.

        Only someone who may change the row (its lot, their permission) gets here.
        """
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        secret = make(obj) if request.method == "POST" else None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "original": obj,
            "secret": secret,
            **(extra or {}),
        }
        if secret is not None:
            context.update(self.secret_context(request, obj, secret))
        response = TemplateResponse(request, template, context)
        add_never_cache_headers(response)  # the page with the secret is kept by no cache
        return response

    def secret_context(self, request: HttpRequest, obj: Any, secret: str) -> dict[str, Any]:
        """More to show beside a new secret."""
        return {}


@admin.register(Robot)
class RobotAdmin(LotScopedAdminMixin, AuditedAdmin):
    """机器人列表: name, lot, factory code, SIM number, and the gate it stands at."""

    list_display = ("name", "lot", "code", "phone", "gate", "online", "last_seen_at")
    list_filter = ("online", "lot")
    search_fields = ("name", "code", "phone", "lot__name")
    list_select_related = ("lot", "gate")
    readonly_fields = ("mqtt_password", "online", "last_seen_at", "created_at", "updated_at")
    exclude = ("mqtt_password_hash",)
    inlines = (CameraInline,)
    change_form_template = "admin/devices/robot/change_form.html"

    @admin.display(description=_("MQTT password"))
    def mqtt_password(self, obj: Robot) -> str:
        """Whether the robot has a password (never the password or its hash)."""
        if obj.mqtt_password_hash:
            return str(_("set (never shown again; a new one replaces it)"))
        return str(_("not set: the robot cannot connect until it is given one"))

    def get_urls(self) -> list[URLPattern]:
        """The robot's pages, plus "set a new MQTT password"."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_mqtt_password"
        view = self.admin_site.admin_view(self.mqtt_password_view)
        return [path("<path:object_id>/mqtt-password/", view, name=name), *super().get_urls()]

    def mqtt_password_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Set a new MQTT password: confirm, then show it once (audited)."""
        return self.secret_page(
            request,
            object_id,
            template="admin/devices/robot/mqtt_password.html",
            make=lambda robot: new_robot_password(robot, by=request.user),
            title=_("Set a new MQTT password"),
        )


def _lan_url(field: Any, **kwargs: Any) -> Any:
    """Form fields of a camera: its own API is reached on the lot's network, mostly over HTTP."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "http"
    return field.formfield(**kwargs)


class CameraForm(forms.ModelForm):  # type: ignore[type-arg]
    """The camera form: its API password is write-only."""

    api_password = forms.CharField(
        label=_("camera API password"),
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Never shown. Leave blank to keep the current one."),
    )
    clear_api_password = forms.BooleanField(
        label=_("remove the camera API password"), required=False
    )

    class Meta:
        model = Camera
        fields = "__all__"
        formfield_callback = _lan_url

    def clean(self) -> dict[str, Any]:
        """Blank keeps the stored password; "remove" empties it."""
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("clear_api_password"):
            cleaned["api_password"] = ""
        elif not cleaned.get("api_password"):
            cleaned["api_password"] = self.instance.api_password
        return cleaned


WRITE_ONLY = ("api_password", "clear_api_password")
"""Camera form fields that are never shown with a value."""


@admin.register(Camera)
class CameraAdmin(LotScopedAdminMixin, AuditedAdmin):
    """Plate cameras and Ezviz environment cameras, with the gate and robot they serve."""

    form = CameraForm
    # a camera's own API is reached on the lot's network, mostly over plain HTTP
    formfield_overrides = {models.URLField: {"assume_scheme": "http"}}
    list_display = (
        "__str__",
        "vendor",
        "lot",
        "gate",
        "robot",
        "serial",
        "endpoint_key",
        "online",
        "last_heartbeat_at",
    )
    list_filter = ("vendor", "online", "lot")
    search_fields = ("name", "serial", "ezviz_serial", "lot__name")
    list_select_related = ("lot", "gate", "robot")
    readonly_fields = ("endpoint_key", "online", "last_heartbeat_at", "created_at", "updated_at")
    change_form_template = "admin/devices/camera/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Someone who may only view the camera is not shown its API password at all."""
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            fields = [name for name in fields if name not in WRITE_ONLY]
        return fields

    @admin.display(description=_("endpoint key"))
    def endpoint_key(self, obj: Camera) -> str:
        """The key masked (its last characters at most), or that it has none."""
        if not obj.key_digest:
            return str(_("none")) if obj.is_plate_camera else "—"
        return obj.masked_key

    def get_urls(self) -> list[URLPattern]:
        """The camera's pages, plus "rotate key"."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_rotate_key"
        view = self.admin_site.admin_view(self.rotate_key_view)
        return [path("<path:object_id>/rotate-key/", view, name=name), *super().get_urls()]

    def rotate_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Give a plate camera a new endpoint key: confirm, then show it once (audited)."""
        camera = self.get_object(request, unquote(object_id))
        if camera is not None and not camera.is_plate_camera:
            raise Http404  # an Ezviz camera does not post to EP Park: it has no key
        return self.secret_page(
            request,
            object_id,
            template="admin/devices/camera/rotate_key.html",
            make=lambda cam: rotate_camera_key(cam, by=request.user),
            title=_("Set a new endpoint key"),
        )

    def secret_context(self, request: HttpRequest, obj: Any, secret: str) -> dict[str, Any]:
        """The whole URL the camera is to post to."""
        return {"push_url": request.build_absolute_uri(f"/devices/lpr/{obj.vendor}/{secret}")}


@admin.register(PlateRead)
class PlateReadAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Plate reads as the cameras pushed them: a record, read-only for everyone."""

    lot_path = "camera__lot"
    list_display = ("received_at", "camera", "plate", "raw_plate", "read_at", "offline", "opened")
    list_filter = ("offline", "opened")
    search_fields = ("plate", "raw_plate")
    date_hierarchy = "received_at"
    list_select_related = ("camera", "camera__lot")


from eppark.devices import alarm_admin  # noqa: E402,F401  (device alarms: registers DeviceAlarmAdmin)
