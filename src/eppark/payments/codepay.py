"""Payment codes (付款码) shown to a robot's scanner: accepted at the gate, charged by the worker.

The gateway hands every ``qr_scanned`` event to ``accept_scan`` (plain database
work, never a provider call: the gateway's loop must not wait on HTTP):

- a code that is not a WeChat/Alipay payment code is only recorded; the car's
  visit is *not* resolved (showing any code used to take a car off the
  outbound call list), and the robot says 请出示微信或支付宝付款码 over the
  visit's own screen (its QR code stays up);
- a payment code with a car waiting at that robot's gate pays what the car
  owes: a temp stay's fee (``order_for_stay``), or an expired pass's renewal
  for the lot's first renewal option (``order_for_renewal``; one month unless
  the lot lists other options). An unplated car cannot be told apart by a
  code: the robot asks for the exit QR instead. A ``CodePayment`` is queued
  (one per robot event: a redelivered event changes nothing) and the robot
  shows 正在支付，请稍候.

The payments worker (``eppark.payments.worker``) then calls ``run_due``, which
takes each due code payment one step further (protocols.md, WeChat codepay):

- charge the code (the code is erased from the row before the call: only its
  masked form stays);
- SUCCESS → ``settle`` (the order paid; a car waiting at the exit is let
  through, the robot says 一路平安);
- USERPAYING → the robot shows 请在手机上确认支付; query on
  ``billing.codepay_next_step``'s schedule; still not paid when it gives up →
  reverse, the order closed;
- PAYERROR → the order closed (it can be placed again), the robot says
  支付失败： and the reason (余额不足) over the QR screen again;
- an error or no answer → query before deciding (a charge can succeed although
  the call failed), on ``billing.codepay_after_error``'s schedule; when the
  queries cannot tell, reverse.

Every robot message goes through the outbox, so a broker outage delays but
loses nothing; a message is shown only while that car's visit is still the
one waiting at the gate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from eppark.devices import outbox
from eppark.devices.models import Channel, Robot, RobotEvent
from eppark.domain import billing
from eppark.domain.scenarios import ExpectedAction
from eppark.orders.models import Order, OrderState
from eppark.orders.placing import order_for_renewal, order_for_stay, renewal_options
from eppark.passes.models import PassPlate
from eppark.payments import providers
from eppark.payments.checkout import charge_for
from eppark.payments.models import CodePayment, CodeState
from eppark.payments.providers.base import (
    Provider,
    ProviderError,
    Refused,
    TradeResult,
    TradeState,
)
from eppark.payments.settle import settle
from eppark.records.errors import Refused as NotPlaced
from eppark.stays.let_through import STILL_WAITING
from eppark.stays.models import GateVisit, Resolution, Stay
from eppark.stays.present import present_args

log = logging.getLogger(__name__)

# What the robot says and shows (Chinese, word for word, like the manual's scenario texts:
# the robot speaks to drivers in Chinese whatever the back office's language).
SHOW_PAYMENT_CODE = "请出示微信或支付宝付款码"
UNPLATED_USE_QR = "无牌车请扫码付费后出场"
PAYING = "正在支付，请稍候"
CONFIRM_ON_PHONE = "请在手机上确认支付"
FAILED = "支付失败："
DECLINED_REASON = "付款未成功"
TIMED_OUT_REASON = "未在手机上确认，已撤销"
UNKNOWN_REASON = "暂时无法确认支付结果，已撤销"
UNREACHABLE_REASON = "支付系统繁忙，请稍后重试"
NOT_SUPPORTED = "暂不支持该付款方式，请扫码缴费"
MISMATCH = "支付异常，请按呼叫按钮联系客服"
PAID = "支付成功"

FINAL_STATES = (
    CodeState.SUCCEEDED,
    CodeState.DECLINED,
    CodeState.REVERSED,
    CodeState.FAILED,
)
CLAIM_FOR = timedelta(seconds=60)
"""A worker takes a due code payment for this long; one that died meanwhile is taken again."""
SCAN_CLOCK_SLACK = timedelta(seconds=2)
"""A scan stamped this much before the car's arrival still counts (the robot's and the
camera's clocks differ a little); an older one was another driver's, for another car."""
STALE_SCAN = timedelta(seconds=60)
"""A scan that reaches the server this late (kept by a robot that was offline) pays nothing:
the driver has long gone on to something else."""
ENDED_VISITS = (Resolution.LEFT, Resolution.SUPERSEDED, Resolution.ABNORMAL_OPEN)
"""A visit resolved so is no longer a car waiting at the gate (the driver acted: still there)."""


# --- schedule (settings: the tests shorten the waits) ----------------------------------------


def _seconds(name: str, default: timedelta) -> timedelta:
    value = getattr(settings, name, None)
    return default if value is None else timedelta(seconds=float(value))


def give_up_after() -> timedelta:
    """How long a USERPAYING code payment is polled before it is reversed (45 s)."""
    return _seconds("EPPARK_CODEPAY_GIVE_UP_S", billing.CODEPAY_GIVE_UP_AFTER)


def _next_poll(started_at: datetime, now: datetime) -> tuple[str, datetime | None]:
    return billing.codepay_next_step(
        started_at,
        now,
        first=_seconds("EPPARK_CODEPAY_FIRST_QUERY_S", billing.CODEPAY_FIRST_QUERY),
        every=_seconds("EPPARK_CODEPAY_QUERY_EVERY_S", billing.CODEPAY_QUERY_EVERY),
        give_up=give_up_after(),
    )


# --- the gateway's side: a code shown to the scanner -----------------------------------------


def is_payment_code(code: str) -> bool:
    """Whether ``code`` is a WeChat or Alipay payment code."""
    return billing.payment_code_channel(code) is not None


def recorded_data(data: dict[str, Any]) -> dict[str, Any]:
    """A ``qr_scanned`` event's data as it is kept: a payment code masked, never whole."""
    code = data.get("code")
    if isinstance(code, str) and is_payment_code(code):
        return {**data, "code": billing.mask_code(code)}
    return data


