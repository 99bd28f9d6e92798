"""The open-gate log (开闸列表), the desk's audit log and seats in the back office."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.console.models import AbnormalOpen, AbnormalOpenEvidence, AgentAction, Seat
from eppark.evidence.admin import photo_display
from eppark.records.admin import ReadOnlyAdminMixin


class EvidenceInline(admin.TabularInline):  # type: ignore[type-arg]
    """Evidence photos of an abnormal open (read-only)."""

    model = AbnormalOpenEvidence
    extra = 0
    fields = ("kind", "file_preview", "taken_at")
    readonly_fields = fields
    can_delete = False
    file_preview = photo_display("file", _("file"))

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Evidence is attached by the console when the gate is opened."""
        return False


@admin.register(AbnormalOpen)
class AbnormalOpenAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """开闸列表: who opened which gate, when, why, with what evidence. An audit log: read-only."""

    list_display = (
        "opened_at",
        "lot",
        "gate",
        "agent",
        "plate",
        "reason",
        "note",
        "evidence_count",
    )
    list_filter = ("reason", "lot", "agent")
    search_fields = ("plate", "note", "agent__username")
    date_hierarchy = "opened_at"
    list_select_related = ("lot", "gate", "agent")
    inlines = (EvidenceInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Abnormal opens are recorded by the console's action, not typed in."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """The log cannot be edited."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """The log cannot be deleted."""
        return False

    @admin.display(description=_("evidence"))
    def evidence_count(self, obj: AbnormalOpen) -> int:
        """How many photos back the open."""
        return obj.evidence.count()


@admin.register(Seat)
class SeatAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Call-centre seats and the agent bound to each."""

    list_display = ("number", "agent")
    search_fields = ("number", "agent__username")


@admin.register(AgentAction)
class AgentActionAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The desk's audit log: who did what at which gate, the case before and after."""

    list_display = ("at", "agent", "action", "lot", "gate", "plate", "call")
    list_filter = ("action", "lot", "agent")
    search_fields = ("plate", "agent__username")
    date_hierarchy = "at"
    list_select_related = ("agent", "lot", "gate", "call")
