"""Per-lot scoping: a staff member sees and changes only the lots they serve.

Superusers and the admin role see every lot; everyone else sees the lots in
their profile, and a user without a profile sees none.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet

from eppark.accounts.models import Role

M = TypeVar("M", bound=Model)


def sees_all_lots(user: Any) -> bool:
    """Whether ``user`` is exempt from per-lot scoping."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "staff", None)
    return profile is not None and profile.role == Role.ADMIN


def lot_ids(user: Any) -> set[int] | None:
    """The ids of the lots ``user`` may see; None means every lot."""
    if sees_all_lots(user):
        return None
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    profile = getattr(user, "staff", None)
    if profile is None:
        return set()
    return set(profile.lots.values_list("id", flat=True))


def restrict(queryset: QuerySet[M], user: Any, lot_path: str = "lot") -> QuerySet[M]:
    """``queryset`` narrowed to rows whose ``lot_path`` is a lot ``user`` serves."""
    allowed = lot_ids(user)
    if allowed is None:
        return queryset
    return queryset.filter(**{f"{lot_path}__in": allowed})


def may_act_on_lot(user: Any, lot_id: int | None) -> bool:
    """Whether ``user`` serves the lot with id ``lot_id``."""
    allowed = lot_ids(user)
    return allowed is None or (lot_id is not None and lot_id in allowed)


class LotScopedAdminMixin:
    """Admin mixin: list, open, change and link only rows of the lots the user serves.

    ``lot_path`` is the lookup from the model to its lot (``"lot"``, ``"gate__lot"``,
    or ``"pk"`` for the Lot model itself).
    """

    lot_path = "lot"
    scoped_foreign_keys: dict[str, str] = {
        "lot": "pk",
        "gate": "lot",
        "entry_gate": "lot",
        "exit_gate": "lot",
        "robot": "lot",
        "monthly_pass": "lot",
        "stay": "lot",
        "visit": "lot",
    }

    def get_queryset(self, request: Any) -> QuerySet[Any]:
        """Only rows of the user's lots."""
        return restrict(super().get_queryset(request), request.user, self.lot_path)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """Choices for lot-bound foreign keys come from the user's lots only."""
        path = self.scoped_foreign_keys.get(db_field.name)
        if path is not None:
            queryset = kwargs.get("queryset") or db_field.remote_field.model._default_manager.all()
            kwargs["queryset"] = restrict(queryset, request.user, path)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def _lot_id(self, obj: Any) -> int | None:
        value: Any = obj
        if self.lot_path == "pk":
            return obj.pk  # type: ignore[no-any-return]
        for part in self.lot_path.split("__"):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value.pk  # type: ignore[no-any-return]

    def _in_scope(self, request: Any, obj: Any) -> bool:
        return obj is None or obj.pk is None or may_act_on_lot(request.user, self._lot_id(obj))

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        """Viewing needs the permission and, for one row, its lot."""
        allowed: bool = super().has_view_permission(request, obj)  # type: ignore[misc]
        return allowed and self._in_scope(request, obj)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Changing needs the permission and, for one row, its lot."""
        allowed: bool = super().has_change_permission(request, obj)  # type: ignore[misc]
        return allowed and self._in_scope(request, obj)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Deleting needs the permission and, for one row, its lot."""
        allowed: bool = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed and self._in_scope(request, obj)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        """Refuse to save a row into a lot the user does not serve."""
        if self.lot_path != "pk" and not may_act_on_lot(request.user, self._lot_id(obj)):
            raise PermissionDenied
        super().save_model(request, obj, form, change)  # type: ignore[misc]
