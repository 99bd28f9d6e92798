"""Placing orders: what a driver is asked to pay, priced by the tariff engine when created.

- a temp stay's fee (临停), and an unplated car's stay (无牌车出场), priced from the
  lot's tariff and the stay's paid orders at this moment (``eppark.domain.stays``);
- a monthly pass's renewal (月卡续费) for one of the lot's renewal options.

An order's price holds for ``ORDER_PRICE_HOLDS``; asking again within it gives the
same open order, after it (or when the fee changed) the old one closes and a new
one is priced. Placing an order for a gate visit is the driver's expected action
(the manual's 1-minute rule): the visit leaves the outbound call list.

Locks: the gate visit, then the stay (or pass), then its orders — the order the
gate loop and ``eppark.payments.settle`` follow; the price is computed under the
stay's lock, so two phones at once get one order and a payment committing
meanwhile is counted.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from eppark.domain import billing
from eppark.domain import stays as stay_rules
from eppark.domain.decide import EnteredAs as Entry
from eppark.domain.decide import PassStatus, pass_status
from eppark.domain.tariff import Payment
from eppark.orders.models import Order, OrderKind, OrderState
from eppark.passes.models import MonthlyPass
from eppark.records.errors import Refused
from eppark.stays.models import EnteredAs, GateVisit, Resolution, Stay

OPEN_STATES = (OrderState.CREATED, OrderState.PAYING)


def stay_payments(stay: Stay) -> list[Payment]:
    """The stay's paid orders, as the fee rule counts them."""
    rows = Order.objects.filter(stay=stay, state=OrderState.PAID, paid_at__isnull=False)
    return [Payment(o.paid_at, o.amount, o.priced_at) for o in rows if o.paid_at is not None]


def stay_charge(stay: Stay, now: datetime) -> stay_rules.Charge:
    """What ``stay`` has cost by ``now``: fee, paid, due.

    Nothing for a pass stay, unless its pass has lapsed (exit.monthly_lapsed): then
    the time after the pass's end is temp parking (``eppark.domain.stays.lapsed_cover``).
    """
    return stay_rules.charge(
        charged_stay(stay, now),
        stay.lot.tariff or {},
        stay_payments(stay),
        max(now, stay.entered_at),
    )


def charged_stay(stay: Stay, now: datetime) -> stay_rules.OpenStay:
    """``stay`` as the fee rule sees it at ``now``."""
    if stay.entered_as != EnteredAs.PASS:
        return stay_rules.OpenStay(Entry.TEMP, stay.entered_at)
    seen = stay_rules.OpenStay(Entry.PASS, stay.entered_at)
    monthly = stay.monthly_pass or (
        MonthlyPass.objects.filter(lot_id=stay.lot_id, plates__plate=stay.plate).first()
    )
    if monthly is None:
        return seen
    return stay_rules.lapsed_cover(
        seen, monthly.view(0), stay.lot.policy, max(now, stay.entered_at)
    )


def charged_as_temp(stay: Stay, now: datetime) -> bool:
    """Whether ``stay`` costs money at ``now`` (a temp stay, or a lapsed pass's)."""
    return charged_stay(stay, now).charged_from is not None


def order_for_stay(
    stay: Stay,
    now: datetime,
    *,
    visit: GateVisit | None = None,
    payer: str = "",
) -> Order | None:
    """The open order for what ``stay`` owes now (placed if needed); None when nothing is due."""
    kind = OrderKind.UNPLATED if stay.entered_as == EnteredAs.UNPLATED else OrderKind.TEMP
    with transaction.atomic():
        _lock_visit(visit)
        locked = Stay.objects.select_for_update().filter(pk=stay.pk).first()  # one at a time
        if locked is None or locked.exited_at is not None:
            raise Refused(_("This car has already left the lot."))
        # priced under the lock: a payment committed meanwhile is counted, never asked twice
        due = stay_charge(locked, now).due
        if due <= 0:
            return None
        current = _open_orders(Order.objects.filter(stay=stay), now).first()
        if current is not None and current.amount == due:
            return _touch(current, visit, payer)
        _close_open(Order.objects.filter(stay=stay), now)
        order = Order.objects.create(
            kind=kind,
            lot_id=locked.lot_id,
            plate=locked.plate,  # as it stands now (a corrected plate)
            stay=locked,
            ticket_id=_ticket_id(locked),
            amount=due,
            out_trade_no=billing.new_out_trade_no(kind, now, secrets.token_hex(5)),
            priced_at=now,
            expires_at=now + billing.ORDER_PRICE_HOLDS,
            gate_id=visit.gate_id if visit is not None else None,
            visit=visit,
            payer=payer,
        )
        _driver_acted(visit, now)
    return order


