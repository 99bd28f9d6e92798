"""Settling an order from the provider's word: a notification, a query, a code payment.

Whatever path brings it, a provider's report of a trade goes through ``settle``:
the order is locked, ``eppark.domain.billing.verdict`` decides (our number and
amount, paid once), and a payment

- marks the order paid (time, amount, transaction, channel, payer);
- renews the pass of a monthly order (``eppark.domain.billing.renewed_until``);
- lets the car through if it waits at a gate of the lot: an exit gate for a
  stay's order (一路平安), any gate for a renewed pass (欢迎回家 / 一路平安);
  otherwise the stay's exit grace has started (the fee rule counts the payment).

A mismatch (amount or number not ours, a second payment of a paid order, the
same payment reported with another amount) is flagged for review and never
marks anything paid; a duplicate changes nothing. Money is never refused: a
payment of a closed order, of a stay that has ended (its ``paid`` grows) or of
a stay another order paid meanwhile is recorded, and flagged where a person
should look.

Concurrency: the stay (or pass) is locked before the order, as placing an
order and closing a stay by hand do, so deliveries of one report at once pay
once and a payment racing a new price or the expiry job waits its turn; the car
is let through after the payment commits (``let_through`` re-checks, under the
visit's lock, that it is still the car at the barrier). Safe inside a caller's
transaction (then everything commits together).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction

from eppark.domain import billing
from eppark.domain.billing import OrderFacts, Verdict
from eppark.domain.decide import Direction
from eppark.orders.models import Order, OrderKind, OrderState
from eppark.passes.models import MonthlyPass
from eppark.payments.providers.base import TradeResult, TradeState
from eppark.stays.let_through import let_through, waiting_visit
from eppark.stays.models import Stay

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settled:
    """What a provider's report did: the verdict, the order (if ours), whether a gate opened."""

    verdict: Verdict
    order: Order | None
    opened: bool = False


def settle(result: TradeResult, *, provider: str, channel: str, now: datetime) -> Settled:
    """Apply a provider's report of ``result.out_trade_no`` to our order, once."""
    success = result.state == TradeState.SUCCESS
    with transaction.atomic():
        _lock_owner(result.out_trade_no)
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("lot")
            .filter(out_trade_no=result.out_trade_no)
            .first()
        )
        facts = (
            None
            if order is None
            else OrderFacts(order.out_trade_no, order.amount, order.state, order.transaction_id)
        )
        verdict = billing.verdict(
            facts,
            out_trade_no=result.out_trade_no,
            amount=result.amount,
            success=success,
            transaction_id=result.transaction_id,
        )
        if order is None:
            return Settled(verdict, None)
        if verdict is Verdict.DUPLICATE and result.amount not in (None, _amount_paid(order)):
            verdict = Verdict.MISMATCH  # the same payment cannot change its amount
        if verdict is Verdict.MISMATCH:
            _flag(order, _mismatch_note(order, result))
            return Settled(verdict, order)
        if verdict not in (Verdict.PAYS, Verdict.PAYS_LATE):
            return Settled(verdict, order)
        _mark_paid(order, result, provider=provider, channel=channel, now=now)
        if verdict is Verdict.PAYS_LATE:
            _flag(order, "paid after the order had closed")
        if order.kind == OrderKind.MONTHLY:
            _renew(order)
        elif order.stay_id is not None:
            _paid_meanwhile(order)
            _book_on_ended_stay(order)
    opened = _let_car_through(order, now)
    return Settled(verdict, order, opened)


def _lock_owner(out_trade_no: str) -> None:
    """Lock the order's stay or pass before the order itself.

    Placing an order (``eppark.orders.placing``) and closing a stay by hand lock
    the stay (or the pass) first and then the orders; settling in the same order
    means a payment arriving while the driver asks for a new price waits instead
    of deadlocking, and the stay's fee is read by one side after the other.
    """
    owner = (
        Order.objects.filter(out_trade_no=out_trade_no)
        .values_list("stay_id", "monthly_pass_id")
        .first()
    )
    if owner is None:
        return
    stay_id, pass_id = owner
    if stay_id is not None:
        list(Stay.objects.select_for_update().filter(pk=stay_id).values_list("pk"))
    if pass_id is not None:
        list(MonthlyPass.objects.select_for_update().filter(pk=pass_id).values_list("pk"))


