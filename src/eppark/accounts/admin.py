"""Staff accounts in the back office: users with their role, lots and seat.

Who sees whom: superusers and the admin role see every user; anyone else sees
the staff of the lots they serve (never superusers or admins), and may change
only those whose every lot is one of theirs. Only superusers set superuser or
staff status, permissions, groups or the admin role by hand; for anyone else
staff status and groups follow the role (a staff profile) when they save a
user. Nobody but a superuser changes their own role, lots or active status, and
the admin role cannot change superusers or other admins.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from eppark.accounts.admin_scoping import LotScopedAdminMixin, LotScopedInlineMixin
from eppark.accounts.models import Role, StaffProfile
from eppark.accounts.roles import GROUP_NAMES
from eppark.accounts.scoping import lot_ids

GRANTED_BY_SUPERUSERS_ONLY = ("is_superuser", "is_staff", "groups", "user_permissions")
FIXED_FOR_ONESELF = ("is_active",)


def _is_self(request: HttpRequest, obj: Any) -> bool:
    return obj is not None and obj.pk == request.user.pk


class StaffProfileInline(LotScopedInlineMixin, admin.StackedInline):  # type: ignore[type-arg]
    """The staff profile on the user form."""

    model = StaffProfile
    can_delete = False
    filter_horizontal = ("lots",)
    verbose_name_plural = _("staff profile")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Nobody but a superuser changes their own role or lots."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser and _is_self(request, obj):
            fields += ("role", "lots")
        return fields

    def formfield_for_choice_field(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """Only a superuser makes someone an admin."""
        if db_field.name == "role" and not request.user.is_superuser:
            choices = db_field.get_choices(include_blank=not db_field.has_default())
            kwargs["choices"] = [(v, label) for v, label in choices if v != Role.ADMIN]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class StaffUserAdmin(LotScopedAdminMixin, UserAdmin):  # type: ignore[type-arg]
    """Users with their EP Park role and lots."""

    inlines = (StaffProfileInline,)
    list_display = ("username", "staff_name", "staff_role", "is_active", "last_login")
    list_filter = ("staff__role", "is_active", "staff__lots")
    search_fields = ("username", "first_name", "staff__name")

    @admin.display(description=_("name"))
    def staff_name(self, user: User) -> str:
        """The person's name."""
        profile = getattr(user, "staff", None)
        return profile.name if profile else user.get_full_name()

    @admin.display(description=_("role"))
    def staff_role(self, user: User) -> str:
        """The person's role."""
        profile = getattr(user, "staff", None)
        return str(profile.get_role_display()) if profile else "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Superuser status, groups and permissions are granted by superusers only."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += GRANTED_BY_SUPERUSERS_ONLY
            if _is_self(request, obj):
                fields += FIXED_FOR_ONESELF
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Superusers and admins are changed only by superusers (or themselves)."""
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or request.user.is_superuser or _is_self(request, obj):
            return True
        if obj.is_superuser:
            return False
        profile = getattr(obj, "staff", None)
        if profile is not None and profile.role == Role.ADMIN:
            return False
        allowed = lot_ids(request.user)
        if allowed is None:
            return True
        theirs = set(profile.lots.values_list("id", flat=True)) if profile else set()
        return theirs <= allowed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting a user needs the right to change them."""
        return super().has_delete_permission(request, obj) and (
            obj is None or self.has_change_permission(request, obj)
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Saved by a non-superuser, a user's staff status and groups follow their role."""
        super().save_related(request, form, formsets, change)
        if request.user.is_superuser:
            return
        user = form.instance
        profile = StaffProfile.objects.filter(user=user).first()
        if user.is_staff != (profile is not None):
            user.is_staff = profile is not None
            user.save(update_fields=["is_staff"])
        if profile is None:
            user.groups.clear()
            return
        user.groups.set(Group.objects.filter(name=GROUP_NAMES[Role(profile.role)]))


admin.site.unregister(User)
admin.site.register(User, StaffUserAdmin)
