"""The sandbox provider: a local stand-in for WeChat Pay and Alipay (the demo, the tests).

It is used whenever no real provider is configured (``providers.configured()``)
and behaves like the real services, as contracts.md ("The sandbox provider",
"Payment codes at the robot") describes. Its books are rows in the database
(``SandboxTrade``, ``SandboxDelivery``), so the web server, the payments worker
and the tests all see the same trades.

- **Page payments** go to the sandbox's cashier page, served by the project
  (``eppark.payments.sandbox_views``): ``确认支付`` pays the trade, ``取消支付``
  leaves it unpaid; either returns the phone to our result page.
- **Payment codes**: the code's last digit decides: ``0`` pays at once; ``1``
  waits for the driver (USERPAYING) and pays ``USERPAYING_FOR`` later (a
  query after that finds it paid); ``2`` is declined (余额不足); ``3`` raises
  ``ProviderError`` although the money was taken (a query finds it paid); any
  other digit pays at once.
- **Notifications**: a trade that becomes paid queues its notification to the
  trade's ``notify_url`` twice (at once, and ``DUPLICATE_AFTER`` later: the real
  services resend), sent over HTTP by ``eppark.payments.delivery.deliver_due``.
  The body is shaped like WeChat Pay v3's decrypted ``resource``; the headers
  ``Sandbox-Timestamp``, ``Sandbox-Nonce`` and ``Sandbox-Signature`` (base64
  HMAC-SHA256 over ``timestamp\\nnonce\\nbody\\n`` with a key derived from
  ``SECRET_KEY``) sign it, and ``parse_notification`` refuses a bad signature
  or a timestamp more than ``NOTIFY_MAX_SKEW`` away.
- **Close, reverse, refund, bill** as WeChat Pay does them: close an unpaid
  trade; reverse (撤销) cancels a code payment and refunds it if it was paid;
  partial and full refunds; the day's paid trades in Asia/Shanghai.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from eppark.evidence.links import public_url
from eppark.payments.models import SandboxDelivery, SandboxTrade
from eppark.payments.providers.base import (
    BillLine,
    Charge,
    NotificationRejected,
    PagePayment,
    ProviderError,
    RefundResult,
    Refused,
    Reply,
    TradeResult,
    TradeState,
)

NAME = "sandbox"
MERCHANT_ZONE = ZoneInfo("Asia/Shanghai")

USERPAYING_FOR = timedelta(seconds=3)
"""How long a payment code ending in 1 waits for the (simulated) driver's confirmation."""
DUPLICATE_AFTER = timedelta(seconds=2)
"""When the second copy of a payment notification is due (the real services resend)."""
NOTIFY_MAX_SKEW = timedelta(minutes=5)
"""A notification whose timestamp is further than this from now is refused (stale or replayed)."""
DECLINED_DETAIL = "余额不足"

CASHIER_SALT = "eppark.payments.sandbox.cashier"
NOTIFY_SALT = "eppark.payments.sandbox.notify"
HEADER_TIMESTAMP = "Sandbox-Timestamp"
HEADER_NONCE = "Sandbox-Nonce"
HEADER_SIGNATURE = "Sandbox-Signature"

Clock = Callable[[], datetime]


# --- signatures ---------------------------------------------------------------------------