def _paid_meanwhile(order: Order) -> None:
    """Flag a stay paid twice: another order of it was paid after this one was priced.

    Two orders of one stay can both be open (one at a cashier, one just priced on
    another phone); the second payment is money taken, kept and flagged for a refund.
    """
    other = (
        Order.objects.filter(
            stay_id=int(order.stay_id or 0),
            state=OrderState.PAID,
            paid_at__gte=order.priced_at or order.created_at,
        )
        .exclude(pk=order.pk)
        .order_by("paid_at")
        .first()
    )
    if other is not None:
        _flag(order, f"the stay was paid meanwhile by {other.out_trade_no}: paid twice")


def _book_on_ended_stay(order: Order) -> None:
    """Money for a stay that has already ended (closed by hand, superseded) shows on it.

    An open stay counts its paid orders when it closes; an ended one recorded its
    ``paid`` then, so the late payment is added (flagged if it pays more than the fee).
    """
    stay = Stay.objects.select_for_update().get(pk=int(order.stay_id or 0))
    if stay.exited_at is None:
        return
    stay.paid += order.paid_amount or 0
    if stay.paid > stay.total:
        _flag(
            order, f"paid after its stay had ended: {stay.paid - stay.total} fen more than the fee"
        )
        stay.total = stay.paid
    stay.save(update_fields=["paid", "total"])


def _mark_paid(
    order: Order, result: TradeResult, *, provider: str, channel: str, now: datetime
) -> None:
    paid_at = result.paid_at or now
    floor = order.priced_at or order.created_at
    paid_at = min(max(paid_at, floor), now)  # a provider's clock never moves a payment out of
    order.state = OrderState.PAID  # the stay nor into the future
    order.paid_at = paid_at
    order.paid_amount = result.amount if result.amount is not None else order.amount
    order.transaction_id = result.transaction_id[:64]
    order.provider = provider
    order.channel = channel
    if result.payer and not order.payer:
        order.payer = result.payer[:128]
    order.save(
        update_fields=[
            "state",
            "paid_at",
            "paid_amount",
            "transaction_id",
            "provider",
            "channel",
            "payer",
        ]
    )


def _flag(order: Order, note: str) -> None:
    if order.needs_review and order.review_note and note not in order.review_note:
        note = f"{order.review_note}; {note}"  # every reason kept
    order.needs_review = True
    order.review_note = note[:256]
    order.save(update_fields=["needs_review", "review_note"])
    log.warning("order %s flagged for review: %s", order.out_trade_no, note)


def _amount_paid(order: Order) -> int:
    return order.paid_amount if order.paid_amount is not None else order.amount


def _mismatch_note(order: Order, result: TradeResult) -> str:
    paid = order.state in (OrderState.PAID, OrderState.REFUNDED)
    if paid and result.transaction_id != order.transaction_id:
        return f"a second payment {result.transaction_id} of an order already paid"
    return (
        f"the provider reports {result.amount} fen for {result.out_trade_no};"
        f" the order is {order.amount} fen"
    )


def _renew(order: Order) -> None:
    monthly = (
        MonthlyPass.objects.select_for_update(of=("self",))
        .select_related("lot")
        .get(pk=int(order.monthly_pass_id or 0))
    )
    monthly.valid_until = billing.renewed_until(
        monthly.valid_until, order.months or 1, ZoneInfo(monthly.lot.timezone)
    )
    monthly.save(update_fields=["valid_until", "updated_at"])


def _let_car_through(order: Order, now: datetime) -> bool:
    """Open for the order's car if it waits at a gate of the lot (after the payment commits)."""
    if order.kind == OrderKind.MONTHLY:
        for direction, scenario in (
            (Direction.EXIT, "exit.monthly_valid"),
            (Direction.ENTRY, "entry.monthly_valid"),
        ):
            plates = [order.plate] if order.plate else _pass_plates(order)
            for plate in plates:
                visit = waiting_visit(order.lot_id, plate, direction, now)
                if visit is not None:
                    return let_through(visit, scenario, now)
        return False
    if order.kind == OrderKind.UNPLATED:
        visit = (
            waiting_visit(order.lot_id, "", Direction.EXIT, now, visit_id=order.visit_id)
            if order.visit_id is not None
            else None
        )
        if visit is None:
            return False
        return let_through(visit, "exit.temp_paid", now, plate=order.plate, stay_id=order.stay_id)
    visit = waiting_visit(order.lot_id, order.plate, Direction.EXIT, now)
    if visit is None:
        return False
    return let_through(visit, "exit.temp_paid", now, stay_id=order.stay_id)


def _pass_plates(order: Order) -> list[str]:
    if order.monthly_pass_id is None:
        return []
    return list(
        MonthlyPass.objects.get(pk=int(order.monthly_pass_id or 0)).plates.values_list(
            "plate", flat=True
        )
    )
