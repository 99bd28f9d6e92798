"""Orders placed and settled exactly once when several callers race, on real connections.

Every racing caller is a thread with its own database connection (closed when it
ends; every thread is joined). On SQLite (IMMEDIATE transactions) the callers
take turns; on PostgreSQL (``make test``'s second pass) they meet at the row
locks. The tests that stop a caller at a lock on purpose, to force one order of
events, are PostgreSQL's: SQLite has no row locks to wait at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from eppark.devices.models import Command
from eppark.domain import billing
from eppark.domain.billing import Verdict
from eppark.lots.models import Gate
from eppark.orders import placing
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass
from eppark.payments.providers.base import TradeResult, TradeState
from eppark.payments.settle import settle
from eppark.stays.let_through import let_through, waiting_visit
from eppark.stays.models import GateVisit, Stay, StayState
from tests.integration.test_gate_loop import Site, opened

pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="stops a caller at a PostgreSQL row lock; SQLite has none to wait at",
)

PLATE = "粤B88888"
RACERS = 6


_started: list[threading.Thread] = []


@pytest.fixture(autouse=True)
def _close_main_connection() -> Iterator[None]:
    yield
    while _started:  # joined even when a test failed half-way
        _started.pop().join(60)
    connection.close()


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at once, each on a thread and connection of its own; their results."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            start.wait(30)
            results[index] = call()
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [t for t in threads if t.is_alive()]
    if errors:
        raise errors[0]
    return results


class Background:
    """A call on a thread of its own (own connection), joined by ``result``."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,))
        _started.append(self.thread)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.value = call()
        except BaseException as error:
            self.error = error
        finally:
            connection.close()

    def result(self) -> Any:
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.value


