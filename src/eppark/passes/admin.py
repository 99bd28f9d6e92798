"""Monthly passes (月卡), their plates, and renewal applications."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin
from eppark.domain.decide import PassStatus
from eppark.passes.models import MonthlyPass, PassPlate, RenewalApplication, RenewalState
from eppark.passes.standing import in_standing


class PassPlateInline(admin.TabularInline):  # type: ignore[type-arg]
    """A pass's plates."""

    model = PassPlate
    extra = 0
    fields = ("plate",)


class PassStatusFilter(admin.SimpleListFilter):
    """Filter passes by standing under each pass's own lot's expiry thresholds.

    Valid; expired but its exit still opens (the lot's ``expired_grace_days``);
    expired but still renewable (``expired_payable_days``); lapsed; not started.
    """

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, Any]]:
        """The standings, by the lots' own thresholds."""
        return [(key, label) for key, (_status, label) in STANDINGS.items()]

    def queryset(self, request: Any, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Passes in the chosen standing now."""
        chosen = STANDINGS.get(self.value() or "")
        if chosen is None:
            return queryset
        return in_standing(queryset, chosen[0], timezone.now())


STANDINGS: dict[str, tuple[PassStatus, Any]] = {
    "valid": (PassStatus.VALID, _("valid")),
    "grace": (PassStatus.EXPIRED_GRACE, _("expired, exit still opens")),
    "payable": (PassStatus.EXPIRED_PAYABLE, _("expired, can still be renewed")),
    "lapsed": (PassStatus.LAPSED, _("lapsed")),
    "future": (PassStatus.NONE, _("not started")),
}


@admin.register(MonthlyPass)
class MonthlyPassAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Monthly passes: owner, phone, plates, validity and shared-space groups."""

    list_display = (
        "owner",
        "phone",
        "plate_list",
        "lot",
        "valid_from",
        "valid_until",
        "standing",
        "spaces",
    )
    list_filter = (PassStatusFilter, "lot", "spaces")
    search_fields = ("owner", "phone", "plates__plate")
    list_select_related = ("lot",)
    inlines = (PassPlateInline,)
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[MonthlyPass]:
        """Passes with their plates prefetched."""
        return super().get_queryset(request).prefetch_related("plates").distinct()

    @admin.display(description=_("plates"))
    def plate_list(self, obj: MonthlyPass) -> str:
        """The pass's plates, comma-separated."""
        return ", ".join(p.plate for p in obj.plates.all())

    @admin.display(description=_("standing"))
    def standing(self, obj: MonthlyPass) -> str:
        """Valid, not started, or its standing under the lot's thresholds and for how long."""
        now = timezone.now()
        status = obj.view(0).status(now, obj.lot.policy)
        label = next(label for standing, label in STANDINGS.values() if standing is status)
        if status in (PassStatus.NONE, PassStatus.VALID):
            return str(label)
        days = obj.expired_for_days(now)
        return str(_("%(standing)s, %(days).1f days")) % {"standing": label, "days": days}


@admin.register(RenewalApplication)
class RenewalApplicationAdmin(LotScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Pending renewal applications, to approve or reject."""

    list_display = (
        "monthly_pass",
        "lot",
        "phone",
        "months",
        "state",
        "created_at",
        "decided_by",
        "decided_at",
    )
    list_filter = ("state", "lot")
    search_fields = ("phone", "monthly_pass__owner", "monthly_pass__plates__plate")
    list_select_related = ("lot", "monthly_pass", "decided_by")
    readonly_fields = ("decided_by", "decided_at", "created_at")
    actions = ("approve", "reject")

    @admin.action(description=_("Approve the selected applications"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[RenewalApplication]) -> None:
        """Mark pending applications approved (the renewal order follows payment)."""
        self._decide(request, queryset, RenewalState.APPROVED)

    @admin.action(description=_("Reject the selected applications"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[RenewalApplication]) -> None:
        """Mark pending applications rejected."""
        self._decide(request, queryset, RenewalState.REJECTED)

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[RenewalApplication], state: str
    ) -> None:
        count = queryset.filter(state=RenewalState.PENDING).update(
            state=state, decided_by=request.user, decided_at=timezone.now()
        )
        self.message_user(
            request, _("%(n)d application(s) updated.") % {"n": count}, messages.SUCCESS
        )
