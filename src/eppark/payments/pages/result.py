"""``/pay/<signed order token>/``: where the cashier sends the phone back after paying.

While the order is paying the page asks the provider once per load
(``checkout.confirm_by_query``) and refreshes itself every
``REFRESH_SECONDS`` (a meta refresh, no script); paid, it says ``支付成功``
with the amount, the plate and what happens next (the gate opened, or the
exit grace, or the pass's new end date); closed or never paid, it leads back.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache

from eppark.orders.models import Order, OrderKind, OrderState
from eppark.payments import checkout
from eppark.payments.pages import common
from eppark.payments.providers.base import ProviderError
from eppark.payments.providers.base import Refused as ProviderRefused
from eppark.stays.models import GateVisit

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2
WAIT_AFTER_EXPIRY = timedelta(minutes=2)
"""After the order's price expired, the page stops waiting and says the result is unknown."""


@never_cache
def result(request: HttpRequest, token: str) -> HttpResponse:
    """The payment's outcome, in words."""
    try:
        order_id, back = common.read_result_token(token)
    except signing.SignatureExpired:
        return common.message(
            request,
            pgettext("driver", "Link expired"),
            pgettext("driver", "This payment link has expired."),
            status=400,
        )
    except signing.BadSignature:
        return common.message(
            request,
            pgettext("driver", "Invalid link"),
            pgettext("driver", "This payment link is not valid."),
            status=400,
        )
    order = Order.objects.select_related("lot", "stay", "monthly_pass", "visit__gate").filter(
        pk=order_id
    )
    found = order.first()
    if found is None:
        return common.message(
            request,
            pgettext("driver", "Invalid link"),
            pgettext("driver", "This order is no longer on record."),
            status=404,
        )
    now = common.now()
    if found.state == OrderState.PAYING:
        try:
            checkout.confirm_by_query(found, now)
        except (ProviderError, ProviderRefused) as exc:  # the next refresh asks again
            log.info("query of %s on its result page failed: %s", found.out_trade_no, exc)
        found = order.get()
    context: dict[str, Any] = {
        "order": found,
        "lot": found.lot,
        "amount": common.yuan(found.paid_amount or found.amount),
        "plate": found.plate,
        "back": back,
        "state": found.state,
    }
    if found.state == OrderState.PAID:
        context.update(_after_paying(found, now))
    elif found.state in (OrderState.PAYING, OrderState.CREATED):
        waiting = found.expires_at is None or now < found.expires_at + WAIT_AFTER_EXPIRY
        context.update(waiting=waiting and found.state == OrderState.PAYING)
        context.update(refresh=REFRESH_SECONDS if context["waiting"] else 0)
    return common.page(request, "result.html", context)


def _after_paying(order: Order, now: Any) -> dict[str, Any]:
    """What happens next, once paid: a gate opened, the exit grace, the pass's new end date."""
    lot = order.lot
    visit: GateVisit | None = order.visit
    if visit is not None:
        visit.refresh_from_db(fields=["opened"])
    if order.kind == OrderKind.MONTHLY and order.monthly_pass is not None:
        monthly = order.monthly_pass
        monthly.refresh_from_db(fields=["valid_until"])
        gate_opened = bool(visit and visit.opened)
        return {
            "renewed_until": common.local(monthly.valid_until, lot, "%Y-%m-%d"),
            "months": order.months or 1,
            "gate_opened": gate_opened,
            "entry_gate": bool(visit and visit.gate.direction == "entry"),
        }
    stay = order.stay
    if stay is not None:
        stay.refresh_from_db(fields=["exited_at"])
    gate_opened = bool(stay and stay.exited_at is not None) or bool(visit and visit.opened)
    grace = common.grace_minutes(lot)
    leave_by = order.paid_at + timedelta(minutes=grace) if order.paid_at else None
    return {
        "gate_opened": gate_opened,
        "grace": grace,
        "leave_by": common.local(leave_by, lot, "%H:%M") if leave_by else "",
    }
