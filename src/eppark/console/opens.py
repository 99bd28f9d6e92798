"""The open-gate log (开闸列表): every abnormal open with who, when, where, why and its photos.

For staff who may view abnormal opens (agents, operators, admins), scoped to the lots
they serve: the list, the filters' choices and the photos (served by the evidence
views, which check the lot again). Filters are a GET form (lot, gate, agent, reason,
a time range); a filter naming something outside the user's lots is refused by the
form and lists nothing.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from eppark.accounts.scoping import restrict
from eppark.console import live
from eppark.console.models import AbnormalOpen, AbnormalOpenEvidence, AbnormalReason
from eppark.evidence.links import staff_path
from eppark.lots.models import Gate, Lot

PER_PAGE = 20
EVIDENCE_KIND = "abnormal-open"
"""The evidence kind (``eppark.evidence.kinds``) of an ``AbnormalOpenEvidence``."""


def _moment(text: str, *, end: bool) -> datetime | None:
    """A form's date or date-and-time (the site's time zone); a bare date spans its day."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            naive = datetime.combine(day, time.max if end else time.min)
        else:
            naive = datetime.fromisoformat(text)
    except ValueError:
        return None
    if timezone.is_aware(naive):
        return naive
    return timezone.make_aware(naive, timezone.get_current_timezone())


class MomentField(forms.CharField):
    """A time from a ``datetime-local`` or ``date`` input."""

    def __init__(self, *, end: bool, **kwargs: Any) -> None:
        self.end = end
        kwargs.setdefault("widget", forms.DateTimeInput(attrs={"type": "datetime-local"}))
        super().__init__(required=False, **kwargs)

    def clean(self, value: Any) -> datetime | None:
        """The time, or None when empty."""
        text = super().clean(value).strip()
        if not text:
            return None
        moment = _moment(text, end=self.end)
        if moment is None:
            raise forms.ValidationError(_("Enter a date and time."))
        return moment


class AgentChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    """An agent as the log names them: their staff name, else their login."""

    def label_from_instance(self, obj: Any) -> str:
        """The agent's name."""
        return agent_label(obj)


def agent_label(user: Any) -> str:
    """How the log names an agent."""
    profile = getattr(user, "staff", None)
    return (profile.name if profile is not None else "") or user.get_username()


class OpensFilter(forms.Form):
    """The log's filters; every choice is one of the user's own lots, gates and agents."""

    lot = forms.ModelChoiceField(queryset=Lot.objects.none(), required=False, label=_("Lot"))
    gate = forms.ModelChoiceField(queryset=Gate.objects.none(), required=False, label=_("Gate"))
    agent = AgentChoice(queryset=get_user_model().objects.none(), required=False, label=_("Agent"))
    reason = forms.ChoiceField(required=False, label=_("Reason for opening"))
    since = MomentField(end=False, label=_("From"))
    until = MomentField(end=True, label=_("To"))

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lots = restrict(Lot.objects.all(), user, "pk").order_by("name")
        gates = restrict(Gate.objects.select_related("lot"), user).order_by("lot__name", "name")
        opens = restrict(AbnormalOpen.objects.all(), user)
        agents = (
            get_user_model()
            .objects.filter(pk__in=opens.values("agent_id"))
            .select_related("staff")
            .order_by("username")
        )
        fields: Any = self.fields
        fields["lot"].queryset = lots
        fields["gate"].queryset = gates
        fields["gate"].label_from_instance = lambda gate: f"{gate.lot.name} · {gate.name}"
        fields["agent"].queryset = agents
        fields["reason"].choices = [("", "---------"), *AbnormalReason.choices]

    def filtered(self, opens: QuerySet[AbnormalOpen]) -> QuerySet[AbnormalOpen]:
        """``opens`` narrowed by the valid filters (nothing when any filter is invalid)."""
        if not self.is_valid():
            return opens.none()
        data = self.cleaned_data
        if data["lot"] is not None:
            opens = opens.filter(lot=data["lot"])
        if data["gate"] is not None:
            opens = opens.filter(gate=data["gate"])
        if data["agent"] is not None:
            opens = opens.filter(agent=data["agent"])
        if data["reason"]:
            opens = opens.filter(reason=data["reason"])
        if data["since"] is not None:
            opens = opens.filter(opened_at__gte=data["since"])
        if data["until"] is not None:
            opens = opens.filter(opened_at__lte=data["until"])
        return opens


def _row(record: AbnormalOpen) -> dict[str, Any]:
    photos = [
        {
            "url": staff_path(EVIDENCE_KIND, evidence.pk, "file"),
            "kind": evidence.kind,
            "kind_label": evidence.get_kind_display(),
            "taken": live.local_text(evidence.taken_at, live._zone(record.lot.timezone)),
        }
        for evidence in record.evidence.all()
    ]
    zone = live._zone(record.lot.timezone)
    return {
        "record": record,
        "when": live.local_text(record.opened_at, zone),  # in the lot's time zone
        "agent": agent_label(record.agent),
        "reason": record.get_reason_display(),
        "photos": photos,
    }


@never_cache
@staff_member_required
def opens_page(request: HttpRequest) -> HttpResponse:
    """The open-gate log, newest first, filtered and paginated."""
    user: Any = request.user
    if not (
        user.has_perm("console.view_abnormalopen")
        and user.has_perm("console.view_abnormalopenevidence")
    ):
        raise PermissionDenied
    form = OpensFilter(user, request.GET or None)
    opens = restrict(
        AbnormalOpen.objects.select_related("lot", "gate", "agent__staff").prefetch_related(
            Prefetch("evidence", queryset=AbnormalOpenEvidence.objects.order_by("kind", "taken_at"))
        ),
        user,
    ).order_by("-opened_at", "-pk")
    if request.GET:
        opens = form.filtered(opens)
    page = Paginator(opens, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/opens.html",
        {
            "form": form,
            "page": page,
            "rows": [_row(record) for record in page.object_list],
            "query": query.urlencode(),
            "strings": {},
        },
    )
