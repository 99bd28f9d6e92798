"""Call centres (admins only), and the calls and call events they reported (read-only, per lot).

A call centre's endpoint key is stored as its digest: the back office shows only
its last characters; a new key is typed once (never shown again). Its signing
secret is write-only: never rendered; left blank, it stays as it was.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.accounts.scoping import sees_all_lots
from eppark.calls.models import Call, CallCentre, CallEvent
from eppark.devices.admin import AuditedAdmin
from eppark.provisioning.schema import MAX_KEY_LENGTH
from eppark.records.admin import ReadOnlyAdminMixin


class CallCentreForm(forms.ModelForm):  # type: ignore[type-arg]
    """The call-centre form: a new endpoint key and the secret are write-only."""

    new_key = forms.RegexField(
        label=_("new endpoint key"),
        regex=r"^[A-Za-z0-9._~-]+$",
        required=False,
        strip=True,
        max_length=MAX_KEY_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "The secret part of /cti/<provider>/<key> (letters, digits, . _ ~ -). Never shown "
            "again. Leave blank to keep the current one."
        ),
    )
    new_secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Never shown. Leave blank to keep the current one."),
    )
    clear_secret = forms.BooleanField(label=_("remove the signing secret"), required=False)
    callout_url = forms.URLField(
        label=_("callout address"),
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text=_("Generic: where callouts are posted. TiNet: the OpenAPI base (…/callout)."),
    )

    class Meta:
        model = CallCentre
        fields = ("provider", "name", "callout_url", "access_key_id")

    def clean(self) -> dict[str, Any]:
        """A new centre needs a key; a key is used by one centre only."""
        cleaned: dict[str, Any] = super().clean() or {}
        key = cleaned.get("new_key") or ""
        if not key and self.instance.pk is None:
            self.add_error("new_key", _("A new call centre needs an endpoint key."))
        if key:
            probe = CallCentre()
            probe.key = key
            same = CallCentre.objects.filter(key_digest=probe.key_digest)
            if self.instance.pk is not None:
                same = same.exclude(pk=self.instance.pk)
            if same.exists():
                self.add_error("new_key", _("Another call centre has this key."))
        return cleaned

    def save(self, commit: bool = True) -> CallCentre:
        """Set the new key and secret (if given) on the centre."""
        centre: CallCentre = super().save(commit=False)
        if self.cleaned_data.get("new_key"):
            centre.key = self.cleaned_data["new_key"]
        if self.cleaned_data.get("clear_secret"):
            centre.secret = ""
        elif self.cleaned_data.get("new_secret"):
            centre.secret = self.cleaned_data["new_secret"]
        if commit:
            centre.save()
        return centre


@admin.register(CallCentre)
class CallCentreAdmin(AuditedAdmin):
    """Call-centre integrations: only admins see or change them (keys and secrets hidden)."""

    form = CallCentreForm
    list_display = ("name", "provider", "endpoint_key", "callout_url", "signed")
    list_filter = ("provider",)
    search_fields = ("name",)
    readonly_fields = ("endpoint_key", "signed", "created_at")
    fields = (
        "provider",
        "name",
        "endpoint_key",
        "new_key",
        "callout_url",
        "access_key_id",
        "signed",
        "new_secret",
        "clear_secret",
        "created_at",
    )

    @admin.display(description=_("endpoint key"))
    def endpoint_key(self, obj: CallCentre) -> str:
        """The key masked (its last characters at most)."""
        return obj.masked_key if obj.pk else "—"

    @admin.display(description=_("signed"), boolean=True)
    def signed(self, obj: CallCentre) -> bool:
        """Whether events and callouts are signed (a secret is set); never the secret."""
        return bool(obj.secret)

    def _admin(self, request: HttpRequest) -> bool:
        return sees_all_lots(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Shown to admins only."""
        return self._admin(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Admins only."""
        return self._admin(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Admins only."""
        return self._admin(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Admins only."""
        return self._admin(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Admins only (a centre with calls cannot be deleted: they keep it)."""
        return self._admin(request) and super().has_delete_permission(request, obj)


@admin.register(Call)
class CallAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Calls: inbound from robots and the hotline, agents' callouts; read-only, per lot."""

    list_display = (
        "started_at",
        "direction",
        "state",
        "caller",
        "callee",
        "seat",
        "agent",
        "lot",
        "gate",
        "plate",
        "failure",
    )
    list_filter = ("direction", "state", "lot")
    search_fields = ("caller", "callee", "plate", "seat")
    date_hierarchy = "started_at"
    list_select_related = ("agent", "lot", "gate")


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdminMixin, LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Events as the call centre sent them; read-only, per lot (through their call)."""

    list_display = ("received_at", "event", "provider_call_id", "call", "at")
    list_filter = ("event",)
    search_fields = ("provider_call_id",)
    date_hierarchy = "received_at"
    list_select_related = ("call",)
