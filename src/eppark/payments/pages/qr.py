"""The four QR flows behind a robot's ``/q/<token>`` (its token checked by ``stays.qr_pages``).

Each flow is bound to the token's visit (and so its gate and lot):

- unplated entry: ``手机号`` (or the app's user id) → ``确认进场`` → a ticket with a
  temporary plate, the entry gate opens (``eppark.stays.tickets.admit``);
- unplated exit: the same driver's ticket in this lot → the fee → ``立即支付``
  (an unplated order whose payment opens this exit), or, nothing due, a button
  that lets the car out;
- temp quick-pay: the visit's plate → its stay → the fee → ``立即支付``;
- monthly renewal: the visit's plate → its pass → the lot's renewal options →
  ``立即支付`` → the pass extended from its old end date.

Every form posts back to the same ``/q/<token>`` with a ``step``; a repeated
submit finds what the first one made (the ticket, the open order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.utils.translation import pgettext

from eppark.domain import billing
from eppark.domain.decide import Direction
from eppark.domain.scenarios import Qr
from eppark.orders import placing
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.payments import identity
from eppark.payments.pages import common
from eppark.records.errors import Refused
from eppark.stays import tickets
from eppark.stays.let_through import waiting_visit
from eppark.stays.models import GateVisit, UnplatedTicket

GATE_OF = {
    Qr.UNPLATED_ENTRY: Direction.ENTRY,
    Qr.UNPLATED_EXIT: Direction.EXIT,
    Qr.TEMP_PAYMENT: Direction.EXIT,
}
"""The gate a QR code's visit must be at (a renewal QR shows at either)."""


def serve(request: HttpRequest, kind: Qr, visit: GateVisit) -> HttpResponse:
    """The page for a valid token of ``kind`` for ``visit``."""
    if not _belongs(kind, visit):
        return common.message(
            request,
            pgettext("driver", "Wrong code"),
            pgettext(
                "driver",
                "This QR code does not belong to this gate: scan the code on the robot again.",
            ),
            status=400,
        )
    flow = {
        Qr.UNPLATED_ENTRY: unplated_entry,
        Qr.UNPLATED_EXIT: unplated_exit,
        Qr.TEMP_PAYMENT: temp_payment,
        Qr.MONTHLY_RENEWAL: monthly_renewal,
    }[kind]
    return flow(request, visit)


def _belongs(kind: Qr, visit: GateVisit) -> bool:
    """Whether the visit's gate (and the decision it was shown) is this QR code's."""
    direction = GATE_OF.get(kind)
    if direction is not None and visit.gate.direction != direction:
        return False
    display = (visit.decision or {}).get("display") if isinstance(visit.decision, dict) else None
    shown = display.get("qr") if isinstance(display, dict) else None
    return not shown or shown == kind or "/q/" in str(shown)


def _step(request: HttpRequest) -> str:
    return str(request.POST.get("step", "")) if request.method == "POST" else ""


# --- unplated entry ----------------------------------------------------------------------------


def unplated_entry(request: HttpRequest, visit: GateVisit) -> HttpResponse:
    """Register an unplated car: who the driver is → a ticket, the gate opens."""
    now = common.now()
    ticket = tickets.ticket_of_visit(visit)
    if ticket is not None:
        return _ticket_page(request, ticket)
    if (
        visit.opened
        or waiting_visit(visit.lot_id, "", Direction.ENTRY, now, visit_id=visit.pk) is None
    ):
        return _gone_from_gate(request)
    who = identity.identify(request)
    if isinstance(who, HttpResponse):
        return who
    context: dict[str, Any] = {"visit": visit, "lot": visit.lot, "known": who is not None}
    if request.method != "POST":
        return common.page(request, "unplated_entry.html", context)
    phone = ""
    if who is None:
        try:
            phone = tickets.clean_phone(str(request.POST.get("phone", "")))
        except Refused as refused:
            context.update(error=refused.message, phone=request.POST.get("phone", ""))
            return common.page(request, "unplated_entry.html", context, status=400)
    try:
        tickets.admit(visit, now, phone=phone, payer=who.user_id if who is not None else "")
    except Refused as refused:
        return common.message(
            request, pgettext("driver", "Cannot enter"), refused.message, status=409, call_hint=True
        )
    return common.redirect(request, request.path)


def _ticket_page(request: HttpRequest, ticket: UnplatedTicket) -> HttpResponse:
    lot = ticket.lot
    context = {
        "ticket": ticket,
        "lot": lot,
        "entered_at": common.local(ticket.stay.entered_at, lot),
        "tariff_text": lot.tariff_text,
    }
    return common.page(request, "ticket.html", context)


# --- unplated exit -----------------------------------------------------------------------------


def unplated_exit(request: HttpRequest, visit: GateVisit) -> HttpResponse:
    """The driver's ticket in this lot → the fee → pay (or, nothing due, leave)."""
    now = common.now()
    if visit.opened:
        return common.left_already(request)
    who = identity.identify(request)
    if isinstance(who, HttpResponse):
        return who
    payer = who.user_id if who is not None else ""
    context: dict[str, Any] = {"lot": visit.lot, "known": who is not None}
    if request.method != "POST":
        ticket = tickets.open_ticket(visit.lot_id, payer=payer) if payer else None
        if ticket is not None:
            return _ticket_bill(request, visit, ticket, now, phone="")
        return common.page(request, "find_ticket.html", context)
    phone = ""
    typed = str(request.POST.get("phone", "")).strip()
    if typed or who is None:
        try:
            phone = tickets.clean_phone(typed)
        except Refused as refused:
            context.update(error=refused.message, phone=typed)
            return common.page(request, "find_ticket.html", context, status=400)
    ticket = tickets.open_ticket(visit.lot_id, phone=phone, payer=payer)
    if ticket is None:
        return common.message(
            request,
            pgettext("driver", "No ticket found"),
            pgettext(
                "driver",
                "No unplated entry of yours is on record in this car park. Check the number you"
                " entered, or press the call button on the robot to reach an agent.",
            ),
            status=404,
            back=request.path,
            call_hint=True,
        )
    step = _step(request)
    if step == "pay":
        return common.pay_stay(
            request, ticket.stay, now, visit=visit, payer=payer or phone, back=request.path
        )
    if step == "leave":
        return common.leave(request, visit, ticket.stay, now, back=request.path)
    return _ticket_bill(request, visit, ticket, now, phone=phone)