def wait_for_lock_waiters(count: int = 1) -> None:
    """Until ``count`` other connections wait at a row lock (PostgreSQL)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.01)
    raise AssertionError("nobody waited at the lock")


def paid(order: Order, **changes: object) -> TradeResult:
    fields: dict[str, object] = {
        "out_trade_no": order.out_trade_no,
        "state": TradeState.SUCCESS,
        "transaction_id": "4200000001",
        "amount": order.amount,
        "payer": "o-openid-1",
    }
    fields.update(changes)
    return TradeResult(**fields)  # type: ignore[arg-type]


def parked(site: Site, hours: float, plate: str = PLATE, entered_as: str = "temp") -> Stay:
    return Stay.objects.create(
        lot=site.lot,
        plate=plate,
        entered_as=entered_as,
        entered_at=timezone.now() - timedelta(hours=hours),
        entry_gate=site.gates["entry"],
    )


def waiting_at_exit(site: Site, plate: str | None = PLATE) -> GateVisit:
    assert not opened(site.push("exit", plate))
    return GateVisit.objects.filter(gate=site.gates["exit"]).latest("arrived_at")


def goodbyes() -> int:
    return Command.objects.filter(cmd="present", args__voice="一路平安").count()


def opens() -> int:
    return Command.objects.filter(cmd="open").count()


def settle_by(result: TradeResult) -> Callable[[], Any]:
    return lambda: settle(result, provider="sandbox", channel="wechat", now=timezone.now())


# 1. one provider report, many deliveries at once --------------------------------------------


def test_one_payment_reported_by_many_at_once_pays_once_and_opens_once() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    report = paid(order)
    goodbyes_before, opens_before = goodbyes(), opens()

    # the notification, its duplicate, the stuck-order query and the cashier's return
    results = together(*[settle_by(report) for _ in range(RACERS)])

    verdicts = sorted(r.verdict for r in results)
    assert verdicts.count(Verdict.PAYS) == 1
    assert verdicts.count(Verdict.DUPLICATE) == RACERS - 1
    assert [r.opened for r in results].count(True) == 1
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.needs_review) == (OrderState.PAID, 1100, False)
    assert goodbyes() - goodbyes_before == 1
    assert opens() - opens_before == 1
    stay.refresh_from_db()
    assert (stay.state, stay.paid, stay.exit_gate_id) == (
        StayState.LEFT,
        1100,
        site.gates["exit"].pk,
    )
    assert GateVisit.objects.filter(opened=True).count() == 1


def test_one_renewal_reported_by_many_at_once_extends_the_pass_once() -> None:
    site = Site(confirm=True)
    site.lot.monthly_price = 30000
    site.lot.save()
    monthly = site.give_pass(PLATE, days=-5)
    old_end = monthly.valid_until
    assert not opened(site.push("entry", PLATE))
    visit = GateVisit.objects.get()
    monthly = MonthlyPass.objects.select_related("lot").get(pk=monthly.pk)
    order = placing.order_for_renewal(monthly, 1, timezone.now(), plate=PLATE, visit=visit)
    report = paid(order)

    results = together(*[settle_by(report) for _ in range(RACERS)])

    assert sorted(r.verdict for r in results).count(Verdict.PAYS) == 1
    assert [r.opened for r in results].count(True) == 1
    monthly.refresh_from_db()
    assert monthly.valid_until == billing.renewed_until(old_end, 1, ZoneInfo(site.lot.timezone))
    assert Stay.objects.filter(plate=PLATE, entered_as="pass").count() == 1  # let in once
    assert Command.objects.filter(cmd="present", args__voice="欢迎回家").count() == 1


# 2. two phones at once ----------------------------------------------------------------------


def test_two_phones_pricing_one_stay_at_once_get_one_order() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    now = timezone.now()

    orders = together(*[lambda: placing.order_for_stay(stay, now) for _ in range(RACERS)])

    assert len({o.pk for o in orders}) == 1
    assert Order.objects.filter(stay=stay, state=OrderState.CREATED).count() == 1
    assert Order.objects.count() == 1


def test_one_renewal_placed_twice_at_once_is_one_order() -> None:
    site = Site(confirm=True)
    site.lot.monthly_price = 30000
    site.lot.save()
    monthly = MonthlyPass.objects.select_related("lot").get(pk=site.give_pass(PLATE, days=3).pk)
    now = timezone.now()

    orders = together(
        *[lambda: placing.order_for_renewal(monthly, 3, now, plate=PLATE) for _ in range(RACERS)]
    )

    assert len({o.pk for o in orders}) == 1
    assert Order.objects.filter(monthly_pass=monthly).count() == 1


@postgres_only
def test_a_price_asked_for_while_the_payment_commits_counts_the_payment() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    in_settle, release = threading.Event(), threading.Event()

    def pay_and_hold() -> Any:
        with transaction.atomic():  # settle inside a caller's transaction
            settled = settle(paid(order), provider="sandbox", channel="wechat", now=timezone.now())
            in_settle.set()
            release.wait(30)
        return settled

    payer = Background(pay_and_hold)
    try:
        assert in_settle.wait(30)
        phone = Background(lambda: placing.order_for_stay(stay, timezone.now()))
        wait_for_lock_waiters()  # the phone waits for the payment to commit or not
    finally:
        release.set()
    assert payer.result().verdict is Verdict.PAYS
    assert phone.result() is None  # nothing more to pay, no second order for the same fee
    assert Order.objects.count() == 1


@postgres_only
def test_a_renewal_paid_while_the_driver_asks_again_neither_deadlocks_nor_loses_it() -> None:
    site = Site(confirm=True)
    site.lot.monthly_price = 30000
    site.lot.save()
    monthly = MonthlyPass.objects.select_related("lot").get(pk=site.give_pass(PLATE, days=3).pk)
    old_end = monthly.valid_until
    order = placing.order_for_renewal(monthly, 1, timezone.now(), plate=PLATE)
    later = timezone.now() + billing.ORDER_PRICE_HOLDS + timedelta(minutes=1)
    holding, placed = threading.Event(), threading.Event()
    go = threading.Event()

    def ask_again() -> Order:
        # the renewal page locks the pass, then closes the expired order and prices anew
        with transaction.atomic():
            list(MonthlyPass.objects.select_for_update().filter(pk=monthly.pk).values_list("pk"))
            holding.set()
            go.wait(30)
            again = placing.order_for_renewal(monthly, 1, later, plate=PLATE)
            placed.set()
        return again

    phone = Background(ask_again)
    try:
        assert holding.wait(30)
        payment = Background(settle_by(paid(order)))
        wait_for_lock_waiters()  # the payment waits for the pass (holding no order lock)
    finally:
        go.set()
    again = phone.result()
    settled = payment.result()
    assert again.pk != order.pk
    assert settled.verdict is Verdict.PAYS_LATE  # the page had closed it: paid and flagged
    order.refresh_from_db()
    assert (order.state, order.needs_review) == (OrderState.PAID, True)
    monthly.refresh_from_db()
    assert monthly.valid_until == billing.renewed_until(old_end, 1, ZoneInfo(site.lot.timezone))


# 3. a payment racing the expiry job ---------------------------------------------------------


def _expire(order: Order) -> int:
    """The expiry job's close (``checkout.close_order``): only an order still open."""
    with transaction.atomic():
        return Order.objects.filter(
            pk=order.pk, state__in=(OrderState.CREATED, OrderState.PAYING)
        ).update(state=OrderState.CLOSED, closed_at=timezone.now())


def test_a_payment_racing_the_expiry_job_is_never_lost() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    closed, settled = together(lambda: _expire(order), settle_by(paid(order)))
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert order.paid_amount == 1100
    if closed:
        assert settled.verdict is Verdict.PAYS_LATE
        assert order.needs_review
    else:
        assert settled.verdict is Verdict.PAYS
    assert placing.stay_charge(stay, timezone.now()).due == 0


