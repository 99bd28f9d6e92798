"""Keeping the books straight: orders stuck in paying, and orders past their expiry.

Run by the payments worker every ``EPPARK_PAYMENTS_JOBS_S`` (30 s):

- an order in ``paying`` for more than ``STUCK_AFTER`` (the driver left the
  cashier page, a notification never came) is queried at its provider:
  paid → settled like a notification (a car still waiting at the exit is let
  through); anything else → left for the next round or for its expiry;
- an order past ``expires_at`` still ``created`` or ``paying`` is closed at its
  provider and here (``close_order``); a provider that cannot be reached
  leaves it for the next round (an order is never closed here while the
  provider might still take the money);
- the daily reconciliation, once it is due (``eppark.payments.reconcile.reconcile_due``).

Orders whose payment code the worker is still charging are the worker's
(``eppark.payments.codepay``) and are left alone. One order's failure is
logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from eppark.dbstate import unreachable
from eppark.orders.models import Order, OrderState
from eppark.payments import codepay
from eppark.payments.checkout import close_order, confirm_by_query
from eppark.payments.reconcile import reconcile_due

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=1)
"""An order paying for longer than this is asked about at its provider."""
BATCH = 100
"""Orders looked at per job per round, oldest first (the rest wait for the next round)."""


def stuck_paying(now: datetime) -> int:
    """Query orders paying for over a minute; how many the provider reported paid (settled)."""
    under_way = codepay.orders_under_way()
    orders = (
        Order.objects.filter(state=OrderState.PAYING, created_at__lte=now - STUCK_AFTER)
        .exclude(pk__in=under_way)
        .select_related("lot")
        .order_by("created_at")[:BATCH]
    )
    paid = 0
    for order in orders:
        try:
            if confirm_by_query(order, now) is not None:
                paid += 1
        except Exception as error:
            if unreachable(error):
                raise
            log.warning("order %s: query failed (%s); tried again later", order, error)
    return paid


def expired(now: datetime) -> int:
    """Close orders past their expiry, at the provider and here; how many were closed."""
    under_way = codepay.orders_under_way()
    orders = (
        Order.objects.filter(state__in=(OrderState.CREATED, OrderState.PAYING), expires_at__lt=now)
        .exclude(pk__in=under_way)
        .select_related("lot")
        .order_by("expires_at")[:BATCH]
    )
    closed = 0
    for order in orders:
        try:
            if close_order(order, now):
                closed += 1
        except Exception as error:
            if unreachable(error):
                raise
            log.warning("order %s: close failed (%s); tried again later", order, error)
    return closed


def run(now: datetime) -> None:
    """One round of every job; a failing job is logged and the others still run."""
    jobs: list[tuple[str, Callable[[datetime], Any]]] = [
        ("stuck paying orders", stuck_paying),
        ("expired orders", expired),
        ("daily reconciliation", reconcile_due),
    ]
    for name, job in jobs:
        try:
            job(now)
        except Exception as error:
            if unreachable(error):
                raise
            log.exception("payments job %s failed", name)
