"""Per-lot scoping: a staff member sees and changes only the lots they serve.

Superusers and the admin role see every lot; everyone else sees the lots in
their profile, and a user without a profile sees none.

Which lot a row belongs to is derived from the model, never listed by hand, so
a model added later is scoped the day it is registered:

- a lot is its own lot;
- a row with a foreign key to a lot belongs to that lot (``lot``);
- otherwise it belongs to the lot of the first lot-bound row it points at
  (a plate read through its camera: ``camera__lot``);
- a user is seen by the staff of the lots they serve (see ``visible_users``),
  and a row bound to a user (a seat, a staff profile) goes with its user;
- anything else (groups, permissions) holds nothing of a lot.

A row being saved may link only to rows of lots the user serves, and only to
rows of one lot (``lot_conflicts``). The back office applies all this through
the admin mixins in ``eppark.accounts.admin_scoping``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.utils.translation import gettext as _

from eppark.accounts.models import Role

M = TypeVar("M", bound=Model)

_MAX_DEPTH = 4


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


def _crosses_many(model: type[Model], path: str) -> bool:
    """Whether the lookup ``path`` from ``model`` passes a to-many relation."""
    current: Any = model
    for part in path.split("__"):
        if part == "pk":
            return False
        field = current._meta.get_field(part)
        if field.many_to_many or field.one_to_many:
            return True
        if not field.is_relation:
            return False
        current = field.related_model
    return False


def restrict(queryset: QuerySet[M], user: Any, lot_path: str = "lot") -> QuerySet[M]:
    """``queryset`` narrowed to rows whose ``lot_path`` is a lot ``user`` serves."""
    allowed = lot_ids(user)
    if allowed is None:
        return queryset
    lookup = {f"{lot_path}__in": allowed}
    if _crosses_many(queryset.model, lot_path):
        return queryset.filter(pk__in=queryset.model._default_manager.filter(**lookup).values("pk"))
    return queryset.filter(**lookup)


def may_act_on_lot(user: Any, lot_id: int | None) -> bool:
    """Whether ``user`` serves the lot with id ``lot_id``."""
    allowed = lot_ids(user)
    return allowed is None or (lot_id is not None and lot_id in allowed)


def _is_lot(model: Any) -> bool:
    return getattr(model, "_meta", None) is not None and model._meta.label == "lots.Lot"


def _is_user(model: Any) -> bool:
    return getattr(model, "_meta", None) is not None and (
        model._meta.label == settings.AUTH_USER_MODEL
    )


def _forward_links(model: type[Model]) -> list[Any]:
    """The model's own foreign keys and one-to-one links, in declaration order."""
    return [
        f
        for f in model._meta.concrete_fields
        if f.is_relation and (f.many_to_one or f.one_to_one) and f.related_model is not None
    ]


_LOT_PATHS: dict[Any, str | None] = {}


def lot_path_for(model: type[Model]) -> str | None:
    """The lookup from ``model`` to its lot: ``"pk"`` for a lot, None if it has none."""
    if model not in _LOT_PATHS:
        _LOT_PATHS[model] = _lot_path(model, 0)
    return _LOT_PATHS[model]


def _lot_path(model: type[Model], depth: int) -> str | None:
    if _is_lot(model):
        return "pk"
    if depth > _MAX_DEPTH:
        return None
    links = _forward_links(model)
    direct = [f for f in links if _is_lot(f.related_model)]
    if direct:
        named = [f for f in direct if f.name == "lot"]
        return str((named or direct)[0].name)
    for field in links:
        target = field.related_model
        if target is model or _is_user(target):
            continue
        path = _lot_path(target, depth + 1)
        if path is not None:
            return f"{field.name}__{path}" if path != "pk" else str(field.name)
    return None


def _user_link(model: type[Model]) -> str | None:
    """The link from a row that goes with a user (a seat, a staff profile) to that user."""
    for field in _forward_links(model):
        if _is_user(field.related_model):
            return str(field.name)
    return None


