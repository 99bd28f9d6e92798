"""Back-office pieces for records people rely on: read-only records, named actions, history.

``ReadOnlyAdminMixin``: nobody adds, changes or deletes the record here, superusers included.

``AuditedAdminMixin``: the change form is read-only; the record changes only through
``object_actions`` (a page per row with a form that asks for a reason), and the row's
history page lists who changed what, when and why, before and after, in words.
Both go before ``LotScopedAdminMixin`` in the bases, so the row's lot is still checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from eppark.records.display import yuan
from eppark.records.errors import REASON_MAX, Refused


class ReadOnlyAdminMixin:
    """A record written by the system only: view it, never add, change or delete it."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        """Nobody adds records here."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Nobody edits records, superusers included."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Nobody deletes records (and there is no bulk delete)."""
        return False


def reason_field() -> forms.CharField:
    """The reason every named action asks for."""
    return forms.CharField(
        label=gettext_lazy("reason for the change"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy("Why the record is changed; kept in its history."),
    )


class ReasonForm(forms.Form):
    """A named action that needs nothing but a reason."""

    reason = reason_field()


@dataclass(frozen=True)
class ObjectAction:
    """A named action on one row: its URL part, its button, its form and what it does.

    ``run(obj, user, cleaned_data)`` does the change (raising ``Refused`` to say no) and
    returns the message shown afterwards; ``shown(obj)`` says whether its button shows.
    """

    slug: str
    label: Any
    form: type[forms.Form]
    run: Callable[[Any, Any, dict[str, Any]], str]
    shown: Callable[[Any], bool] = lambda obj: True
    initial: Callable[[Any], dict[str, Any]] = field(default=lambda obj: {})


class AuditedAdminMixin:
    """Read-only change form, named actions per row, and a readable history per row."""

    object_actions: tuple[ObjectAction, ...] = ()
    money_fields: Mapping[str, Any] = {}  # field name → its label in yuan
    change_form_template: Any = "records/change_form.html"

    # -- permissions ------------------------------------------------------------------------

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        """Records are written by the system, not typed in."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """The plain change form edits nothing: changes go through the named actions."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Records are kept."""
        return False

    def may_act(self, request: Any, obj: Any = None) -> bool:
        """Whether the user may run named actions: the model's change permission and the lot."""
        return bool(super().has_change_permission(request, obj))  # type: ignore[misc]

    # -- URLs and buttons ---------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        """Each named action's page, before the admin's own catch-all."""
        urls: list[URLPattern] = super().get_urls()  # type: ignore[misc]
        site = self.admin_site  # type: ignore[attr-defined]
        mine = [
            path(
                f"<path:object_id>/{action.slug}/",
                site.admin_view(self._action_view(action)),
                name=self.action_url_name(action),
            )
            for action in self.object_actions
        ]
        return mine + urls

    def action_url_name(self, action: ObjectAction) -> str:
        """The URL name of ``action`` (without the ``admin:`` namespace)."""
        opts = self.model._meta  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_{action.slug.replace('-', '_')}"

    def action_links(self, obj: Any) -> list[tuple[str, str]]:
        """(url, label) of the named actions that apply to ``obj``."""
        return [
            (reverse(f"admin:{self.action_url_name(action)}", args=[obj.pk]), str(action.label))
            for action in self.object_actions
            if action.shown(obj)
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        """The list, with a column of action buttons for those who may act."""
        shown = list(super().get_list_display(request))  # type: ignore[misc]
        if self.object_actions and self.may_act(request):
            shown.append("row_actions")
        return shown

    @admin.display(description=pgettext_lazy("records", "actions"))
    def row_actions(self, obj: Any) -> str:
        """The per-row buttons column."""
        links = self.action_links(obj)
        if not links:
            return "—"
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The read-only page, with the row's action buttons for those who may act."""
        extra = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is not None and self.may_act(request, obj):
            extra["record_actions"] = self.action_links(obj)
        response: HttpResponse = super().change_view(  # type: ignore[misc]
            request, object_id, form_url, extra_context=extra
        )
        return response

    # -- named actions ------------------------------------------------------------------------

    def _action_view(self, action: ObjectAction) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            return self.object_action_view(request, object_id, action)

        return view

    def object_action_view(
        self, request: HttpRequest, object_id: str, action: ObjectAction
    ) -> HttpResponse:
        """A named action's page: its form (a reason at least); on a valid POST, the change."""
        opts = self.model._meta  # type: ignore[attr-defined]
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            redirect: HttpResponse = self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, opts, object_id
            )
            return redirect
        if not self.may_act(request, obj):
            raise PermissionDenied
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        if request.method == "POST":
            form = action.form(request.POST)
            if form.is_valid():
                try:
                    message = action.run(obj, request.user, form.cleaned_data)
                except Refused as refused:
                    form.add_error(None, refused.message)
                else:
                    self.message_user(request, message, messages.SUCCESS)  # type: ignore[attr-defined]
                    return HttpResponseRedirect(change_url)
        else:
            form = action.form(initial=action.initial(obj))
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"{action.label} — {obj}",
            "opts": opts,
            "object": obj,
            "form": form,
            "action": action,
            "change_url": change_url,
            "summary": self.record_summary(obj),
        }
        return TemplateResponse(request, "records/object_action.html", context)

    def record_summary(self, obj: Any) -> list[tuple[str, str]]:
        """(label, value in words) of the row, shown above an action's form."""
        money = self.money_fields
        return [
            (label_of(f, money), value_words(f, getattr(obj, f.attname), money))
            for f in obj._meta.concrete_fields
            if f.name != "id"
        ]

    def has_act_permission(self, request: Any) -> bool:
        """For ``@admin.action(permissions=["act"])``: bulk named actions."""
        return self.may_act(request)

    def run_in_bulk(
        self, request: HttpRequest, queryset: Any, action: ObjectAction
    ) -> HttpResponse | None:
        """A named action on the selected rows: one form (a reason at least), then each row."""
        targets = [obj for obj in queryset if action.shown(obj)]
        if "apply" in request.POST:
            form = action.form(request.POST)
            if form.is_valid():
                done = 0
                for obj in targets:
                    try:
                        action.run(obj, request.user, form.cleaned_data)
                    except Refused as refused:
                        self.message_user(request, f"{obj}: {refused.message}", messages.ERROR)  # type: ignore[attr-defined]
                    else:
                        done += 1
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    _("%(action)s: %(count)d done.") % {"action": action.label, "count": done},
                    messages.SUCCESS,
                )
                return None
        else:
            form = action.form(initial=action.initial(targets[0]) if targets else {})
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": str(action.label),
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "targets": targets,
            "form": form,
            "action": action,
            "action_name": request.POST.get("action", ""),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "records/bulk_action.html", context)

    # -- history ------------------------------------------------------------------------------

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Who changed the row, when, why, and each field before and after, in words."""
        opts = self.model._meta  # type: ignore[attr-defined]
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            redirect: HttpResponse = self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, opts, object_id
            )
            return redirect
        if not self.has_view_or_change_permission(request, obj):  # type: ignore[attr-defined]
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": _("Change history: %s") % obj,
            "subtitle": None,
            "opts": opts,
            "object": obj,
            "entries": audit_entries(obj, self.money_fields),
            "change_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
            ),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "records/object_history.html", context)


@dataclass(frozen=True)
class AuditEntry:
    """One change to a record: when, by whom, why, and each field before → after."""

    at: datetime
    who: str
    reason: str
    first: bool
    by_system: bool
    changes: list[tuple[str, str, str]]


def audit_entries(obj: Any, money_fields: Mapping[str, Any]) -> list[AuditEntry]:
    """The history of ``obj``, newest first, each entry compared with the one before it."""
    records = list(
        obj.history.order_by("history_date", "history_id").select_related("history_user")
    )
    fields = [f for f in records[0].tracked_fields if f.name != "id"] if records else []
    entries: list[AuditEntry] = []
    previous: Any = None
    for record in records:
        changes = []
        if previous is not None:
            for f in fields:
                before, after = getattr(previous, f.attname), getattr(record, f.attname)
                if before != after:
                    changes.append(
                        (
                            label_of(f, money_fields),
                            value_words(f, before, money_fields),
                            value_words(f, after, money_fields),
                        )
                    )
        user = record.history_user
        entries.append(
            AuditEntry(
                at=record.history_date,
                who=(user.get_full_name() or user.get_username()) if user else _("the system"),
                reason=record.history_change_reason or "",
                first=previous is None,
                by_system=user is None,
                changes=changes,
            )
        )
        previous = record
    return entries[::-1]


def label_of(f: models.Field[Any, Any], money_fields: Mapping[str, Any]) -> str:
    """A field's label; money fields by their label in yuan (the models' say fen)."""
    return str(money_fields.get(f.name, f.verbose_name))


def value_words(f: models.Field[Any, Any], value: Any, money_fields: Mapping[str, Any]) -> str:
    """A field's value as people read it: labels for codes, ¥ for money, names for links."""
    if value is None or value == "":
        return "—"
    if f.name in money_fields:
        return yuan(int(value))
    if f.choices:
        labels: Mapping[Any, Any] = dict(f.flatchoices)
        return str(labels.get(value, value))
    if isinstance(f, models.ForeignKey):
        related = f.related_model._default_manager.filter(pk=value).first()
        return str(related) if related is not None else f"#{value}"
    if isinstance(value, bool):
        return pgettext("records", "yes") if value else pgettext("records", "no")
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "DATETIME_FORMAT")
    return str(value)