@postgres_only
def test_a_payment_arriving_as_the_expiry_job_closes_the_order_pays_late_and_is_flagged() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    closing, release = threading.Event(), threading.Event()

    def expire_slowly() -> int:
        with transaction.atomic():
            count = _expire(order)
            closing.set()
            release.wait(30)
        return count

    job = Background(expire_slowly)
    try:
        assert closing.wait(30)
        payment = Background(settle_by(paid(order)))
        wait_for_lock_waiters()
    finally:
        release.set()
    assert job.result() == 1
    settled = payment.result()
    assert (settled.verdict, settled.opened) == (Verdict.PAYS_LATE, True)
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.needs_review) == (OrderState.PAID, 1100, True)
    assert order.review_note == "paid after the order had closed"
    assert Stay.objects.get(pk=stay.pk).state == StayState.LEFT


# 4. a wrong amount racing the right one -----------------------------------------------------


def test_a_wrong_amount_racing_the_right_one_pays_once_and_is_flagged() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    opens_before = opens()
    right, wrong = together(settle_by(paid(order)), settle_by(paid(order, amount=1)))
    assert right.verdict is Verdict.PAYS
    assert wrong.verdict is Verdict.MISMATCH  # whichever came first
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.needs_review) == (OrderState.PAID, 1100, True)
    assert "1 fen" in order.review_note
    assert opens() - opens_before == 1
    assert Stay.objects.get(pk=stay.pk).paid == 1100


def test_a_wrong_amount_after_the_payment_is_flagged_not_taken_for_a_duplicate() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    assert settle_by(paid(order))().verdict is Verdict.PAYS
    assert settle_by(paid(order, amount=1))().verdict is Verdict.MISMATCH
    assert settle_by(paid(order))().verdict is Verdict.DUPLICATE
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.needs_review) == (OrderState.PAID, 1100, True)


# 5. letting through the right car, once -----------------------------------------------------


def test_a_car_behind_at_the_same_gate_is_not_let_out_for_the_one_that_paid(
    settings: Any,
) -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    found = waiting_visit(site.lot.pk, PLATE, "exit", timezone.now())
    assert found is not None
    other = parked(site, 1.5, plate="粤B99999")
    waiting_at_exit(site, "粤B99999")  # a newer car now stands at the barrier
    opens_before = opens()

    # the payment looked the waiting car up just before the other car was read
    assert not let_through(found, "exit.temp_paid", timezone.now(), stay_id=stay.pk)
    settled = settle_by(paid(order))()
    assert (settled.verdict, settled.opened) == (Verdict.PAYS, False)
    assert opens() == opens_before
    assert Stay.objects.get(pk=stay.pk).exited_at is None  # it leaves when read again, paid
    assert Stay.objects.get(pk=other.pk).exited_at is None
    settings.EPPARK_READ_DEDUP_SECONDS = 0  # read again at once, not taken for a repeat
    assert opened(site.push("exit", PLATE))


def test_a_visit_let_through_by_many_at_once_closes_its_stay_once() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    Order.objects.filter(pk=order.pk).update(
        state=OrderState.PAID, paid_at=timezone.now(), paid_amount=order.amount
    )
    opens_before = opens()
    results = together(
        *[
            lambda: let_through(visit, "exit.temp_paid", timezone.now(), stay_id=stay.pk)
            for _ in range(RACERS)
        ]
    )
    assert results.count(True) == 1
    assert opens() - opens_before == 1
    stay.refresh_from_db()
    assert (stay.state, stay.paid) == (StayState.LEFT, 1100)


def test_a_car_whose_stay_has_ended_is_not_closed_again_nor_its_next_stay() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    # an agent ended the stay by hand, and the car (the same plate) came in again since
    ended_at = timezone.now() - timedelta(minutes=1)
    Stay.objects.filter(pk=stay.pk).update(
        exited_at=ended_at, state=StayState.CLOSED_BY_HAND, total=1100, paid=0
    )
    again = parked(site, 0.01)
    opens_before = opens()

    assert not let_through(visit, "exit.temp_paid", timezone.now(), stay_id=stay.pk)
    settled = settle_by(paid(order))()

    assert (settled.verdict, settled.opened) == (Verdict.PAYS, False)
    assert opens() == opens_before
    stay.refresh_from_db()
    assert (stay.exited_at, stay.state) == (ended_at, StayState.CLOSED_BY_HAND)
    assert (stay.total, stay.paid) == (1100, 1100)  # the money shows on the stay it paid
    assert Stay.objects.get(pk=again.pk).exited_at is None  # the new stay is untouched


# 6. other holes -----------------------------------------------------------------------------


