"""What the drivers' pages share: amounts, times, the result link, starting a payment."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import pgettext

from eppark.domain.decide import Direction
from eppark.domain.tariff import parse_rule
from eppark.evidence.links import public_url
from eppark.lots.models import Lot
from eppark.orders import placing
from eppark.orders.models import Order, OrderState
from eppark.payments import checkout, identity
from eppark.payments.providers import NoProvider, for_page
from eppark.payments.providers.base import ProviderError
from eppark.payments.providers.base import Refused as ProviderRefused
from eppark.records.errors import Refused
from eppark.stays.let_through import let_through, waiting_visit
from eppark.stays.models import GateVisit, Stay

log = logging.getLogger(__name__)

RESULT_SALT = "eppark.pay"
RESULT_MAX_AGE_S = 24 * 3600
"""A result link (``/pay/<token>/``) works for a day: the driver may come back to it."""
DEFAULT_GRACE_MINUTES = 15


def yuan(fen: int) -> str:
    """Fen as the pages write money: ``¥5.00`` (no thousands separator)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole}.{cents:02d}"


def duration(delta: timedelta) -> str:
    """A time parked in words: ``2小时5分钟`` / ``2 h 5 min``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return pgettext("driver", "%(d)d d %(h)d h %(m)d min") % {
            "d": days,
            "h": hours,
            "m": minutes,
        }
    if hours:
        return pgettext("driver", "%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    return pgettext("driver", "%(m)d min") % {"m": minutes}


def local(at: datetime | None, lot: Lot, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment in the lot's time zone."""
    if at is None:
        return "—"
    return at.astimezone(ZoneInfo(lot.timezone)).strftime(fmt)


def grace_minutes(lot: Lot) -> int:
    """The lot's free-exit window after paying (the tariff's ``exit_grace_minutes``)."""
    if not lot.tariff:
        return DEFAULT_GRACE_MINUTES
    try:
        return int(parse_rule(lot.tariff).exit_grace_minutes)
    except Exception:  # a broken tariff is the back office's to fix; the page says the default
        return DEFAULT_GRACE_MINUTES


def mask_owner(owner: str) -> str:
    """A pass owner's name as a page may show it: ``李四`` → ``李*``."""
    owner = owner.strip()
    if not owner:
        return "—"
    return owner[0] + "*" * max(1, len(owner) - 1)


def page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """A driver page (``payments/pages/<template>``), keeping a new sandbox user id."""
    response = render(request, f"payments/pages/{template}", context, status=status)
    response["Cache-Control"] = "no-store"
    return identity.remember(request, response)