def accept_scan(robot: Robot, record: RobotEvent, code: str, now: datetime) -> CodePayment | None:
    """A code the robot's scanner read (``record``: the event, stored): queue its payment.

    None when nothing is to be paid (not a payment code, no car waiting, nothing
    owed, a payment already under way at this gate); the event stays recorded and
    the waiting visit is left as it was.
    """
    if robot.gate_id is None:
        return None
    visit = _visit_at(robot.gate_id, record.ts, now)
    channel = billing.payment_code_channel(code)
    if channel is None:
        if visit is not None:
            _show_over_decision(visit, SHOW_PAYMENT_CODE, now)
        return None
    if visit is None:
        log.info("payment code %s at %s: no car waiting", billing.mask_code(code), robot.code)
        return None
    if CodePayment.objects.filter(gate_id=robot.gate_id, finished_at__isnull=True).exists():
        log.info("payment code at %s while another is being charged: ignored", robot.code)
        return None
    provider = providers.for_code(code)
    if provider is None:
        _show_over_decision(visit, NOT_SUPPORTED, now)
        return None
    action = visit.expected_action
    if action == ExpectedAction.UNPLATED_EXIT_ORDER:
        _show_over_decision(visit, UNPLATED_USE_QR, now)
        return None
    try:
        order = _order_owed(visit, now)
    except NotPlaced as refused:
        with translation.override("zh-hans"):
            _show_over_decision(visit, str(refused), now)
        return None
    if order is None:
        return None
    try:
        with transaction.atomic():
            payment = CodePayment.objects.create(
                order=order,
                lot_id=visit.lot_id,
                gate_id=visit.gate_id,
                visit=visit,
                event_id=record.event_id,
                channel=channel,
                code=code.strip(),
                code_masked=billing.mask_code(code),
                state=CodeState.QUEUED,
                started_at=now,
                next_step_at=now,
            )
            Order.objects.filter(pk=order.pk, gate__isnull=True, visit__isnull=True).update(
                gate_id=visit.gate_id, visit_id=visit.pk
            )
            _show_text(visit, PAYING, "green", now)
    except IntegrityError:
        return None  # this event's payment exists already
    return payment


