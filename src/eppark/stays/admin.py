"""Stays (entry/exit records) and gate visits in the back office."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.domain.scenarios import SCENARIOS
from eppark.evidence.admin import LIST_HEIGHT, photo_display
from eppark.records.admin import AuditedAdminMixin, ObjectAction, ReadOnlyAdminMixin, reason_field
from eppark.records.display import decision_words, expected_action_words, scenario_words, yuan
from eppark.stays import actions
from eppark.stays.models import GateVisit, Stay


def _run_close(stay: Stay, user: Any, data: dict[str, Any]) -> str:
    closed = actions.close_by_hand(stay, user, data["exited_at"], data["reason"])
    return _("Stay of %(plate)s closed; it owes %(owed)s.") % {
        "plate": closed.plate or _("unplated"),
        "owed": yuan(closed.total - closed.paid),
    }


def _run_correct_plate(stay: Stay, user: Any, data: dict[str, Any]) -> str:
    corrected = actions.correct_plate(stay, user, data["plate"], data["reason"])
    return _("Plate corrected to %(plate)s.") % {"plate": corrected.plate}


class CloseStayForm(forms.Form):
    """Close a stay by hand: when the car left, and why it is closed by hand."""

    exited_at = forms.DateTimeField(
        label=_("left at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        help_text=_("The fee is computed from the lot's tariff up to this time."),
    )
    reason = reason_field()


class CorrectPlateForm(forms.Form):
    """Correct a stay's plate."""

    plate = forms.CharField(label=_("correct plate"), max_length=16)
    reason = reason_field()


CLOSE_BY_HAND = ObjectAction(
    slug="close",
    label=_("Close by hand"),
    form=CloseStayForm,
    run=_run_close,
    shown=lambda stay: stay.exited_at is None,
    initial=lambda stay: {"exited_at": timezone.localtime().replace(second=0, microsecond=0)},
)
CORRECT_PLATE = ObjectAction(
    slug="correct-plate",
    label=_("Correct the plate"),
    form=CorrectPlateForm,
    run=_run_correct_plate,
    initial=lambda stay: {"plate": stay.plate},
)


@admin.register(Stay)
class StayAdmin(AuditedAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Entry/exit records: read-only; closed by hand or re-plated through named actions."""

    list_display = (
        "plate",
        "lot",
        "entered_as",
        "entered_at",
        "entry_gate",
        "exited_at",
        "exit_gate",
        "state",
        "total_yuan",
        "paid_yuan",
        "entry_photo_thumb",
    )
    list_filter = ("state", "entered_as", "lot")
    search_fields = ("plate",)
    date_hierarchy = "entered_at"
    list_select_related = ("lot", "entry_gate", "exit_gate")
    fields = (
        "lot",
        "plate",
        "entered_as",
        "state",
        "entered_at",
        "entry_gate",
        "entry_photo_preview",
        "exited_at",
        "exit_gate",
        "exit_photo_preview",
        "monthly_pass",
        "total_yuan",
        "paid_yuan",
        "closed_by",
        "close_note",
    )
    readonly_fields = (
        "total_yuan",
        "paid_yuan",
        "closed_by",
        "entry_photo_preview",
        "exit_photo_preview",
    )
    entry_photo_thumb = photo_display("entry_photo", _("entry photo"), LIST_HEIGHT)
    entry_photo_preview = photo_display("entry_photo", _("entry photo"))
    exit_photo_preview = photo_display("exit_photo", _("exit photo"))
    object_actions = (CLOSE_BY_HAND, CORRECT_PLATE)
    actions = ("close_by_hand",)
    money_fields = {"total": pgettext_lazy("records", "fee"), "paid": _("amount paid")}

    @admin.action(
        description=_("Close the selected stays by hand (car left unseen)"), permissions=["act"]
    )
    def close_by_hand(self, request: HttpRequest, queryset: QuerySet[Stay]) -> HttpResponse | None:
        """Close the open stays among those selected: one exit time and reason for all."""
        return self.run_in_bulk(request, queryset, CLOSE_BY_HAND)

    @admin.display(description=money_fields["total"], ordering="total")
    def total_yuan(self, stay: Stay) -> str:
        """The stay's fee in yuan."""
        return yuan(stay.total)

    @admin.display(description=money_fields["paid"], ordering="paid")
    def paid_yuan(self, stay: Stay) -> str:
        """What was paid for the stay, in yuan."""
        return yuan(stay.paid)


class ScenarioFilter(admin.SimpleListFilter):
    """Filter visits by scenario, named as the manual names them."""

    title = _("scenario")
    parameter_name = "scenario"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Every scenario of the manual's gate table, by its title."""
        return [(scenario_id, scenario_words(scenario_id)) for scenario_id in SCENARIOS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[GateVisit]) -> QuerySet[GateVisit]:
        """Visits of the chosen scenario."""
        value = self.value()
        return queryset.filter(scenario=value) if value else queryset


@admin.register(GateVisit)
class GateVisitAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Cars at gates: the read, the decision, and how it ended (read-only, for everyone)."""

    list_display = (
        "arrived_at",
        "gate",
        "plate",
        "scenario_title",
        "opened",
        "expected_action_text",
        "resolution",
        "resolved_at",
        "photo_thumb",
    )
    list_filter = (ScenarioFilter, "resolution", "lot")
    search_fields = ("plate",)
    date_hierarchy = "arrived_at"
    list_select_related = ("gate", "gate__lot")
    fields = (
        "lot",
        "gate",
        "plate",
        "arrived_at",
        "photo_preview",
        "scenario_title",
        "decision_text",
        "expected_action_text",
        "opened",
        "resolved_at",
        "resolution",
        "stay",
    )
    readonly_fields = ("scenario_title", "decision_text", "expected_action_text", "photo_preview")
    photo_thumb = photo_display("photo", _("photo"), LIST_HEIGHT)
    photo_preview = photo_display("photo", _("photo"))

    @admin.display(description=_("scenario"), ordering="scenario")
    def scenario_title(self, visit: GateVisit) -> str:
        """The scenario as the manual names it."""
        return scenario_words(visit.scenario)

    @admin.display(description=_("decision"))
    def decision_text(self, visit: GateVisit) -> str:
        """What the robot was told, in words."""
        return decision_words(visit.decision)

    @admin.display(description=_("expected action"), ordering="expected_action")
    def expected_action_text(self, visit: GateVisit) -> str:
        """What the driver was expected to do, in words."""
        return expected_action_words(visit.expected_action)
