"""The daily reconciliation: our paid orders of a lot against the provider's bill.

For one lot, one day (Asia/Shanghai, the merchant's day of the bill) and one
provider, ``reconcile`` compares

- our orders of that lot paid through that provider (``provider`` and
  ``channel``) whose ``paid_at`` falls on that day, paid or since refunded, with
- the lines of ``provider.bill(day)`` for trades of that lot (the merchant's
  bill covers every lot: a line goes to the lot of our order with its trade
  number),

and records a ``Reconciliation`` (counts and totals on both sides) with one
``ReconciliationLine`` per trade that does not agree: paid at the provider but
not here, paid here but unknown to the provider, amounts differ, states differ.
Re-running a day replaces its lines (idempotent).

Trades of the bill that are no order of ours at all belong to no lot: they go
to the day's *unmatched* reconciliation (``lot`` empty), which only those who
see every lot (admins) see in the back office. ``reconcile(None, …)`` makes it.

A refund still processing at the provider (``Refund`` REQUESTED) is settled
here when the bill shows the trade refunded: the refund succeeds and the order
becomes refunded in the name of the person who asked.

``reconcile_due(now)`` runs once a day, for yesterday, after 10:00 Asia/Shanghai
(when WeChat Pay's bill is ready): every lot × configured provider, and the
unmatched trades. The payments worker calls it in its loop; it does nothing
until a day is due, and a provider whose bill cannot be fetched is tried again
on the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext

from eppark.lots.models import Lot
from eppark.orders.models import Order, OrderState
from eppark.payments.models import (
    Difference,
    Reconciliation,
    ReconciliationLine,
    Refund,
    RefundState,
)
from eppark.payments.providers.base import BillLine, Provider, ProviderError, TradeState

log = logging.getLogger(__name__)

BILL_ZONE = ZoneInfo("Asia/Shanghai")
"""The merchant's time zone: a bill's day and our orders' day are days here."""
BILL_READY = time(10, 0)
"""WeChat Pay's bill of a day is ready from 10:00 the next day (Alipay's earlier)."""

PAID_STATES = (OrderState.PAID, OrderState.REFUNDED)
"""Orders whose money was taken (a refunded order was paid first)."""

_AGREEING = {
    OrderState.PAID: {TradeState.SUCCESS},
    OrderState.REFUNDED: {TradeState.REFUND},
}


# -- the comparison (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ours:
    """Our side of one trade: the order's state and what it was paid."""

    out_trade_no: str
    state: str
    amount: int  # fen paid (the order's amount if the payment did not say)
    refunded_later: bool = False  # refunded after the day ended (still paid that day)
    elsewhere: bool = False  # paid here through another provider or app