def _visit_at(gate_id: int, scanned_at: datetime, now: datetime) -> GateVisit | None:
    """The car waiting at the gate when the code was shown: the gate's latest visit, unopened.

    A visit the driver acted on (a QR page opened) still has its car at the gate;
    one whose car backed away or was followed by another has not.
    """
    visit = GateVisit.objects.filter(gate_id=gate_id).order_by("-arrived_at", "-pk").first()
    if visit is None or visit.opened or visit.resolution in ENDED_VISITS:
        return None
    if visit.arrived_at > scanned_at + SCAN_CLOCK_SLACK or scanned_at < now - STALE_SCAN:
        return None
    if visit.arrived_at < now - STILL_WAITING:
        return None
    return visit


def _order_owed(visit: GateVisit, now: datetime) -> Order | None:
    """The open order for what the car at ``visit`` owes now (placed if needed); None: nothing.

    The order is placed without the visit: placing it for a visit would count as the
    driver's action, and a declined code is not one (the car stays on the outbound list).
    """
    action = visit.expected_action
    if action == ExpectedAction.TEMP_ORDER and visit.plate:
        stay = (
            Stay.objects.filter(lot_id=visit.lot_id, plate=visit.plate, exited_at__isnull=True)
            .select_related("lot")
            .order_by("-entered_at", "-pk")
            .first()
        )
        return None if stay is None else order_for_stay(stay, now)
    if action == ExpectedAction.MONTHLY_ORDER and visit.plate:
        held = (
            PassPlate.objects.filter(lot_id=visit.lot_id, plate=visit.plate)
            .select_related("monthly_pass__lot")
            .first()
        )
        if held is None:
            return None
        options = renewal_options(held.monthly_pass)
        if not options:
            return None
        return order_for_renewal(held.monthly_pass, options[0].months, now, plate=visit.plate)
    return None


# --- the robot's screen ------------------------------------------------------------------


def _robot_of(gate_id: int) -> Robot | None:
    return Robot.objects.filter(gate_id=gate_id).order_by("pk").first()


def _still_waiting(visit: GateVisit) -> bool:
    """Whether ``visit`` is still the car waiting at its gate (unopened, not followed)."""
    latest = (
        GateVisit.objects.filter(gate_id=visit.gate_id)
        .order_by("-arrived_at", "-pk")
        .values_list("pk", "opened", "resolution")
        .first()
    )
    return (
        latest is not None
        and latest[0] == visit.pk
        and not latest[1]
        and (latest[2] not in ENDED_VISITS)
    )


def _present(visit: GateVisit, args: dict[str, Any], now: datetime) -> None:
    robot = _robot_of(visit.gate_id)
    if robot is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        outbox.stage(
            cursor,
            channel=Channel.MQTT,
            cmd="present",
            args=args,
            now=now,
            ttl=outbox.present_ttl(),
            robot_id=robot.pk,
            robot_code=robot.code,
            visit_id=visit.pk,
        )


def _show_text(visit: GateVisit, text: str, light: str, now: datetime) -> None:
    """The robot says ``text`` and shows it alone (a payment under way)."""
    _present(visit, {"voice": text, "display": {"kind": "text", "text": text}, "light": light}, now)


def _show_over_decision(visit: GateVisit, text: str, now: datetime) -> None:
    """The robot says ``text`` and shows the visit's own screen again with ``text`` as its
    caption: the QR code to pay by stays up, so the driver can scan it or show a code again."""
    decision = visit.decision or {}
    if not decision.get("display"):
        _show_text(visit, text, "yellow", now)
        return
    args = present_args(decision, visit.pk, visit.lot_id, visit.plate, _pass_id(visit))
    display = dict(args["display"])
    if display.get("kind") != "text":
        display["text"] = text
    _present(visit, {"voice": text, "display": display, "light": args["light"]}, now)


def _pass_id(visit: GateVisit) -> int | None:
    if (visit.decision or {}).get("display", {}).get("kind") != "vehicles":
        return None
    return (
        PassPlate.objects.filter(lot_id=visit.lot_id, plate=visit.plate)
        .values_list("monthly_pass_id", flat=True)
        .first()
    )


def _tell(payment: CodePayment, text: str, now: datetime, *, over_decision: bool) -> None:
    """Show ``text`` at the payment's gate, if its car is still the one waiting there."""
    visit = payment.visit
    if visit is None or not _still_waiting(visit):
        return
    if over_decision:
        _show_over_decision(visit, text, now)
    else:
        _show_text(visit, text, "green", now)


# --- the worker's side: one step at a time ---------------------------------------------------


