"""Monthly passes (月卡). A pass with more plates than spaces is a shared-space group (多位多车)."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

from eppark.domain.decide import PassView


class MonthlyPass(models.Model):
    """An owner's right to park ``spaces`` cars, any of its plates, in one lot for a period."""

    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="passes", verbose_name=_("lot")
    )
    owner = models.CharField(_("owner"), max_length=64)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    spaces = models.PositiveSmallIntegerField(_("spaces"), default=1)
    note = models.CharField(_("note"), max_length=256, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("monthly pass")
        verbose_name_plural = _("monthly passes")
        ordering = ["lot__code", "owner"]
        constraints = [
            models.CheckConstraint(condition=models.Q(spaces__gte=1), name="pass_spaces_positive"),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="pass_valid_until_after_from",
            ),
        ]

    def __str__(self) -> str:
        plates = ", ".join(p.plate for p in self.plates.all())
        return f"{self.owner} [{plates}]"

    @property
    def is_shared(self) -> bool:
        """Whether more cars share the pass than it has spaces."""
        return self.plates.count() > self.spaces

    def view(self, group_in_lot: int) -> PassView:
        """The pass as the decision engine sees it."""
        return PassView(self.valid_from, self.valid_until, self.spaces, group_in_lot)

    def expired_for_days(self, now: datetime) -> float:
        """Days since the pass expired (≤ 0 while valid)."""
        return (now - self.valid_until).total_seconds() / 86400


class PassPlate(models.Model):
    """One plate on a monthly pass; a plate has at most one pass per lot."""

    monthly_pass = models.ForeignKey(
        MonthlyPass, on_delete=models.CASCADE, related_name="plates", verbose_name=_("monthly pass")
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    plate = models.CharField(_("plate"), max_length=16)

    class Meta:
        verbose_name = _("pass plate")
        verbose_name_plural = _("pass plates")
        ordering = ["plate"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "plate"], name="one_pass_per_plate_per_lot")
        ]

    def __str__(self) -> str:
        return self.plate

    def save(self, *args: object, **kwargs: object) -> None:
        """Keep the lot in step with the pass."""
        self.lot_id = self.monthly_pass.lot_id
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class RenewalState(models.TextChoices):
    """Where a renewal application stands."""

    PENDING = "pending", _("pending")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class RenewalApplication(models.Model):
    """An owner's request to renew (or re-apply for) a monthly pass, reviewed by staff."""

    monthly_pass = models.ForeignKey(
        MonthlyPass,
        on_delete=models.CASCADE,
        related_name="renewals",
        verbose_name=_("monthly pass"),
    )
    lot = models.ForeignKey(
        "lots.Lot", on_delete=models.PROTECT, related_name="+", verbose_name=_("lot")
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    months = models.PositiveSmallIntegerField(_("months"), default=1)
    state = models.CharField(
        _("state"), max_length=16, choices=RenewalState.choices, default=RenewalState.PENDING
    )
    note = models.CharField(_("note"), max_length=256, blank=True)
    created_at = models.DateTimeField(_("applied"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        "auth.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )

    class Meta:
        verbose_name = _("renewal application")
        verbose_name_plural = _("renewal applications")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.monthly_pass} +{self.months}"
