"""Robot list, camera list and the device links (manual 2.1)."""

from __future__ import annotations

from django.contrib import admin

from eppark.accounts.scoping import LotScopedAdminMixin
from eppark.devices.models import Camera, PlateRead, Robot
from eppark.records.admin import ReadOnlyAdminMixin


class CameraInline(admin.TabularInline):  # type: ignore[type-arg]
    """Cameras linked to a robot (device list: camera ↔ robot)."""

    model = Camera
    extra = 0
    fields = ("vendor", "name", "serial", "ezviz_serial", "gate", "online")
    readonly_fields = ("online",)
    fk_name = "robot"


@admin.register(Robot)
class RobotAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """机器人列表: name, lot, factory code, SIM number, and the gate it stands at."""

    list_display = ("name", "lot", "code", "phone", "gate", "online", "last_seen_at")
    list_filter = ("online", "lot")
    search_fields = ("name", "code", "phone", "lot__name")
    list_select_related = ("lot", "gate")
    readonly_fields = ("online", "last_seen_at", "created_at", "updated_at")
    exclude = ("mqtt_password_hash",)
    inlines = (CameraInline,)


@admin.register(Camera)
class CameraAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Plate cameras and Ezviz environment cameras, with the gate and robot they serve."""

    list_display = (
        "__str__",
        "vendor",
        "lot",
        "gate",
        "robot",
        "serial",
        "online",
        "last_heartbeat_at",
    )
    list_filter = ("vendor", "online", "lot")
    search_fields = ("name", "serial", "ezviz_serial", "lot__name")
    list_select_related = ("lot", "gate", "robot")
    readonly_fields = ("online", "last_heartbeat_at", "created_at", "updated_at")


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
