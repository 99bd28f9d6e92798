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

The admin mixins below apply this to every side door of the back office:
the list, its filter sidebar, search, date hierarchy, the add and change
forms with every dropdown, inline forms, history pages, and saving — a save
that would tie a row to a lot the user does not serve, or join rows of two
lots, is refused with a form error, and if anything slips past the form, with
a 403 before anything is written.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.contrib.admin.filters import (
    AllValuesFieldListFilter,
    FieldListFilter,
    RelatedFieldListFilter,
)
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Field, Model, QuerySet
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


def _checked_form(form_class: Any, user: Any) -> Any:
    """``form_class`` with the lot check of the row it saves, for ``user``."""
    if getattr(form_class, "_lot_checked_for", None) is user:
        return form_class
    return type(form_class.__name__, (LotCheckedForm, form_class), {"_lot_checked_for": user})


class LotCheckedForm:
    """Form mixin: the row being saved keeps to the user's lots and to one lot.

    A row whose ``lot`` the form does not show (an inline camera under its robot)
    takes the lot of the rows it links to.
    """

    _lot_checked_for: Any = None

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        instance = self.instance  # type: ignore[attr-defined]
        fields = self.fields  # type: ignore[attr-defined]
        opts = instance._meta
        if (
            "lot" not in fields
            and any(f.name == "lot" for f in opts.concrete_fields)
            and getattr(instance, "lot_id", 0) is None
        ):
            found = set(related_lots(instance).values())
            if len(found) == 1:
                instance.lot_id = found.pop()
        for name, message in lot_conflicts(instance, self._lot_checked_for).items():
            self.add_error(name if name in fields else None, message)  # type: ignore[attr-defined]


