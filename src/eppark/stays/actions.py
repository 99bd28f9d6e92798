"""Named actions on stays: each asks for a reason and leaves an audit entry (who, when, what).

A stay's times, amounts and plate change only here once the gate loop has written them;
the back office's change form shows them read-only. What a stay owes is the domain's
(``eppark.domain.stays.charge``, the rule the exit gate follows), never typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from eppark.domain import stays as stay_rules
from eppark.domain.decide import EnteredAs as Entry
from eppark.domain.plates import classify, normalize
from eppark.orders import placing
from eppark.records.errors import Refused, required_reason
from eppark.records.history import record_baseline, stamp
from eppark.stays.models import EnteredAs, Stay, StayState


def close_by_hand(stay: Stay, user: Any, exited_at: datetime, reason: str) -> Stay:
    """End an open stay whose car left unseen (e.g. tailgated out); frees its space.

    The fee is the tariff's for the stay up to ``exited_at``, counting paid orders, the
    same sum the exit gate would have charged.
    """
    reason = required_reason(reason)
    now = timezone.now()
    if exited_at > now:
        raise Refused(_("The exit time cannot be in the future."))
    with transaction.atomic():
        locked = Stay.objects.select_for_update().select_related("lot").get(pk=stay.pk)
        if locked.exited_at is not None:
            raise Refused(
                _("This stay has already ended (%(state)s at %(at)s).")
                % {"state": locked.get_state_display(), "at": _moment(locked.exited_at)}
            )
        if exited_at < locked.entered_at:
            raise Refused(
                _("The exit time cannot be before the entry (%(at)s).")
                % {"at": _moment(locked.entered_at)}
            )
        record_baseline(locked, now)
        if locked.entered_as != EnteredAs.PASS:
            cost = stay_rules.charge(
                stay_rules.OpenStay(Entry.TEMP, locked.entered_at),
                locked.lot.tariff or {},
                placing.stay_payments(locked),
                exited_at,
            )
            locked.total, locked.paid = cost.paid + cost.due, cost.paid
        locked.exited_at = exited_at
        locked.state = StayState.CLOSED_BY_HAND
        locked.closed_by = user
        locked.close_note = reason
        stamp(locked, user, reason)
        locked.save(
            update_fields=["exited_at", "state", "closed_by", "close_note", "total", "paid"]
        )
    return locked


def correct_plate(stay: Stay, user: Any, plate: str, reason: str) -> Stay:
    """Put right a stay's plate (misread, or an unplated car identified)."""
    reason = required_reason(reason)
    corrected = normalize(plate or "")
    if classify(corrected) is None:
        raise Refused(_("“%(plate)s” is not a valid plate.") % {"plate": plate})
    with transaction.atomic():
        locked = Stay.objects.select_for_update().get(pk=stay.pk)
        if locked.plate == corrected:
            raise Refused(_("The stay's plate is already %(plate)s.") % {"plate": corrected})
        if locked.exited_at is None:
            other = (
                Stay.objects.filter(lot_id=locked.lot_id, plate=corrected, exited_at__isnull=True)
                .exclude(pk=locked.pk)
                .first()
            )
            if other is not None:
                raise Refused(
                    _(
                        "%(plate)s already has an open stay in this lot (entered %(at)s):"
                        " close that one first."
                    )
                    % {"plate": corrected, "at": _moment(other.entered_at)}
                )
        record_baseline(locked, timezone.now())
        locked.plate = corrected
        stamp(locked, user, reason)
        locked.save(update_fields=["plate"])
    return locked


def _moment(at: datetime) -> str:
    return date_format(timezone.localtime(at), "DATETIME_FORMAT")
