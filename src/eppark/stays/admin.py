"""Stays (entry/exit records) and gate visits in the back office."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from eppark.accounts.scoping import LotScopedAdminMixin
from eppark.evidence.admin import LIST_HEIGHT, photo_display
from eppark.stays.models import GateVisit, Stay


@admin.register(Stay)
class StayAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Entry/exit records; a stay whose car left unseen can be closed by hand."""

    list_display = (
        "plate",
        "lot",
        "entered_as",
        "entered_at",
        "entry_gate",
        "exited_at",
        "exit_gate",
        "state",
        "total",
        "paid",
        "entry_photo_thumb",
    )
    list_filter = ("state", "entered_as", "lot")
    search_fields = ("plate",)
    date_hierarchy = "entered_at"
    list_select_related = ("lot", "entry_gate", "exit_gate")
    readonly_fields = ("closed_by", "entry_photo_preview", "exit_photo_preview")
    exclude = ("entry_photo", "exit_photo")  # evidence: shown by the previews, never replaced
    entry_photo_thumb = photo_display("entry_photo", _("entry photo"), LIST_HEIGHT)
    entry_photo_preview = photo_display("entry_photo", _("entry photo"))
    exit_photo_preview = photo_display("exit_photo", _("exit photo"))
    actions = ("close_by_hand",)

    @admin.action(
        description=_("Close the selected stays by hand (car left unseen)"), permissions=["change"]
    )
    def close_by_hand(self, request: HttpRequest, queryset: QuerySet[Stay]) -> None:
        """End open stays now; frees their spaces."""
        now = timezone.now()
        closed = 0
        for stay in queryset.filter(exited_at__isnull=True):
            stay.close_by_hand(request.user, now, note=str(_("closed in the back office")))
            closed += 1
        self.message_user(request, _("%(n)d stay(s) closed.") % {"n": closed}, messages.SUCCESS)


@admin.register(GateVisit)
class GateVisitAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Cars at gates: the read, the decision, and how it ended (read-only)."""

    list_display = (
        "arrived_at",
        "gate",
        "plate",
        "scenario",
        "opened",
        "expected_action",
        "resolution",
        "resolved_at",
        "photo_thumb",
    )
    list_filter = ("scenario", "resolution", "lot")
    search_fields = ("plate",)
    date_hierarchy = "arrived_at"
    list_select_related = ("gate", "gate__lot")
    readonly_fields = ("photo_preview",)
    exclude = ("photo",)  # evidence: shown by the preview (the raw field links to no route)
    photo_thumb = photo_display("photo", _("photo"), LIST_HEIGHT)
    photo_preview = photo_display("photo", _("photo"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Visits are recorded by the gate loop only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Visits are a record: read-only."""
        return False
