"""Device alarms in the back office: read-only, with an "acknowledge" action.

Imported (and so registered) at the end of ``eppark.devices.admin``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.devices.models import DeviceAlarm


@admin.register(DeviceAlarm)
class DeviceAlarmAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Device alarms (a camera whose serial is not the provisioned one…): read, acknowledge."""

    list_display = ("camera", "lot", "kind", "detail", "last_seen_at", "count", "acknowledged")
    list_filter = ("acknowledged", "kind")
    search_fields = ("camera__name", "camera__serial", "detail")
    list_select_related = ("camera", "lot")
    readonly_fields = (
        "lot",
        "camera",
        "kind",
        "detail",
        "first_seen_at",
        "last_seen_at",
        "count",
        "acknowledged",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ("acknowledge",)

    def has_add_permission(self, request: Any) -> bool:
        """Alarms are raised by the devices, never added by hand."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Read-only: the only change is the "acknowledge" action."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """An alarm stays on record once acknowledged."""
        return False

    def has_acknowledge_permission(self, request: Any) -> bool:
        """Acknowledging needs the change permission (operators); the rows are the user's lots'."""
        return self.has_view_permission(request) and bool(
            request.user.has_perm("devices.change_devicealarm")
        )

    @admin.action(
        description=gettext_lazy("Acknowledge the selected alarms"), permissions=["acknowledge"]
    )
    def acknowledge(self, request: Any, queryset: QuerySet[DeviceAlarm]) -> None:
        """Mark the selected open alarms as seen (a repeat later raises a new one)."""
        done = queryset.filter(acknowledged=False).update(
            acknowledged=True, acknowledged_at=timezone.now(), acknowledged_by=request.user
        )
        self.message_user(request, gettext("%(count)d alarm(s) acknowledged.") % {"count": done})