def _ticket_bill(
    request: HttpRequest, visit: GateVisit, ticket: UnplatedTicket, now: datetime, *, phone: str
) -> HttpResponse:
    context = common.bill_context(ticket.stay, now, ticket.temp_plate)
    context.update(visit=visit, hidden={"phone": phone}, at_gate=True, unplated=True)
    return common.page(request, "bill.html", context)


# --- temp quick-pay at the exit ----------------------------------------------------------------


def temp_payment(request: HttpRequest, visit: GateVisit) -> HttpResponse:
    """The visit's plate → its open stay → the fee → pay (or, nothing due, leave)."""
    now = common.now()
    if visit.opened:
        return common.left_already(request)
    stay = common.open_stay(visit.lot_id, visit.plate) if visit.plate else None
    if stay is None:
        return common.message(
            request,
            pgettext("driver", "No entry record"),
            pgettext(
                "driver",
                "No entry of this car is on record in this car park:"
                " please press the call button on the robot to reach an agent.",
            ),
            status=404,
            call_hint=True,
        )
    step = _step(request)
    if step == "pay":
        return common.pay_stay(request, stay, now, visit=visit, payer="", back=request.path)
    if step == "leave":
        return common.leave(request, visit, stay, now, back=request.path)
    context = common.bill_context(stay, now, visit.plate)
    context.update(visit=visit, hidden={}, at_gate=True)
    return common.page(request, "bill.html", context)


# --- monthly renewal ---------------------------------------------------------------------------


def monthly_renewal(request: HttpRequest, visit: GateVisit) -> HttpResponse:
    """The visit's pass → the renewal options → pay → the pass extended (from its old end)."""
    now = common.now()
    held = (
        PassPlate.objects.select_related("monthly_pass__lot")
        .filter(lot_id=visit.lot_id, plate=visit.plate)
        .first()
        if visit.plate
        else None
    )
    if held is None:
        return common.message(
            request,
            pgettext("driver", "No monthly pass"),
            pgettext(
                "driver",
                "No monthly pass of this car is on record in this car park:"
                " please contact the management office.",
            ),
            status=404,
            call_hint=True,
        )
    monthly = held.monthly_pass
    if not placing.may_renew(monthly, now):
        return common.message(
            request,
            pgettext("driver", "Pass overdue"),
            pgettext(
                "driver",
                "Your monthly pass is overdue: please contact the management office"
                " to apply for a monthly pass again.",
            ),
            call_hint=True,
        )
    options = placing.renewal_options(monthly)
    if not options:
        return common.message(
            request,
            pgettext("driver", "Renewal unavailable"),
            pgettext(
                "driver",
                "This car park does not renew passes by phone:"
                " please contact the management office.",
            ),
            call_hint=True,
        )
    error = ""
    if _step(request) == "pay":
        try:
            months = int(str(request.POST.get("months", "")))
        except ValueError:
            months = 0
        if months not in {o.months for o in options}:
            error = pgettext("driver", "Please choose a renewal option.")
        else:
            who = identity.known(request)
            order = _renewal_paying(monthly, months, now)
            if order is None:
                try:
                    order = placing.order_for_renewal(
                        monthly,
                        months,
                        now,
                        plate=visit.plate,
                        visit=visit,
                        payer=who.user_id if who is not None else "",
                    )
                except Refused as refused:
                    return common.message(
                        request,
                        pgettext("driver", "Cannot renew"),
                        refused.message,
                        status=409,
                        call_hint=True,
                    )
            return common.start_payment(request, order, now, back=request.path)
    zone = ZoneInfo(monthly.lot.timezone)
    choices = [
        {
            "months": o.months,
            "price": common.yuan(o.price),
            "until": billing.renewed_until(monthly.valid_until, o.months, zone).strftime(
                "%Y-%m-%d"
            ),
        }
        for o in options
    ]
    context = {
        "lot": monthly.lot,
        "owner": common.mask_owner(monthly.owner),
        "plates": list(monthly.plates.values_list("plate", flat=True)),
        "valid_until": common.local(monthly.valid_until, monthly.lot, "%Y-%m-%d"),
        "expired": monthly.valid_until <= now,
        "choices": choices,
        "error": error,
    }
    return common.page(request, "renewal.html", context, status=400 if error else 200)


def _renewal_paying(monthly: MonthlyPass, months: int, now: datetime) -> Order | None:
    """A renewal of ``months`` already sent to a provider and still good (a second tap)."""
    return (
        Order.objects.filter(
            monthly_pass=monthly, months=months, state=OrderState.PAYING, expires_at__gt=now
        )
        .order_by("-created_at")
        .first()
    )


def _gone_from_gate(request: HttpRequest) -> HttpResponse:
    return common.message(
        request,
        pgettext("driver", "Scan again"),
        pgettext(
            "driver",
            "This code is no longer valid: the car is not waiting at this gate any more."
            " Drive up to the gate and scan the code on the robot again.",
        ),
        status=410,
    )
