"""A staff member's role and the lots they may see and act on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """A staff role; each is a Django group of the same name with its permissions."""

    AGENT = "agent", _("agent")  # 客服
    OPERATOR = "operator", _("operator")  # 运营
    ADMIN = "admin", _("admin")  # 管理员


class StaffProfile(models.Model):
    """Who a staff user is in the business: name, role, lots served, seat."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=64, blank=True)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    lots = models.ManyToManyField(
        "lots.Lot",
        blank=True,
        related_name="staff",
        verbose_name=_("lots"),
        help_text=_("The lots this person may see and act on. Admins see every lot."),
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return self.name or self.user.get_username()
