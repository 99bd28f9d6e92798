"""Unplated cars' tickets (无牌车入场凭证): let the car in on a temporary plate, find it again.

An unplated car's read has no plate, so its entry gate shows the unplated-entry
QR code. The driver scans it and says who they are (a phone number, or the
WeChat/Alipay user id when the page is opened inside those apps); ``admit``
then, in one transaction with the outbox:

- gives the car a temporary plate (``eppark.domain.billing.temp_plate``, the
  lot's next free number: unique per lot);
- lets it through as ``entry.temp_allowed`` (the barrier opens, the robot says
  欢迎光临, a stay starts on the temporary plate);
- marks that stay unplated and keeps the ticket with it.

Admitting the same visit again gives the same ticket. At the exit ``open_ticket``
finds the driver's ticket again; the stay is priced and paid like a temp stay.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction
from django.utils.translation import pgettext

from eppark.domain import billing
from eppark.domain.decide import Direction
from eppark.lots.models import Lot
from eppark.records.errors import Refused
from eppark.stays.let_through import let_through, waiting_visit
from eppark.stays.models import EnteredAs, GateVisit, Stay, UnplatedTicket

_PHONE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()]")
_SEQUENCE_TRIES = 1000
"""How many taken numbers ``admit`` skips before giving up (only after a million tickets)."""


def clean_phone(text: str) -> str:
    """A mainland mobile number as typed (spaces, dashes, +86 allowed): its 11 digits.

    Refused for anything else, with a message for the driver.
    """
    phone = _PHONE_NOISE.sub("", text or "")
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    elif len(phone) == 13 and phone.startswith("86"):
        phone = phone[2:]
    if not _PHONE.fullmatch(phone):
        raise Refused(pgettext("driver", "Please enter a valid 11-digit mobile number."))
    return phone


def ticket_of_visit(visit: GateVisit) -> UnplatedTicket | None:
    """The ticket the unplated-entry visit gave, if any."""
    return UnplatedTicket.objects.select_related("stay", "lot").filter(entry_visit=visit).first()


def admit(visit: GateVisit, now: datetime, *, phone: str = "", payer: str = "") -> UnplatedTicket:
    """Let the unplated car waiting at ``visit`` in on a new ticket (the same one if it has one).

    ``phone`` (already clean) or ``payer`` (a WeChat/Alipay user id) says who the
    driver is; at least one is needed. Refused, changing nothing, when the car is
    no longer waiting at that entry gate.
    """
    if not phone and not payer:
        raise Refused(pgettext("driver", "Please enter your mobile number."))
    with transaction.atomic():
        # one ticket per lot at a time: the lot's next temporary plate is ours alone
        Lot.objects.select_for_update().filter(pk=visit.lot_id).first()
        existing = ticket_of_visit(visit)
        if existing is not None:
            return existing
        locked = GateVisit.objects.select_for_update().select_related("gate").get(pk=visit.pk)
        if locked.gate.direction != Direction.ENTRY:
            raise Refused(pgettext("driver", "This QR code does not belong to an entry gate."))
        if (
            locked.opened
            or waiting_visit(locked.lot_id, "", Direction.ENTRY, now, visit_id=locked.pk) is None
        ):
            raise Refused(
                pgettext(
                    "driver",
                    "The car is no longer waiting at the gate: scan the robot's code again.",
                )
            )
        plate = _next_temp_plate(locked.lot_id)
        if not let_through(locked, "entry.temp_allowed", now, plate=plate):
            raise Refused(
                pgettext("driver", "The gate could not be opened: please press the call button.")
            )
        locked.refresh_from_db(fields=["stay"])
        if locked.stay_id is None:  # the domain started no stay: nothing to hang a ticket on
            raise Refused(
                pgettext("driver", "The gate could not be opened: please press the call button.")
            )
        Stay.objects.filter(pk=locked.stay_id).update(entered_as=EnteredAs.UNPLATED)
        ticket = UnplatedTicket.objects.create(
            lot_id=locked.lot_id,
            temp_plate=plate,
            phone=phone,
            payer=payer[:128],
            stay_id=locked.stay_id,
            entry_visit=locked,
        )
    return UnplatedTicket.objects.select_related("stay", "lot").get(pk=ticket.pk)


def open_ticket(lot_id: int, *, phone: str = "", payer: str = "") -> UnplatedTicket | None:
    """The driver's latest ticket in the lot whose car is still inside (by user id, else phone)."""
    tickets = UnplatedTicket.objects.select_related("stay", "lot").filter(
        lot_id=lot_id, stay__exited_at__isnull=True
    )
    if payer:
        found = tickets.filter(payer=payer).order_by("-created_at", "-pk").first()
        if found is not None or not phone:
            return found
    if not phone:
        return None
    return tickets.filter(phone=phone).order_by("-created_at", "-pk").first()


def _next_temp_plate(lot_id: int) -> str:
    """The lot's next unused temporary plate (the caller holds the lot's row lock)."""
    taken = UnplatedTicket.objects.filter(lot_id=lot_id)
    sequence = taken.count() + 1
    for _attempt in range(_SEQUENCE_TRIES):
        plate = billing.temp_plate(sequence)
        if not taken.filter(temp_plate=plate).exists():
            return plate
        sequence += 1
    raise Refused(
        pgettext("driver", "No temporary plate is free in this lot: please press the call button.")
    )