class _ScopedChoices:
    """Every dropdown, multi-select and autocomplete offers only rows the user may see."""

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """Choices for foreign keys come from the user's lots only."""
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.all()
        kwargs["queryset"] = scope(queryset, request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """Choices for many-to-many fields come from the user's lots only."""
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.all()
        kwargs["queryset"] = scope(queryset, request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


def _scoped_filter(factory: Any) -> Any:
    """A list-filter factory whose choices are narrowed to what the user may see."""

    def create(
        field: Field[Any, Any],
        request: Any,
        params: Any,
        model: Any,
        model_admin: Any,
        field_path: str,
    ) -> Any:
        spec: Any = factory(field, request, params, model, model_admin, field_path=field_path)
        if isinstance(spec, RelatedFieldListFilter):
            spec.lookup_choices = _scoped_related_choices(spec, request, model_admin)
        elif isinstance(spec, AllValuesFieldListFilter):
            rows = model_admin.get_queryset(request).order_by(field_path)
            values: Any = rows.values_list(field_path, flat=True).distinct()
            scoped: Any = spec
            scoped.lookup_choices = [v for v in values if v is not None]
        return spec

    create.scoped = True  # type: ignore[attr-defined]
    return create


def _scoped_related_choices(spec: Any, request: Any, model_admin: Any) -> list[Any]:
    field = spec.field
    remote = field.related_model
    target = field.target_field.attname if hasattr(field, "target_field") else "pk"
    if lot_ids(request.user) is None:
        return list(spec.lookup_choices)
    allowed = scope(remote._default_manager.all(), request.user)
    keep = set(allowed.values_list(target, flat=True))
    if not is_scoped_model(remote):
        # rows with no lot of their own (a group): only those the visible rows use
        keep = set(
            model_admin.get_queryset(request)
            .order_by()
            .values_list(spec.field_path, flat=True)
            .distinct()
        )
    return [(value, label) for value, label in spec.lookup_choices if value in keep]


class LotScopedInlineMixin(_ScopedChoices):
    """Inline mixin: rows, dropdowns and saved rows of the user's lots only."""

    def get_queryset(self, request: Any) -> QuerySet[Any]:
        """Only rows of the user's lots."""
        return scope(super().get_queryset(request), request.user)  # type: ignore[misc]

    def get_formset(self, request: Any, obj: Any = None, **kwargs: Any) -> Any:
        """Each inline form checks the lots of the row it saves."""
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        formset.form = _checked_form(formset.form, request.user)
        return formset


_SCOPED_INLINES: dict[Any, type[Any]] = {}


def _scoped_inline_class(inline_class: type[Any]) -> type[Any]:
    if inline_class not in _SCOPED_INLINES:
        name = f"LotScoped{inline_class.__name__}"
        _SCOPED_INLINES[inline_class] = type(name, (LotScopedInlineMixin, inline_class), {})
    return _SCOPED_INLINES[inline_class]


class LotScopedAdminMixin(_ScopedChoices):
    """Admin mixin: list, filter, search, open, change, link and save only the user's lots.

    ``lot_path`` is the lookup from the model to its lot; None (the default) derives
    it from the model (see ``lot_path_for``). Inlines are scoped the same way,
    whether or not they use ``LotScopedInlineMixin`` themselves.
    """

    lot_path: str | None = None

    def _scope(self, queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
        if self.lot_path is not None:
            return restrict(queryset, user, self.lot_path)
        return scope(queryset, user)

    def get_queryset(self, request: Any) -> QuerySet[Any]:
        """Only rows of the user's lots."""
        return self._scope(super().get_queryset(request), request.user)  # type: ignore[misc]

    def get_list_filter(self, request: Any) -> Any:
        """Filter sidebars offer only choices of the user's lots."""
        entries = super().get_list_filter(request)  # type: ignore[misc]
        scoped: list[Any] = []
        for entry in entries:
            if isinstance(entry, str):
                scoped.append((entry, _scoped_filter(FieldListFilter.create)))
            elif isinstance(entry, (tuple, list)) and not getattr(entry[1], "scoped", False):
                scoped.append((entry[0], _scoped_filter(entry[1])))
            else:
                scoped.append(entry)
        return scoped

    def get_form(self, request: Any, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        """The form checks the lots of the row it saves."""
        form = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        return _checked_form(form, request.user)

    def get_changelist_form(self, request: Any, **kwargs: Any) -> Any:
        """Rows edited in the list are checked as on their own page."""
        form = super().get_changelist_form(request, **kwargs)  # type: ignore[misc]
        return _checked_form(form, request.user)

    def get_inline_instances(self, request: Any, obj: Any = None) -> list[Any]:
        """Every inline scoped, even one declared without the inline mixin."""
        inlines: list[Any] = super().get_inline_instances(request, obj)  # type: ignore[misc]
        for inline in inlines:
            if not isinstance(inline, LotScopedInlineMixin):
                inline.__class__ = _scoped_inline_class(type(inline))
        return inlines

    def _in_scope(self, request: Any, obj: Any) -> bool:
        if obj is None or obj.pk is None:
            return True
        path = self.lot_path or lot_path_for(type(obj))
        if path is not None and not _crosses_many(type(obj), path):
            return may_act_on_lot(request.user, lot_id_of(obj, path))
        return self._scope(self.model._default_manager.filter(pk=obj.pk), request.user).exists()  # type: ignore[attr-defined]

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

    def has_view_history_permission(self, request: Any, obj: Any = None) -> bool:
        """A row's history (django-simple-history) only for a row of the user's lots."""
        parent = getattr(super(), "has_view_history_permission", None)
        allowed = parent(request, obj) if parent else self.has_view_permission(request, obj)
        return bool(allowed) and self._in_scope(request, obj)

    def has_change_history_permission(self, request: Any, obj: Any = None) -> bool:
        """Reverting a row to a past version only for a row of the user's lots."""
        parent = getattr(super(), "has_change_history_permission", None)
        allowed = parent(request, obj) if parent else self.has_change_permission(request, obj)
        return bool(allowed) and self._in_scope(request, obj)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        """Refuse (403, nothing written) a row that leaves the user's lots or joins two."""
        if not self._in_scope(request, obj) or lot_conflicts(obj, request.user):
            raise PermissionDenied
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        """The same refusal for every inline row."""
        for inline_form in formset.forms:
            instance: Any = getattr(inline_form, "instance", None)
            changed = instance is not None and inline_form.has_changed()
            if changed and lot_conflicts(instance, request.user):
                raise PermissionDenied
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