def test_a_stay_closed_by_hand_before_the_payment_still_records_it() -> None:
    from django.contrib.auth.models import User

    from eppark.stays.actions import close_by_hand

    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    agent = User.objects.create_user("agent")
    close_by_hand(stay, agent, timezone.now(), "left behind another car")
    stay.refresh_from_db()
    assert (stay.total, stay.paid) == (1100, 0)

    settled = settle_by(paid(order))()

    assert settled.verdict is Verdict.PAYS
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.needs_review) == (OrderState.PAID, 1100, False)
    stay.refresh_from_db()
    assert (stay.state, stay.total, stay.paid) == (StayState.CLOSED_BY_HAND, 1100, 1100)


def test_a_payment_for_more_than_an_ended_stay_cost_is_flagged() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    Stay.objects.filter(pk=stay.pk).update(
        exited_at=timezone.now(), state=StayState.CLOSED_BY_HAND, total=500, paid=500
    )
    assert settle_by(paid(order))().verdict is Verdict.PAYS
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert order.needs_review
    assert "1100 fen more" in order.review_note
    stay.refresh_from_db()
    assert (stay.total, stay.paid) == (1600, 1600)


def test_a_stay_paid_on_two_phones_keeps_both_payments_and_flags_the_second() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    now = timezone.now()
    at_cashier = placing.order_for_stay(stay, now)
    assert at_cashier is not None
    Order.objects.filter(pk=at_cashier.pk).update(state=OrderState.PAYING)
    other_phone = placing.order_for_stay(stay, now)
    assert other_phone is not None
    assert other_phone.pk != at_cashier.pk  # the paying one is its provider's

    first, second = (
        settle_by(paid(at_cashier))(),
        settle_by(paid(other_phone, transaction_id="4200000002"))(),
    )

    assert (first.verdict, second.verdict) == (Verdict.PAYS, Verdict.PAYS)
    at_cashier.refresh_from_db()
    other_phone.refresh_from_db()
    assert not at_cashier.needs_review
    assert other_phone.needs_review
    assert at_cashier.out_trade_no in other_phone.review_note
    assert placing.stay_charge(stay, timezone.now()).paid == 2200


def test_an_unplated_order_whose_visit_is_gone_is_paid_and_opens_nothing() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5, plate=billing.temp_plate(7), entered_as="unplated")
    visit = waiting_at_exit(site, None)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    assert order.kind == "unplated"
    Order.objects.filter(pk=order.pk).update(visit=None)  # the visit was purged
    opens_before = opens()
    settled = settle_by(paid(order))()
    assert (settled.verdict, settled.opened) == (Verdict.PAYS, False)
    assert opens() == opens_before
    assert Stay.objects.get(pk=stay.pk).exited_at is None
    assert placing.stay_charge(stay, timezone.now()).due == 0


def test_an_unplated_car_that_paid_is_let_out_at_its_own_visit() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5, plate=billing.temp_plate(8), entered_as="unplated")
    visit = waiting_at_exit(site, None)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    settled = settle_by(paid(order))()
    assert (settled.verdict, settled.opened) == (Verdict.PAYS, True)
    stay.refresh_from_db()
    assert (stay.state, stay.paid) == (StayState.LEFT, 1100)


def test_a_gate_with_no_way_to_open_changes_nothing() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    bare = Gate.objects.create(lot=site.lot, code="exit-2", name="exit 2", direction="exit")
    visit = GateVisit.objects.create(
        gate=bare,
        lot=site.lot,
        plate=PLATE,
        arrived_at=timezone.now(),
        scenario="exit.temp_unpaid",
    )
    Order.objects.create(
        kind="temp",
        lot=site.lot,
        plate=PLATE,
        stay=stay,
        amount=1100,
        out_trade_no="EPT-BARE-1",
        state=OrderState.PAID,
        priced_at=timezone.now(),
        paid_at=timezone.now(),
        paid_amount=1100,
    )
    assert not let_through(visit, "exit.temp_paid", timezone.now(), stay_id=stay.pk)
    visit.refresh_from_db()
    assert not visit.opened
    assert Stay.objects.get(pk=stay.pk).exited_at is None  # still inside: the gate never opened


@postgres_only
def test_settling_inside_a_callers_transaction_holds_the_others_until_it_commits() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    visit = waiting_at_exit(site)
    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    inside, release = threading.Event(), threading.Event()

    def settle_and_hold() -> Any:
        with transaction.atomic():
            settled = settle_by(paid(order))()
            inside.set()
            release.wait(30)
        return settled

    first = Background(settle_and_hold)
    try:
        assert inside.wait(30)
        second = Background(settle_by(paid(order)))
        wait_for_lock_waiters()
    finally:
        release.set()
    assert (first.result().verdict, first.result().opened) == (Verdict.PAYS, True)
    assert (second.result().verdict, second.result().opened) == (Verdict.DUPLICATE, False)
    assert goodbyes() == 1
    assert Stay.objects.get(pk=stay.pk).state == StayState.LEFT