def redirect(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect that keeps a new sandbox user id (a form posted before any page was shown)."""
    return identity.remember(request, HttpResponseRedirect(url))


def message(
    request: HttpRequest,
    title: str,
    text: str,
    *,
    status: int = 200,
    back: str = "",
    call_hint: bool = False,
    tone: str = "notice",
) -> HttpResponse:
    """A page that only says something (an error, a refusal, a done deal)."""
    context = {"title": title, "text": text, "back": back, "call_hint": call_hint, "tone": tone}
    return page(request, "message.html", context, status=status)


# --- the result link ---------------------------------------------------------------------------


def result_path(order: Order, back: str) -> str:
    """The signed path of an order's result page; ``back``: where "try again" leads."""
    token = signing.dumps({"o": order.pk, "b": back}, salt=RESULT_SALT, compress=True)
    return reverse("driver:result", args=[token])


def read_result_token(token: str) -> tuple[int, str]:
    """``(order id, back path)``; ``signing.BadSignature`` (or its subclass) if not ours."""
    claim = signing.loads(token, salt=RESULT_SALT, max_age=RESULT_MAX_AGE_S)
    try:
        back = str(claim.get("b") or "")
        return int(claim["o"]), back if back.startswith("/") and not back.startswith("//") else ""
    except (KeyError, TypeError, ValueError, AttributeError):
        raise signing.BadSignature("malformed result token") from None


# --- stays: the fee, paying it, leaving -------------------------------------------------------


def open_stay(lot_id: int, plate: str) -> Stay | None:
    """The plate's open stay in the lot (its latest)."""
    return (
        Stay.objects.select_related("lot")
        .filter(lot_id=lot_id, plate=plate, exited_at__isnull=True)
        .order_by("-entered_at", "-pk")
        .first()
    )


def last_payment(stay: Stay) -> Order | None:
    """The stay's latest paid order."""
    return (
        Order.objects.filter(stay=stay, state=OrderState.PAID, paid_at__isnull=False)
        .order_by("-paid_at")
        .first()
    )


def bill_context(stay: Stay, now: datetime, plate: str) -> dict[str, Any]:
    """What a fee page shows for ``stay``: time parked, fee, paid, due, the grace window."""
    lot = stay.lot
    charge = placing.stay_charge(stay, now)
    grace = grace_minutes(lot)
    paid = last_payment(stay)
    leave_by = paid.paid_at + timedelta(minutes=grace) if paid and paid.paid_at else None
    return {
        "lot": lot,
        "plate": plate,
        "entered_at": local(stay.entered_at, lot),
        "parked": duration(now - stay.entered_at),
        "total": yuan(charge.total),
        "paid": yuan(charge.paid),
        "paid_fen": charge.paid,
        "due": yuan(charge.due),
        "due_fen": charge.due,
        "is_pass": not placing.charged_as_temp(stay, now),
        "grace": grace,
        "leave_by": local(leave_by, lot, "%H:%M") if leave_by and leave_by > now else "",
        "tariff_text": lot.tariff_text,
    }


def paying_order(stay: Stay, now: datetime) -> Order | None:
    """An order of the stay already sent to a provider and still good (a second tap reuses it)."""
    return (
        Order.objects.filter(stay=stay, state=OrderState.PAYING, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )


def pay_stay(
    request: HttpRequest,
    stay: Stay,
    now: datetime,
    *,
    visit: GateVisit | None,
    payer: str,
    back: str,
) -> HttpResponse:
    """``立即支付`` for a stay: its order (placed or reused) to the provider's cashier.

    Nothing due (free minutes, or paid and inside the grace): the car waiting at
    ``visit`` is let out instead.
    """
    order = paying_order(stay, now)
    if order is None:
        try:
            order = placing.order_for_stay(stay, now, visit=visit, payer=payer)
        except Refused as refused:
            return message(request, pgettext("driver", "Cannot pay"), refused.message, status=409)
    if order is None:
        if visit is not None:
            return leave(request, visit, stay, now, back=back)
        return message(
            request,
            pgettext("driver", "Nothing to pay"),
            pgettext("driver", "Nothing is due now: please leave within the free period."),
            back=back,
            tone="ok",
        )
    return start_payment(request, order, now, back=back)


def leave(
    request: HttpRequest, visit: GateVisit, stay: Stay, now: datetime, *, back: str
) -> HttpResponse:
    """Let the car waiting at the exit ``visit`` out: only if nothing is due on its stay."""
    stay.refresh_from_db()
    if stay.exited_at is not None:
        return left_already(request)
    if not placing.charged_as_temp(stay, now):
        return message(
            request,
            pgettext("driver", "Cannot leave here"),
            pgettext("driver", "This car entered on a monthly pass: please press the call button."),
            status=409,
            call_hint=True,
        )
    if placing.stay_charge(stay, now).due > 0:
        return message(
            request,
            pgettext("driver", "Payment needed"),
            pgettext("driver", "The parking fee is not paid yet: please pay first."),
            status=409,
            back=back,
        )
    if waiting_visit(visit.lot_id, "", Direction.EXIT, now, visit_id=visit.pk) is None:
        return message(
            request,
            pgettext("driver", "Scan again"),
            pgettext(
                "driver",
                "Your car is no longer waiting at this exit: drive up to the exit"
                " and scan the code on the robot again.",
            ),
            status=409,
        )
    if not let_through(visit, "exit.temp_paid", now, plate=stay.plate):
        return left_already(request)
    return message(
        request,
        pgettext("driver", "Gate open"),
        pgettext("driver", "The gate is open. Have a safe trip!"),
        tone="ok",
    )


def left_already(request: HttpRequest) -> HttpResponse:
    """The page for a code whose car has already left."""
    return message(
        request,
        pgettext("driver", "Car has left"),
        pgettext("driver", "This car has already passed the gate: this code is no longer needed."),
        status=410,
    )


# --- starting a payment ------------------------------------------------------------------------


def start_payment(request: HttpRequest, order: Order, now: datetime, *, back: str) -> HttpResponse:
    """Send ``order`` to the provider of this phone's app: its cashier, or WeChat's JSAPI."""
    user_agent = str(request.headers.get("User-Agent", ""))
    driver = identity.known(request) or getattr(request, "_eppark_new_driver", None)
    result = result_path(order, back)
    try:
        provider = for_page(user_agent)
        payer = driver.user_id if driver is not None and driver.channel == provider.channel else ""
        started = checkout.start_page_payment(
            order,
            provider,
            payer=payer,
            return_url=public_url() + result,
            now=now,
        )
    except Refused as refused:  # checkout's words: unavailable, expired, already paid
        log.warning("page payment of %s not started: %s", order.out_trade_no, refused)
        return message(
            request,
            pgettext("driver", "Payment unavailable"),
            refused.message,
            status=503,
            back=back,
            call_hint=True,
        )
    except (NoProvider, ProviderError, ProviderRefused) as exc:
        log.warning("page payment of %s not started: %s", order.out_trade_no, exc)
        return message(
            request,
            pgettext("driver", "Payment unavailable"),
            pgettext(
                "driver",
                "Payment could not be started just now: please try again in a moment,"
                " or press the call button on the robot.",
            ),
            status=503,
            back=back,
            call_hint=True,
        )
    if started.kind == "jsapi":
        context = {"params": dict(started.params), "result": result, "amount": yuan(order.amount)}
        return page(request, "jsapi.html", context)
    return redirect(request, started.url or result)


def now() -> datetime:
    """The pages' clock."""
    return timezone.now()
