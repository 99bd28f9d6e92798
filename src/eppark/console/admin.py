"""The open-gate log (开闸列表) and seats in the back office."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from eppark.accounts.scoping import LotScopedAdminMixin
from eppark.console.models import AbnormalOpen, AbnormalOpenEvidence, Seat
from eppark.records.admin import ReadOnlyAdminMixin


class EvidenceInline(ReadOnlyAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    """Evidence photos of an abnormal open (read-only; attached by the console when it opens)."""

    model = AbnormalOpenEvidence
    extra = 0
    fields = ("kind", "file", "taken_at")
    readonly_fields = fields
    can_delete = False


@admin.register(AbnormalOpen)
class AbnormalOpenAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
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

    # recorded by the console's open-gate action, never typed in, edited or deleted here

    @admin.display(description=_("evidence"))
    def evidence_count(self, obj: AbnormalOpen) -> int:
        """How many photos back the open."""
        return obj.evidence.count()


@admin.register(Seat)
class SeatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Call-centre seats and the agent bound to each."""

    list_display = ("number", "agent")
    search_fields = ("number", "agent__username")