def run_due(now: datetime, limit: int = 20) -> int:
    """Take every due code payment one step further; how many were stepped.

    Each is claimed first (a conditional update: another worker process skips it),
    and a failing one is logged and tried again later: it never stops the others.
    """
    due = list(
        CodePayment.objects.filter(finished_at__isnull=True, next_step_at__lte=now)
        .order_by("next_step_at")
        .values_list("pk", "next_step_at")[:limit]
    )
    stepped = 0
    for pk, due_at in due:
        claimed = CodePayment.objects.filter(
            pk=pk, finished_at__isnull=True, next_step_at=due_at
        ).update(next_step_at=now + CLAIM_FOR)
        if claimed != 1:
            continue
        try:
            step(pk, now)
        except Exception:
            log.exception("code payment %s: step failed (tried again later)", pk)
            CodePayment.objects.filter(pk=pk, finished_at__isnull=True).update(
                next_step_at=now + timedelta(seconds=5)
            )
        stepped += 1
    return stepped


def step(pk: int, now: datetime) -> None:
    """One step of code payment ``pk``: charge, poll, check after an error, or reverse."""
    payment = CodePayment.objects.select_related("order__lot", "visit").get(pk=pk)
    if payment.finished_at is not None:
        return
    provider = providers.for_channel(payment.channel)
    if payment.state == CodeState.QUEUED:
        _charge(payment, provider, now)
    elif payment.state == CodeState.USERPAYING:
        _poll(payment, provider, now)
    else:
        _check(payment, provider, now)


def _charge(payment: CodePayment, provider: Provider, now: datetime) -> None:
    """Charge the code once. Before the call the order is marked paying and the code erased:
    if this process dies during the call, the next step queries, never charges again."""
    code = payment.code
    with transaction.atomic():
        taken = Order.objects.filter(pk=payment.order_id, state=OrderState.CREATED).update(
            state=OrderState.PAYING, provider=provider.name, channel=provider.channel
        )
        if taken != 1 or not code:
            order = Order.objects.get(pk=payment.order_id)
            say = FAILED + DECLINED_REASON if order.state != OrderState.PAID else None
            _finish(payment, CodeState.FAILED, f"the order was {order.state} already", now, say)
            return
        payment.state = CodeState.CHECKING
        payment.code = ""
        payment.attempts += 1
        payment.next_step_at = now + CLAIM_FOR
        payment.save(update_fields=["state", "code", "attempts", "next_step_at"])
    payment.order.refresh_from_db()
    try:
        result = provider.codepay(charge_for(payment.order, provider), code)
    except ProviderError as error:
        _unknown(payment, f"charge: {error}", now, checks_done=0)
        return
    except Refused as refused:
        detail = f"refused: {refused}"
        _finish(payment, CodeState.FAILED, detail, now, FAILED + DECLINED_REASON, close=True)
        return
    _outcome(payment, provider, result, now)


def _poll(payment: CodePayment, provider: Provider, now: datetime) -> None:
    """A USERPAYING payment's scheduled query: paid, still waiting, ended, or time to reverse."""
    payment.attempts += 1
    try:
        result = provider.query(payment.order.out_trade_no)
    except (ProviderError, Refused) as error:
        payment.detail = f"query: {error}"[:256]
        result = None
    if result is not None and result.state not in (TradeState.USERPAYING, TradeState.NOTPAY):
        _outcome(payment, provider, result, now)
        return
    _wait_for_driver(payment, provider, now)


def _check(payment: CodePayment, provider: Provider, now: datetime) -> None:
    """After an error: query before deciding; when queries cannot tell, reverse."""
    checks_done = max(0, payment.attempts - 1)  # the charge call was the first
    payment.attempts += 1
    try:
        result = provider.query(payment.order.out_trade_no)
    except (ProviderError, Refused) as error:  # Refused: e.g. no such trade (yet)
        _unknown(payment, f"query: {error}", now, checks_done=checks_done + 1)
        return
    if result.state == TradeState.NOTPAY:
        _unknown(payment, "query: not paid yet", now, checks_done=checks_done + 1)
        return
    _outcome(payment, provider, result, now)