@dataclass(frozen=True, slots=True)
class Theirs:
    """The provider's side of one trade, its bill lines folded into one."""

    out_trade_no: str
    state: TradeState  # SUCCESS or REFUND
    amount: int  # fen charged


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference for one trade (a ``ReconciliationLine`` to be)."""

    out_trade_no: str
    difference: Difference
    ours: Ours | None
    theirs: Theirs | None


def fold(lines: Iterable[BillLine]) -> dict[str, Theirs]:
    """The bill's lines per trade: refunded if any line is a refund; the charge's amount."""
    charged: dict[str, int] = {}
    refunded: dict[str, int] = {}
    for line in lines:
        if line.state == TradeState.REFUND:
            refunded[line.out_trade_no] = max(refunded.get(line.out_trade_no, 0), line.amount)
        else:
            charged[line.out_trade_no] = line.amount
    return {
        number: Theirs(
            number,
            TradeState.REFUND if number in refunded else TradeState.SUCCESS,
            charged.get(number, refunded.get(number, 0)),
        )
        for number in sorted(set(charged) | set(refunded))
    }


def compare(
    day_orders: Mapping[str, Ours], named: Mapping[str, Ours], theirs: Mapping[str, Theirs]
) -> list[Mismatch]:
    """The differences between our paid orders of the day and the provider's trades.

    ``day_orders``: our orders paid that day; ``named``: our orders (any state, any day)
    the provider's lines name; ``theirs``: those lines. A trade the provider charged
    but we hold unpaid, or paid through another provider (the money taken twice),
    is ``MISSING_OURS``; one we hold paid that day but the provider does not list
    is ``MISSING_THEIRS``; otherwise amounts and states are compared (both may
    differ: two lines).
    """
    found: list[Mismatch] = []
    for number in sorted(set(day_orders) | set(theirs)):
        ours = day_orders.get(number) or named.get(number)
        their = theirs.get(number)
        if their is None:
            if ours is not None:
                found.append(Mismatch(number, Difference.MISSING_THEIRS, ours, None))
            continue
        if ours is None or ours.state not in PAID_STATES or ours.elsewhere:
            kind = (
                Difference.MISSING_OURS if their.state == TradeState.SUCCESS else Difference.STATE
            )
            found.append(Mismatch(number, kind, ours, their))
            continue
        if ours.amount != their.amount:
            found.append(Mismatch(number, Difference.AMOUNT, ours, their))
        if their.state not in _agreeing(ours):
            found.append(Mismatch(number, Difference.STATE, ours, their))
    return found


def _agreeing(ours: Ours) -> set[TradeState]:
    """The provider's states that agree with ours: a trade refunded after the day may be
    listed as paid (WeChat's bill of the day) or as refunded (its state now)."""
    agreeing = set(_AGREEING.get(OrderState(ours.state), set()))
    if ours.refunded_later:
        agreeing.add(TradeState.SUCCESS)
    return agreeing


# -- the day's window and the provider's key ------------------------------------------------------


def day_window(day: date) -> tuple[datetime, datetime]:
    """The start and end (exclusive) of ``day`` in the merchant's time zone."""
    start = datetime.combine(day, time(0), tzinfo=BILL_ZONE)
    return start, start + timedelta(days=1)


def business_day(now: datetime) -> date:
    """The merchant's date at ``now``."""
    return now.astimezone(BILL_ZONE).date()


def provider_key(provider: Provider) -> str:
    """How a reconciliation names its provider: ``wechat``, ``alipay``, ``sandbox/wechat``.

    The sandbox plays both apps under one name, so its key carries the channel.
    """
    if provider.name == provider.channel:
        return provider.name
    return f"{provider.name}/{provider.channel}"[:16]


def provider_for_key(key: str) -> Provider | None:
    """The configured provider a reconciliation's key names; None if it is not configured."""
    from eppark.payments.providers import configured

    for provider in configured().values():
        if provider_key(provider) == key:
            return provider
    return None


# -- one lot, one day -----------------------------------------------------------------------------


def reconcile(
    lot: Lot | None,
    day: date,
    provider: Provider,
    now: datetime,
    lines: Sequence[BillLine] | None = None,
) -> Reconciliation:
    """Reconcile ``lot``'s ``day`` with ``provider``'s bill (``lines``: the bill, if fetched).

    ``lot`` None: the bill's trades that are no order of ours. Works for today
    too (the day so far). Re-running replaces the day's lines. Raises
    ``ProviderError`` when the bill cannot be fetched (nothing is written).
    """
    if lines is None:
        lines = provider.bill(day)
    theirs_all = fold(lines)
    key = provider_key(provider)
    start, end = day_window(day)
    orders_named = {
        o.out_trade_no: o
        for o in Order.objects.filter(out_trade_no__in=list(theirs_all)).only(
            "out_trade_no", "lot_id", "state", "amount", "paid_amount", "provider", "channel"
        )
    }
    if lot is None:
        theirs = {n: t for n, t in theirs_all.items() if n not in orders_named}
        day_orders: dict[str, Ours] = {}
        named: dict[str, Ours] = {}
    else:
        theirs = {
            n: t
            for n, t in theirs_all.items()
            if n in orders_named and orders_named[n].lot_id == lot.pk
        }
        _settle_refunds(theirs, now)
        paid = Order.objects.filter(
            lot=lot,
            provider=provider.name,
            channel=provider.channel,
            state__in=PAID_STATES,
            paid_at__gte=start,
            paid_at__lt=end,
        )
        later = set(
            Refund.objects.filter(
                order__in=paid, state=RefundState.SUCCEEDED, finished_at__gte=end
            ).values_list("order_id", flat=True)
        )
        day_orders = {o.out_trade_no: _ours(o, o.pk in later) for o in paid}
        named = {
            o.out_trade_no: _ours(
                o, elsewhere=(o.provider, o.channel) != (provider.name, provider.channel)
            )
            for o in Order.objects.filter(out_trade_no__in=list(theirs))
        }
    mismatches = compare(day_orders, named, theirs)
    paid_that_day = {line.out_trade_no for line in lines if start <= line.at < end}
    charged = [t for n, t in theirs.items() if n in paid_that_day]
    with transaction.atomic():
        record = _locked_record(lot, day, key, now)
        record.ours_count = len(day_orders)
        record.ours_total = sum(o.amount for o in day_orders.values())
        record.theirs_count = len(charged)
        record.theirs_total = sum(t.amount for t in charged)
        record.differences = len(mismatches)
        record.run_at = now
        record.detail = ""
        record.save()
        record.lines.all().delete()
        ReconciliationLine.objects.bulk_create(
            [
                ReconciliationLine(
                    reconciliation=record,
                    out_trade_no=m.out_trade_no,
                    difference=m.difference,
                    ours_amount=m.ours.amount if m.ours else None,
                    ours_state=m.ours.state if m.ours else "",
                    theirs_amount=m.theirs.amount if m.theirs else None,
                    theirs_state=str(m.theirs.state) if m.theirs else "",
                )
                for m in mismatches
            ]
        )
    if mismatches:
        log.warning(
            "reconciliation %s %s %s: %d difference(s)",
            lot.code if lot else "unmatched",
            day,
            key,
            len(mismatches),
        )
    return record


def _ours(order: Order, refunded_later: bool = False, *, elsewhere: bool = False) -> Ours:
    paid = order.paid_amount if order.paid_amount is not None else order.amount
    return Ours(order.out_trade_no, order.state, paid, refunded_later, elsewhere)


def _locked_record(lot: Lot | None, day: date, key: str, now: datetime) -> Reconciliation:
    rows = Reconciliation.objects.select_for_update().filter(day=day, provider=key).order_by("pk")
    rows = rows.filter(lot__isnull=True) if lot is None else rows.filter(lot=lot)
    record = rows.first()
    if record is None:
        record = Reconciliation.objects.create(lot=lot, day=day, provider=key, run_at=now)
    return record


def _settle_refunds(theirs: Mapping[str, Theirs], now: datetime) -> None:
    """Refunds still processing whose trade the bill shows refunded: they succeeded."""
    from eppark.payments.refunds import confirm_pending

    refunded = [n for n, t in theirs.items() if t.state == TradeState.REFUND]
    if refunded:
        confirm_pending(refunded, now, source=gettext("the provider's bill"))


# -- every lot, once a day -------------------------------------------------------------------

BILL_RETRY = timedelta(minutes=15)
"""After a bill could not be fetched, ``reconcile_due`` waits this long before asking again."""
_bill_failed_at: dict[tuple[str, date], datetime] = {}


def reconcile_day(day: date, now: datetime) -> list[Reconciliation]:
    """Every lot × configured provider for ``day``, and the unmatched trades (refunds
    still processing are asked about again first).

    A provider whose bill cannot be fetched is skipped (logged); the others are done.
    """
    from eppark.payments.providers import configured
    from eppark.payments.refunds import recheck_pending

    recheck_pending(now)  # refunds still processing: ask the providers again
    done: list[Reconciliation] = []
    for provider in configured().values():
        done.extend(_reconcile_provider(provider, day, now))
    return done


def _reconcile_provider(provider: Provider, day: date, now: datetime) -> list[Reconciliation]:
    """Every lot and the unmatched trades of ``day`` with one provider (one bill)."""
    key = provider_key(provider)
    try:
        lines = provider.bill(day)
    except ProviderError as error:
        _bill_failed_at[(key, day)] = now
        log.warning("the bill of %s for %s is not available: %s", key, day, error)
        return []
    _bill_failed_at.pop((key, day), None)
    lots: list[Lot | None] = [*Lot.objects.order_by("code"), None]
    return [reconcile(lot, day, provider, now, lines) for lot in lots]


def ready_at(day: date) -> datetime:
    """When the bill of ``day`` may be fetched: 10:00 the next day, Asia/Shanghai."""
    return datetime.combine(day + timedelta(days=1), BILL_READY, tzinfo=BILL_ZONE)


def reconcile_due(now: datetime) -> list[Reconciliation]:
    """Reconcile yesterday, per provider, once it is due and not yet done after its bill
    was ready.

    Cheap when there is nothing to do (two small queries); the payments worker
    calls it in its loop. A run before the bill was ready (a person re-running
    early) does not count as done. A provider whose bill could not be fetched is
    asked again ``BILL_RETRY`` later; the others are not fetched again.
    """
    from eppark.payments.providers import configured
    from eppark.payments.refunds import recheck_pending

    yesterday = business_day(now) - timedelta(days=1)
    ready = ready_at(yesterday)
    if now < ready:
        return []
    expected = Lot.objects.count() + 1  # every lot and the unmatched trades
    done_by_key = dict(
        Reconciliation.objects.filter(day=yesterday, run_at__gte=ready)
        .order_by()
        .values("provider")
        .annotate(rows=Count("id"))
        .values_list("provider", "rows")
    )
    due = [
        provider
        for provider in configured().values()
        if done_by_key.get(provider_key(provider), 0) < expected
        and now - _bill_failed_at.get((provider_key(provider), yesterday), now - BILL_RETRY)
        >= BILL_RETRY
    ]
    if not due:
        return []
    recheck_pending(now)
    done: list[Reconciliation] = []
    for provider in due:
        done.extend(_reconcile_provider(provider, yesterday, now))
    return done