def _signature(timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    digest = salted_hmac(NOTIFY_SALT, message, algorithm="sha256").digest()
    return base64.b64encode(digest).decode("ascii")


def signed_headers(body: bytes, at: datetime, *, nonce: str | None = None) -> dict[str, str]:
    """The headers that sign a notification ``body`` sent at ``at`` (what the sandbox sends)."""
    timestamp = str(int(at.timestamp()))
    nonce = nonce or secrets.token_hex(16)
    return {
        "Content-Type": "application/json",
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: _signature(timestamp, nonce, body),
    }


def notification_body(trade: SandboxTrade) -> bytes:
    """A paid trade's notification, shaped like WeChat Pay v3's decrypted ``resource``."""
    paid_at = trade.paid_at or trade.created_at
    payload = {
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.transaction_id,
        "trade_type": "NATIVE",
        "trade_state": trade.state,
        "trade_state_desc": "支付成功",
        "success_time": paid_at.astimezone(MERCHANT_ZONE).isoformat(timespec="seconds"),
        "amount": {
            "total": trade.amount,
            "payer_total": trade.amount,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
        "payer": {"openid": trade.payer},
        "attach": trade.channel,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the cashier's token ------------------------------------------------------------------


def cashier_token(out_trade_no: str, channel: str) -> str:
    """The signed token of a trade's cashier page (its expiry is the trade's own)."""
    return signing.dumps({"t": out_trade_no, "c": channel}, salt=CASHIER_SALT, compress=True)


def read_cashier_token(token: str) -> tuple[str, str]:
    """The trade number and channel a cashier token names; ``signing.BadSignature`` if forged."""
    data: Any = signing.loads(token, salt=CASHIER_SALT)
    if not (isinstance(data, dict) and isinstance(data.get("t"), str)):
        raise signing.BadSignature("not a cashier token")
    channel = data.get("c")
    return data["t"], channel if isinstance(channel, str) else ""


def safe_return_url(return_url: str) -> str:
    """``return_url`` as a path on this site; ``Refused`` for anywhere else.

    A path (``/pay/…``) is taken as it is; an absolute URL only if it is under
    ``EPPARK_PUBLIC_URL`` (it is reduced to its path). Anything else would let the
    cashier send a phone to someone else's site.
    """
    if not return_url:
        return ""
    if any(c in return_url for c in "\\\r\n\t") or return_url.startswith("//"):
        raise Refused("return_url must be a path on this site")
    parts = urlsplit(return_url)
    if parts.scheme or parts.netloc:
        base = urlsplit(public_url())
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise Refused("return_url must be a path on this site")
        path = parts.path or "/"
        return path + (f"?{parts.query}" if parts.query else "")
    if not return_url.startswith("/") or not url_has_allowed_host_and_scheme(
        return_url, allowed_hosts=None
    ):
        raise Refused("return_url must be a path on this site")
    return return_url


# --- the provider -------------------------------------------------------------------------


class Sandbox:
    """The sandbox provider for one app (``wechat`` or ``alipay``)."""

    name = NAME

    def __init__(self, channel: str, *, clock: Clock | None = None) -> None:
        self.channel = channel
        self._clock: Clock = clock or timezone.now

    def __repr__(self) -> str:
        return f"Sandbox({self.channel!r})"

    def now(self) -> datetime:
        """The sandbox's time (the tests may give it a clock of their own)."""
        return self._clock()

    # payments ---------------------------------------------------------------------------

    def page_payment(self, charge: Charge, *, payer: str = "", return_url: str = "") -> PagePayment:
        """Open (or reopen) the trade and send the phone to the sandbox's cashier page."""
        back = safe_return_url(return_url)
        _check_charge(charge)
        now = self.now()
        _confirm(charge.out_trade_no, now)
        with transaction.atomic():
            trade = _locked(charge.out_trade_no)
            if trade is None:
                trade = SandboxTrade(out_trade_no=charge.out_trade_no, created_at=now)
            else:
                _advance(trade, now)
            if trade.state in (TradeState.SUCCESS, TradeState.REFUND):
                raise Refused("ORDERPAID: the trade is already paid")
            if trade.state in (TradeState.CLOSED, TradeState.REVOKED):
                raise Refused("ORDERCLOSED: the trade is closed")
            if trade.state == TradeState.USERPAYING:
                raise Refused("USERPAYING: the driver is confirming a payment code")
            trade.channel = self.channel
            trade.amount = charge.amount
            trade.description = charge.description[:128]
            trade.notify_url = charge.notify_url[:512]
            trade.expires_at = charge.expires_at
            trade.state = TradeState.NOTPAY
            trade.confirms_at = None
            if payer:
                trade.payer = payer[:128]
            trade.save()
        url = public_url() + reverse(
            "payments:sandbox_cashier", args=[cashier_token(charge.out_trade_no, self.channel)]
        )
        if back:
            url += "?return=" + quote(back, safe="")
        return PagePayment(kind="redirect", url=url)

    def codepay(self, charge: Charge, auth_code: str) -> TradeResult:
        """Charge a payment code; its last digit decides what happens (module docstring)."""
        _check_charge(charge)
        code = auth_code.strip()
        if not code.isdigit():
            raise Refused("INVALID_REQUEST: not a payment code")
        now = self.now()
        _confirm(charge.out_trade_no, now)
        last = code[-1]
        with transaction.atomic():
            trade = _locked(charge.out_trade_no)
            if trade is not None:
                _advance(trade, now)
                if trade.state == TradeState.SUCCESS:
                    return _result(trade)  # the same trade paid again: idempotent
                if trade.state in (TradeState.CLOSED, TradeState.REVOKED, TradeState.REFUND):
                    raise Refused("ORDERCLOSED: the trade is closed")
                if trade.state == TradeState.USERPAYING:
                    return _result(trade)  # still waiting for the driver
            else:
                trade = SandboxTrade(out_trade_no=charge.out_trade_no, created_at=now)
            trade.channel = self.channel
            trade.amount = charge.amount
            trade.description = charge.description[:128]
            trade.notify_url = charge.notify_url[:512]
            trade.expires_at = charge.expires_at
            trade.payer = _code_payer(code)
            if last == "1":
                trade.state = TradeState.USERPAYING
                trade.confirms_at = now + USERPAYING_FOR
                trade.save()
                return _result(trade, detail="需要用户输入支付密码")
            if last == "2":
                trade.state = TradeState.PAYERROR
                trade.save()
                return _result(trade, detail=DECLINED_DETAIL)
            _pay(trade, now, payer=trade.payer)
            result = _result(trade)
        if last == "3":  # the money is taken, but the call reports an error
            raise ProviderError("SYSTEMERROR: 系统超时 (the charge went through nevertheless)")
        return result

    def query(self, out_trade_no: str) -> TradeResult:
        """The trade now (a USERPAYING trade whose driver confirmed turns SUCCESS)."""
        now = self.now()
        with transaction.atomic():
            trade = _locked(out_trade_no)
            if trade is None:
                raise Refused("ORDER_NOT_EXIST: no such trade")
            _advance(trade, now)
            return _result(trade, detail=DECLINED_DETAIL if trade.state == "PAYERROR" else "")

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade; ``Refused`` for a paid one. Closing twice is harmless."""
        now = self.now()
        _confirm(out_trade_no, now)
        with transaction.atomic():
            trade = _locked(out_trade_no)
            if trade is None:
                return  # never opened here: nothing to close
            _advance(trade, now)
            if trade.state in (TradeState.SUCCESS, TradeState.REFUND):
                raise Refused("ORDERPAID: the trade is paid")
            if trade.state in (TradeState.CLOSED, TradeState.REVOKED):
                return
            trade.state = TradeState.CLOSED
            trade.confirms_at = None
            trade.save(update_fields=["state", "confirms_at"])

    def reverse(self, out_trade_no: str) -> None:
        """Cancel a trade (撤销): unpaid → REVOKED; paid → refunded in full and REVOKED."""
        now = self.now()
        _confirm(out_trade_no, now)
        with transaction.atomic():
            trade = _locked(out_trade_no)
            if trade is None:
                raise Refused("ORDER_NOT_EXIST: no such trade")
            _advance(trade, now)
            if trade.state == TradeState.REVOKED:
                return
            if trade.state == TradeState.REFUND or trade.refunded:
                raise Refused("REVERSE_EXPIRED: the trade has refunds; refund it instead")
            if trade.state == TradeState.SUCCESS:
                trade.refunded = trade.amount
            trade.state = TradeState.REVOKED
            trade.confirms_at = None
            trade.save(update_fields=["state", "confirms_at", "refunded"])

    def refund(
        self, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str
    ) -> RefundResult:
        """Give back ``amount`` fen (once per ``out_refund_no``); REFUND when fully refunded."""
        now = self.now()
        _confirm(out_trade_no, now)
        with transaction.atomic():
            trade = _locked(out_trade_no)
            if trade is None:
                raise Refused("ORDER_NOT_EXIST: no such trade")
            _advance(trade, now)
            refunds: dict[str, int] = dict(trade.refunds or {})
            if out_refund_no in refunds:
                if refunds[out_refund_no] != amount:
                    raise Refused("INVALID_REQUEST: the refund number was used for another amount")
                return RefundResult(out_refund_no, True, _refund_id(out_refund_no))
            if trade.state not in (TradeState.SUCCESS, TradeState.REFUND):
                raise Refused("TRADE_NOT_PAID: only a paid trade can be refunded")
            if total != trade.amount:
                raise Refused("INVALID_REQUEST: total is not the trade's amount")
            if amount <= 0 or trade.refunded + amount > trade.amount:
                raise Refused("NOT_ENOUGH: more than what is left to refund")
            refunds[out_refund_no] = amount
            trade.refunds = refunds
            trade.refunded += amount
            if trade.refunded >= trade.amount:
                trade.state = TradeState.REFUND
            trade.save(update_fields=["refunds", "refunded", "state"])
        return RefundResult(out_refund_no, True, _refund_id(out_refund_no))

    def bill(self, day: date) -> list[BillLine]:
        """The paid (or refunded) trades of this app paid on ``day`` (Asia/Shanghai)."""
        confirm_due(self.now())
        start = datetime.combine(day, time.min, MERCHANT_ZONE)
        end = start + timedelta(days=1)
        trades = SandboxTrade.objects.filter(
            channel=self.channel,
            state__in=[TradeState.SUCCESS, TradeState.REFUND],
            paid_at__gte=start,
            paid_at__lt=end,
        ).order_by("paid_at", "out_trade_no")
        return [
            BillLine(t.out_trade_no, t.transaction_id, t.amount, TradeState(t.state), t.paid_at)
            for t in trades
            if t.paid_at is not None
        ]

    # notifications ----------------------------------------------------------------------

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeResult:
        """Verify a notification's signature and freshness, then read it."""
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get(HEADER_TIMESTAMP.lower(), "")
        nonce = lower.get(HEADER_NONCE.lower(), "")
        signature = lower.get(HEADER_SIGNATURE.lower(), "")
        if not (timestamp and nonce and signature):
            raise NotificationRejected("unsigned: signature headers missing")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise NotificationRejected("malformed timestamp")
        expected = _signature(timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise NotificationRejected("bad signature")
        sent = datetime.fromtimestamp(int(timestamp), tz=UTC)
        if sent < now - NOTIFY_MAX_SKEW:
            raise NotificationRejected("stale timestamp (older than 5 minutes)")
        if sent > now + NOTIFY_MAX_SKEW:
            raise NotificationRejected("timestamp in the future")
        return _read_body(body)

    def notification_reply(self, ok: bool) -> Reply:
        """204 when accepted (as WeChat Pay v3 expects); 400 ``FAIL`` to be sent again."""
        if ok:
            return Reply(204, b"")
        return Reply(400, json.dumps({"code": "FAIL", "message": "失败"}).encode("utf-8"))


# --- the cashier page's actions (sandbox_views) -------------------------------------------


class CashierClosed(Exception):
    """The cashier page's trade cannot be paid: closed, reversed, expired or unknown."""


def cashier_trade(out_trade_no: str) -> SandboxTrade | None:
    """The trade a cashier page shows."""
    return SandboxTrade.objects.filter(out_trade_no=out_trade_no).first()


def pay_at_cashier(out_trade_no: str, *, payer: str, now: datetime) -> SandboxTrade:
    """``确认支付``: the trade is paid and its notification queued; paying twice pays once."""
    with transaction.atomic():
        trade = _locked(out_trade_no)
        if trade is None:
            raise CashierClosed("no such trade")
        if trade.state in (TradeState.SUCCESS, TradeState.REFUND):
            return trade
        if trade.state != TradeState.NOTPAY:
            raise CashierClosed(trade.state)
        if trade.expires_at is not None and trade.expires_at <= now:
            raise CashierClosed("expired")
        _pay(trade, now, payer=payer or trade.payer or _page_payer(out_trade_no))
        return trade


# --- inside -------------------------------------------------------------------------------


def _check_charge(charge: Charge) -> None:
    if charge.amount <= 0:
        raise Refused("INVALID_REQUEST: the amount must be positive")
    if not (6 <= len(charge.out_trade_no) <= 32):
        raise Refused("INVALID_REQUEST: out_trade_no must have 6 to 32 characters")
    if len(charge.description) > 127:
        raise Refused("INVALID_REQUEST: description longer than 127 characters")


def _locked(out_trade_no: str) -> SandboxTrade | None:
    return SandboxTrade.objects.select_for_update().filter(out_trade_no=out_trade_no).first()


def _result(trade: SandboxTrade, *, detail: str = "") -> TradeResult:
    paid = trade.state in (TradeState.SUCCESS, TradeState.REFUND, TradeState.REVOKED)
    return TradeResult(
        out_trade_no=trade.out_trade_no,
        state=TradeState(trade.state),
        transaction_id=trade.transaction_id if paid else "",
        amount=trade.amount,
        paid_at=trade.paid_at if paid else None,
        payer=trade.payer,
        detail=detail,
    )


def _pay(trade: SandboxTrade, now: datetime, *, payer: str) -> None:
    """Mark the trade paid and queue its notification (twice, like the real services)."""
    trade.state = TradeState.SUCCESS
    trade.paid_at = now
    trade.confirms_at = None
    trade.transaction_id = trade.transaction_id or _transaction_id(now)
    trade.payer = payer[:128]
    trade.save()
    if trade.notify_url:
        body = notification_body(trade).decode("utf-8")
        for due in (now, now + DUPLICATE_AFTER):
            SandboxDelivery.objects.create(trade=trade, url=trade.notify_url, body=body, due_at=due)


def _advance(trade: SandboxTrade, now: datetime) -> None:
    """A USERPAYING trade whose driver has confirmed by ``now`` is paid (at its confirm time)."""
    if (
        trade.state == TradeState.USERPAYING
        and trade.confirms_at is not None
        and trade.confirms_at <= now
    ):
        _pay(trade, trade.confirms_at, payer=trade.payer)


def _confirm(out_trade_no: str, now: datetime) -> None:
    """Pay the trade if its driver has confirmed by ``now`` (committed before anything refuses)."""
    with transaction.atomic():
        trade = _locked(out_trade_no)
        if trade is not None:
            _advance(trade, now)


def confirm_due(now: datetime) -> int:
    """Pay every USERPAYING trade whose driver has confirmed by ``now`` (sends their notices)."""
    numbers = list(
        SandboxTrade.objects.filter(state=TradeState.USERPAYING, confirms_at__lte=now).values_list(
            "out_trade_no", flat=True
        )
    )
    for number in numbers:
        with transaction.atomic():
            trade = _locked(number)
            if trade is not None:
                _advance(trade, now)
    return len(numbers)


def _transaction_id(now: datetime) -> str:
    return f"SBX{now.astimezone(MERCHANT_ZONE):%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"


def _refund_id(out_refund_no: str) -> str:
    return "SBXR" + hashlib.sha256(out_refund_no.encode()).hexdigest()[:20].upper()


def _code_payer(code: str) -> str:
    """A stable pseudo user id for a payment code (the code itself is never kept)."""
    key = settings.SECRET_KEY.encode()
    return "sbx_" + hmac.new(key, code.encode(), hashlib.sha256).hexdigest()[:24]


def _page_payer(out_trade_no: str) -> str:
    return "sbx_" + hashlib.sha256(out_trade_no.encode()).hexdigest()[:24]


def _read_body(body: bytes) -> TradeResult:
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected("malformed JSON") from exc
    if not isinstance(data, dict):
        raise NotificationRejected("malformed: not an object")
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not (1 <= len(out_trade_no) <= 64):
        raise NotificationRejected("malformed: out_trade_no")
    try:
        state = TradeState(str(data.get("trade_state")))
    except ValueError as exc:
        raise NotificationRejected("malformed: trade_state") from exc
    transaction_id = data.get("transaction_id", "")
    if not isinstance(transaction_id, str) or len(transaction_id) > 64:
        raise NotificationRejected("malformed: transaction_id")
    amount_field = data.get("amount")
    total = amount_field.get("total") if isinstance(amount_field, dict) else None
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise NotificationRejected("malformed: amount.total")
    payer_field = data.get("payer", {})
    openid = payer_field.get("openid", "") if isinstance(payer_field, dict) else None
    if not isinstance(openid, str):
        raise NotificationRejected("malformed: payer.openid")
    paid_at = None
    success_time = data.get("success_time")
    if success_time is not None:
        if not isinstance(success_time, str):
            raise NotificationRejected("malformed: success_time")
        try:
            paid_at = datetime.fromisoformat(success_time)
        except ValueError as exc:
            raise NotificationRejected("malformed: success_time") from exc
        if paid_at.tzinfo is None:
            raise NotificationRejected("malformed: success_time without a time zone")
    return TradeResult(
        out_trade_no=out_trade_no,
        state=state,
        transaction_id=transaction_id,
        amount=total,
        paid_at=paid_at,
        payer=openid[:128],
    )