def _unknown(payment: CodePayment, detail: str, now: datetime, *, checks_done: int) -> None:
    """The outcome is unknown: query again later, or reverse once the checks are used up."""
    action, when = billing.codepay_after_error(checks_done, now)
    if action == "reverse":
        _reverse(payment, providers.for_channel(payment.channel), now, UNKNOWN_REASON, detail)
        return
    payment.state = CodeState.CHECKING
    payment.detail = detail[:256]
    payment.next_step_at = when
    payment.save(update_fields=["state", "detail", "attempts", "next_step_at"])


def _outcome(payment: CodePayment, provider: Provider, result: TradeResult, now: datetime) -> None:
    """What the provider says of the charge decides the next step."""
    if result.state == TradeState.SUCCESS:
        _settle(payment, provider, result, now)
    elif result.state == TradeState.USERPAYING:
        if payment.state != CodeState.USERPAYING:
            payment.state = CodeState.USERPAYING
            _tell(payment, CONFIRM_ON_PHONE, now, over_decision=False)
        _wait_for_driver(payment, provider, now)
    elif result.state in (TradeState.PAYERROR, TradeState.CLOSED, TradeState.REVOKED):
        reason = result.detail or DECLINED_REASON
        detail = f"{result.state}: {reason}"
        _finish(payment, CodeState.DECLINED, detail, now, FAILED + reason, close=True)
    else:  # NOTPAY after a charge call, REFUND: nothing to decide on yet
        checks_done = max(0, payment.attempts - 1)
        _unknown(payment, f"provider answered {result.state}", now, checks_done=checks_done)


def _wait_for_driver(payment: CodePayment, provider: Provider, now: datetime) -> None:
    action, when = _next_poll(payment.started_at, now)
    if action == "reverse":
        _reverse(payment, provider, now, TIMED_OUT_REASON, "not confirmed in time")
        return
    payment.next_step_at = when
    payment.save(update_fields=["state", "detail", "attempts", "next_step_at"])


def _reverse(
    payment: CodePayment, provider: Provider, now: datetime, reason: str, detail: str
) -> None:
    """Cancel the charge at the provider (refunded if it went through after all), close the order.

    If the provider cannot be reached the order stays paying: the payments jobs query
    it later and settle or close it (``eppark.payments.jobs``).
    """
    payment.attempts += 1
    try:
        provider.reverse(payment.order.out_trade_no)
    except (ProviderError, Refused) as error:
        detail = f"{detail}; reverse failed: {error}"
        _finish(payment, CodeState.FAILED, detail, now, FAILED + UNREACHABLE_REASON)
        return
    _finish(payment, CodeState.REVERSED, detail, now, FAILED + reason, close=True)


def _settle(payment: CodePayment, provider: Provider, result: TradeResult, now: datetime) -> None:
    settled = settle(result, provider=provider.name, channel=provider.channel, now=now)
    verdict = settled.verdict
    if verdict in (billing.Verdict.PAYS, billing.Verdict.PAYS_LATE, billing.Verdict.DUPLICATE):
        say = None if settled.opened else PAID
        _finish(payment, CodeState.SUCCEEDED, str(verdict), now, say, over_decision=False)
        return
    detail = f"paid, but {verdict}: flagged for review"
    _finish(payment, CodeState.FAILED, detail, now, MISMATCH, over_decision=False)


def _close_order(payment: CodePayment, now: datetime) -> None:
    """The order will not be paid by this code: closed (a new one can be placed)."""
    Order.objects.filter(
        pk=payment.order_id, state__in=(OrderState.CREATED, OrderState.PAYING)
    ).update(state=OrderState.CLOSED, closed_at=now)


def _finish(
    payment: CodePayment,
    state: str,
    detail: str,
    now: datetime,
    say: str | None = None,
    *,
    over_decision: bool = True,
    close: bool = False,
) -> None:
    """End the payment (its order closed if ``close``) and tell the driver ``say``, together."""
    with transaction.atomic():
        if close:
            _close_order(payment, now)
        payment.state = state
        payment.detail = detail[:256]
        payment.finished_at = now
        payment.next_step_at = None
        payment.code = ""
        payment.save(
            update_fields=["state", "detail", "finished_at", "next_step_at", "code", "attempts"]
        )
        if say is not None:
            _tell(payment, say, now, over_decision=over_decision)


def orders_under_way() -> set[int]:
    """The orders whose code payment the worker is still taking through its steps."""
    return set(
        CodePayment.objects.filter(finished_at__isnull=True).values_list("order_id", flat=True)
    )