def visible_users(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    """Users ``user`` may see: staff of a lot they serve; admins and superusers not."""
    allowed = lot_ids(user)
    if allowed is None:
        return queryset
    from eppark.accounts.models import StaffProfile

    serving = StaffProfile.objects.filter(lots__in=allowed).exclude(role=Role.ADMIN)
    return queryset.filter(pk__in=serving.values("user_id"), is_superuser=False)


def scope(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    """``queryset`` narrowed to what ``user`` may see of it, whatever its model."""
    model = queryset.model
    path = lot_path_for(model)
    if path is not None:
        return restrict(queryset, user, path)
    if _is_user(model):
        return visible_users(queryset, user)
    link = _user_link(model)
    if link is not None and lot_ids(user) is not None:
        remote: Any = model._meta.get_field(link).related_model
        users = visible_users(remote._default_manager.all(), user)
        return queryset.filter(**{f"{link}__in": users.values("pk")})
    return queryset


def is_scoped_model(model: type[Model]) -> bool:
    """Whether rows of ``model`` belong to a lot or to a lot's staff."""
    return lot_path_for(model) is not None or _is_user(model) or _user_link(model) is not None


def lot_id_of(obj: Any, path: str | None = None) -> int | None:
    """The id of the lot ``obj`` belongs to (None when it has none or it is not set)."""
    path = path if path is not None else lot_path_for(type(obj))
    if path is None or obj is None:
        return None
    if path == "pk":
        return obj.pk  # type: ignore[no-any-return]
    value: Any = obj
    parts = path.split("__")
    try:
        for part in parts[:-1]:
            value = getattr(value, part, None)
            if value is None:
                return None
        return getattr(value, f"{parts[-1]}_id", None)
    except ObjectDoesNotExist:
        return None


def _related(obj: Model, field: Any) -> Any:
    """The row ``field`` of ``obj`` points at, unsaved or not; None if it points nowhere."""
    if field.is_cached(obj):
        return field.get_cached_value(obj)
    if getattr(obj, field.attname, None) is None:
        return None
    try:
        return getattr(obj, field.name)
    except ObjectDoesNotExist:
        return None


def related_lots(obj: Model) -> dict[str, int]:
    """Per link of ``obj`` to a lot-bound row, the lot that row belongs to."""
    lots: dict[str, int] = {}
    for field in _forward_links(type(obj)):
        path = lot_path_for(field.related_model)
        if path is None:
            continue
        target = _related(obj, field)
        lot = lot_id_of(target, path) if target is not None else None
        if lot is not None:
            lots[str(field.name)] = lot
    return lots


def lot_conflicts(obj: Model, user: Any) -> dict[str | None, str]:
    """Why ``obj`` may not be saved by ``user``, per form field (None: the whole row).

    Refused: a link to a row of a lot the user does not serve, and links to rows of
    different lots (a lot-A camera at a lot-B gate).
    """
    errors: dict[str | None, str] = {}
    lots = related_lots(obj)
    for name, lot in lots.items():
        if not may_act_on_lot(user, lot):
            errors[name] = _("This belongs to a lot you do not serve.")
    if errors:
        return errors
    own = lots.get("lot")
    if own is None and lots:
        own = next(iter(lots.values()))
    for name, lot in lots.items():
        if lot != own:
            errors[name] = _("This belongs to another lot than the row itself.")
    if not errors and obj.pk is not None and "lot" in lots:
        moved = _moved_with_dependants(obj, lots["lot"])
        if moved:
            errors["lot"] = moved
    return errors


def _moved_with_dependants(obj: Model, new_lot: int) -> str:
    """A message if ``obj`` changes lot while rows of its old lot still point at it."""
    stored = type(obj)._default_manager.filter(pk=obj.pk).values_list("lot_id", flat=True).first()
    if stored is None or stored == new_lot:
        return ""
    relation: Any
    for relation in obj._meta.get_fields(include_hidden=True):
        if relation.concrete or not (relation.one_to_many or relation.one_to_one):
            continue
        if hasattr(relation.related_model, "instance_type"):
            continue  # a past version (django-simple-history) keeps its old lot
        path = lot_path_for(relation.related_model)
        link = relation.field.name
        if path is None or path == link or path.startswith(f"{link}__"):
            continue  # rows whose lot is this row's move with it (a robot's events)
        rows = relation.related_model._default_manager.filter(**{link: obj.pk})
        if rows.exclude(**{path: new_lot}).exists():
            return _("Rows of its present lot still refer to it; move or unlink them first.")
    return ""
