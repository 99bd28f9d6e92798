"""The one interface every payment provider speaks (sandbox, WeChat Pay APIv3, Alipay).

A provider is a typed client for one service: it starts payments, answers
queries, closes, reverses and refunds, lists a day's trades for the books, and
verifies and reads the service's notifications. Amounts are fen everywhere in
this interface; an adapter converts at its own edge (Alipay speaks yuan).
Errors are exceptions with a reason; a call whose outcome is unknown raises
``ProviderError`` and the caller queries before deciding (a charge can
succeed although the call reported an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol


class TradeState(StrEnum):
    """A trade's state at the provider (WeChat's names; Alipay's are mapped onto them)."""

    SUCCESS = "SUCCESS"
    NOTPAY = "NOTPAY"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"  # declined (e.g. 余额不足)
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"  # reversed
    REFUND = "REFUND"


@dataclass(frozen=True, slots=True)
class Charge:
    """What we ask a provider to collect for one order."""

    out_trade_no: str
    amount: int  # fen
    description: str  # ≤ 127 characters
    expires_at: datetime
    notify_url: str
    attach: str = ""


@dataclass(frozen=True, slots=True)
class PagePayment:
    """Where the driver's phone goes to pay: a URL to open, or a JSAPI call to make.

    ``kind`` is ``redirect`` (open ``url``: the sandbox's cashier, an Alipay QR
    URL) or ``jsapi`` (the page calls WeChat's ``getBrandWCPayRequest`` with
    ``params``).
    """

    kind: str
    url: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TradeResult:
    """A trade as the provider reports it (codepay answer, query, notification)."""

    out_trade_no: str
    state: TradeState
    transaction_id: str = ""
    amount: int | None = None  # fen, as the provider says it was charged
    paid_at: datetime | None = None
    payer: str = ""  # openid / buyer id
    detail: str = ""  # the provider's words for a decline or error (e.g. 余额不足)


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A refund as the provider reports it."""

    out_refund_no: str
    succeeded: bool  # False: still processing (a later query or notification decides)
    refund_id: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BillLine:
    """One trade of the provider's daily bill (for reconciliation)."""

    out_trade_no: str
    transaction_id: str
    amount: int  # fen charged
    state: TradeState  # SUCCESS, or REFUND for a refunded trade
    at: datetime


@dataclass(frozen=True, slots=True)
class Reply:
    """What the notification endpoint answers the provider."""

    status: int
    body: bytes
    content_type: str = "application/json"


class ProviderError(Exception):
    """The provider could not be reached or answered an error; the outcome is unknown."""


class Refused(Exception):
    """The provider refused the request outright (bad parameters, order closed, …)."""


class NotificationRejected(Exception):
    """A notification that must not be believed: bad signature, stale, malformed."""


class Provider(Protocol):
    """A payment service as the rest of the project sees it."""

    name: str  # "sandbox", "wechat", "alipay"
    channel: str  # "wechat" or "alipay": whose app the driver pays in

    def page_payment(self, charge: Charge, *, payer: str = "", return_url: str = "") -> PagePayment:
        """Start paying ``charge`` from a phone page (payer: the openid inside the app)."""
        ...

    def codepay(self, charge: Charge, auth_code: str) -> TradeResult:
        """Charge a payment code shown to the robot's scanner (SUCCESS, USERPAYING, PAYERROR)."""
        ...

    def query(self, out_trade_no: str) -> TradeResult:
        """The trade's state now."""
        ...

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade so it can no longer be paid."""
        ...

    def reverse(self, out_trade_no: str) -> None:
        """Cancel a code payment (撤销): refunds it if it was charged after all."""
        ...

    def refund(
        self, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str
    ) -> RefundResult:
        """Give back ``amount`` fen of a paid trade of ``total`` fen."""
        ...

    def bill(self, day: date) -> list[BillLine]:
        """The provider's trades of ``day`` (the merchant's time zone, Asia/Shanghai)."""
        ...

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeResult:
        """Verify and read a payment notification; ``NotificationRejected`` if not believable."""
        ...

    def notification_reply(self, ok: bool) -> Reply:
        """What to answer the provider: accepted, or please resend."""
        ...


JsonDict = dict[str, Any]