def renewal_options(monthly_pass: MonthlyPass) -> list[billing.RenewalOption]:
    """The ways the pass's lot renews a pass, with their prices (fen)."""
    lot = monthly_pass.lot
    return billing.renewal_options(lot.monthly_price, list(lot.renewal_offers or []))


def may_renew(monthly_pass: MonthlyPass, now: datetime) -> bool:
    """Whether the pass may be renewed by phone: running, or expired within the payable days."""
    status = pass_status(monthly_pass.view(0), now, monthly_pass.lot.policy)
    return status in (PassStatus.VALID, PassStatus.EXPIRED_GRACE, PassStatus.EXPIRED_PAYABLE)


def order_for_renewal(
    monthly_pass: MonthlyPass,
    months: int,
    now: datetime,
    *,
    plate: str = "",
    visit: GateVisit | None = None,
    payer: str = "",
) -> Order:
    """The open order renewing ``monthly_pass`` by ``months`` (placed if needed)."""
    if not may_renew(monthly_pass, now):
        raise Refused(
            _("This pass expired too long ago to renew here: please contact the management office.")
        )
    option = next((o for o in renewal_options(monthly_pass) if o.months == months), None)
    if option is None:
        raise Refused(_("This lot offers no such renewal."))
    mine = Order.objects.filter(monthly_pass=monthly_pass)
    with transaction.atomic():
        _lock_visit(visit)
        MonthlyPass.objects.select_for_update().filter(pk=monthly_pass.pk).first()
        current = _open_orders(mine, now).filter(months=months, amount=option.price).first()
        if current is not None:
            return _touch(current, visit, payer)
        _close_open(mine, now)
        order = Order.objects.create(
            kind=OrderKind.MONTHLY,
            lot_id=monthly_pass.lot_id,
            plate=plate,
            monthly_pass=monthly_pass,
            months=months,
            amount=option.price,
            out_trade_no=billing.new_out_trade_no(OrderKind.MONTHLY, now, secrets.token_hex(5)),
            priced_at=now,
            expires_at=now + billing.ORDER_PRICE_HOLDS,
            gate_id=visit.gate_id if visit is not None else None,
            visit=visit,
            payer=payer,
        )
        _driver_acted(visit, now)
    return order


def _open_orders(orders: object, now: datetime):  # type: ignore[no-untyped-def]
    return orders.filter(  # type: ignore[attr-defined]
        state=OrderState.CREATED, expires_at__gt=now
    ).order_by("-created_at")


def _close_open(orders: object, now: datetime) -> None:
    """Close the older unpaid orders nobody is paying (a paying one is left to its provider)."""
    orders.filter(state=OrderState.CREATED).update(  # type: ignore[attr-defined]
        state=OrderState.CLOSED, closed_at=now
    )


def _touch(order: Order, visit: GateVisit | None, payer: str) -> Order:
    changed = []
    if visit is not None and order.visit_id != visit.pk:
        order.visit, order.gate_id = visit, visit.gate_id
        changed += ["visit", "gate"]
    if payer and not order.payer:
        order.payer = payer
        changed.append("payer")
    if changed:
        order.save(update_fields=changed)
    if visit is not None:
        _driver_acted(visit, order.created_at)
    return order


def _lock_visit(visit: GateVisit | None) -> None:
    """Lock the gate visit before the stay or pass: the gate loop's order (visit, then stay)."""
    if visit is not None:
        list(GateVisit.objects.select_for_update().filter(pk=visit.pk).values_list("pk"))


def _ticket_id(stay: Stay) -> int | None:
    ticket = getattr(stay, "ticket", None) if stay.entered_as == EnteredAs.UNPLATED else None
    return ticket.pk if ticket is not None else None


def _driver_acted(visit: GateVisit | None, now: datetime) -> None:
    if visit is not None:
        GateVisit.objects.filter(pk=visit.pk, resolved_at__isnull=True).update(
            resolved_at=max(now, visit.arrived_at), resolution=Resolution.DRIVER_ACTED
        )
