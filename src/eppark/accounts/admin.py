"""Staff accounts in the back office: users with their role, lots and seat."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from eppark.accounts.models import StaffProfile


class StaffProfileInline(admin.StackedInline):  # type: ignore[type-arg]
    """The staff profile on the user form."""

    model = StaffProfile
    can_delete = False
    filter_horizontal = ("lots",)
    verbose_name_plural = _("staff profile")


class StaffUserAdmin(UserAdmin):  # type: ignore[type-arg]
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


admin.site.unregister(User)
admin.site.register(User, StaffUserAdmin)
