"""Per-lot scoping in the back office: every side door keeps to the user's lots.

The admin mixins here apply the rule of ``eppark.accounts.scoping`` (which lot
a row belongs to, which lots a user serves) to every side door of the back
office: the list, its filter sidebar, search, date hierarchy, the add and
change forms with every dropdown, inline forms, history pages, and saving — a
save that would tie a row to a lot the user does not serve, or join rows of
two lots, is refused with a form error, and if anything slips past the form,
with a 403 before anything is written.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.filters import (
    AllValuesFieldListFilter,
    FieldListFilter,
    RelatedFieldListFilter,
)
from django.core.exceptions import PermissionDenied
from django.db.models import Field, QuerySet

from eppark.accounts.scoping import (
    _crosses_many,
    is_scoped_model,
    lot_conflicts,
    lot_id_of,
    lot_ids,
    lot_path_for,
    may_act_on_lot,
    related_lots,
    restrict,
    scope,
)


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
