"""Alipay (openapi gateway, RSA2): QR payments, payment codes, queries, refunds, bills.

We sign and verify with ``cryptography`` and speak HTTP with ``httpx`` (both already
ours) rather than ``python-alipay-sdk``, which would pull in pycryptodomex, a second
crypto stack, for a client that is only a thin urllib wrapper.

Wire format (protocols.md, "Alipay"): every call is a form POST to the gateway of the
common parameters ``app_id, method, format, charset, sign_type, timestamp, version,
notify_url, biz_content`` plus ``sign``: SHA256withRSA (RSA2) with the app's private key
over the sorted ``k=v&…`` of the non-empty parameters other than ``sign``. The answer is
JSON ``{"<method>_response": {…}, "sign": "…"}`` whose ``sign`` covers the exact text of
the ``<method>_response`` value, verified with Alipay's public key; an answer without a
valid signature is not believed (``ProviderError``).

Mapping onto the provider interface (base.py; Alipay's names → WeChat's):

- amounts: fen here, yuan with two decimals on the wire, converted with integers and
  ``Decimal`` only (``to_yuan``/``to_fen``);
- codes: ``10000`` success; ``10003`` a payment code waiting for the driver (USERPAYING);
  ``40004`` a business refusal (a declined code → PAYERROR with Alipay's words, e.g.
  余额不足; elsewhere ``Refused``); ``20000``, ``ACQ.SYSTEM_ERROR``, HTTP errors and
  timeouts → ``ProviderError`` (the outcome is unknown: query before deciding);
- trade states: ``TRADE_SUCCESS``/``TRADE_FINISHED`` → SUCCESS; ``WAIT_BUYER_PAY`` →
  USERPAYING (the trade exists because the driver scanned our QR or showed a code, and
  is confirming it on the phone); ``ACQ.TRADE_NOT_EXIST`` → NOTPAY (a precreated QR
  nobody has scanned yet does not exist at Alipay); ``TRADE_CLOSED`` → CLOSED (Alipay
  also reports a cancelled or fully refunded trade as closed: our own order tells these
  apart).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import ssl
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, TypedDict
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured

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

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
"""Alipay's clock: request timestamps, notify_time, gmt_payment and bill times."""
DEFAULT_GATEWAY: Final = "https://openapi.alipay.com/gateway.do"
TIMEOUT: Final = httpx.Timeout(5.0)
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

NOTIFY_MAX_AGE: Final = timedelta(hours=26)
"""How old a notification's ``notify_time`` may be.

Alipay resends an unanswered notification 8 times over about 25 hours (after 4 m, 10 m,
10 m, 1 h, 2 h, 6 h, 15 h: 24 h 26 m in all). A window of 26 h accepts the last resend
even if its ``notify_time`` were the first attempt's, plus an hour for slow delivery and
clock skew; anything older is a replay, not Alipay. (A replay inside the window changes
nothing either: the order's verdict treats a second copy of a payment as a duplicate.)
"""
NOTIFY_MAX_AHEAD: Final = timedelta(minutes=10)
"""How far in the future a ``notify_time`` may be (clock skew between Alipay and us)."""

CANCEL_ATTEMPTS: Final = 4
"""alipay.trade.cancel is tried this often while Alipay answers ``retry_flag=Y``."""

# Alipay's public codes (https://opendocs.alipay.com/common/02km9f).
SUCCESS_CODE: Final = "10000"
PAYING_CODE: Final = "10003"
UNAVAILABLE_CODE: Final = "20000"
BUSINESS_FAILURE_CODE: Final = "40004"
_UNKNOWN_OUTCOME_SUB_CODES: Final = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"})
_NOT_EXIST: Final = "ACQ.TRADE_NOT_EXIST"

_STATES: Final[dict[str, TradeState]] = {
    "WAIT_BUYER_PAY": TradeState.USERPAYING,
    "TRADE_SUCCESS": TradeState.SUCCESS,
    "TRADE_FINISHED": TradeState.SUCCESS,
    "TRADE_CLOSED": TradeState.CLOSED,
}
_YUAN: Final = re.compile(r"-?\d{1,12}(\.\d{1,2})?")
_APP_ID: Final = re.compile(r"\d{8,32}")
_SELLER_ID: Final = re.compile(r"2088\d{12}")
_CHARSETS: Final[dict[str, str]] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
}


# --- money -------------------------------------------------------------------------------


def to_yuan(fen: int) -> str:
    """``fen`` as Alipay's amount: yuan with two decimals (``1`` → ``"0.01"``)."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError(f"an amount in fen must be a non-negative integer, not {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def to_fen(yuan: str) -> int:
    """Alipay's amount in yuan (``"1234.5"``, ``"20"``, ``"-5.00"``) as integer fen."""
    text = yuan.strip()
    if not _YUAN.fullmatch(text):
        raise ValueError(f"not an amount in yuan: {yuan!r}")
    try:
        value = Decimal(text) * 100
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes these
        raise ValueError(f"not an amount in yuan: {yuan!r}") from exc
    return int(value.to_integral_exact())


# --- signatures ----------------------------------------------------------------------------


def sign_content(params: Mapping[str, str]) -> str:
    """What a request's ``sign`` covers: ``k=v`` of the non-empty parameters but ``sign``, sorted.

    (Alipay's SDKs build it so, ``getSignContent``; ``sign_type`` is included.)
    """
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k])


def notification_sign_content(form: Mapping[str, str]) -> str:
    """What a notification's ``sign`` covers: every field but ``sign`` and ``sign_type``, sorted.

    Empty fields are kept (Alipay's SDKs, ``getSignCheckContentV1``), unlike a request's.
    """
    return "&".join(f"{k}={form[k]}" for k in sorted(form) if k not in ("sign", "sign_type"))


def rsa2_sign(key: rsa.RSAPrivateKey, content: str) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``content`` (UTF-8), base64."""
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``key``'s RSA2 signature of ``content`` (UTF-8)."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _pem(text: str, label: str) -> bytes:
    """``text`` as PEM: Alipay's key tool writes bare base64, which is wrapped here."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode("ascii")
    body = "".join(text.split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode("ascii")


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#8 or PKCS#1) or Alipay's bare base64 PKCS#8."""
    errors: list[str] = []
    for label in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(_pem(text, label), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            errors.append(str(exc))
            continue
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key (RSA2 needs RSA)")
        if key.key_size < 2048:
            raise ValueError(f"an RSA key of {key.key_size} bits (RSA2 needs 2048)")
        return key
    raise ValueError("not a PEM RSA private key")


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or Alipay's bare base64 (``SubjectPublicKeyInfo``)."""
    try:
        key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError("not a PEM RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key (RSA2 needs RSA)")
    return key


# --- wire models --------------------------------------------------------------------------


class PrecreateBiz(TypedDict):
    """biz_content of alipay.trade.precreate."""

    out_trade_no: str
    total_amount: str
    subject: str
    time_expire: str


class PayBiz(TypedDict):
    """biz_content of alipay.trade.pay (a payment code shown to the scanner)."""

    out_trade_no: str
    scene: str
    auth_code: str
    product_code: str
    subject: str
    total_amount: str


class TradeBiz(TypedDict):
    """biz_content of alipay.trade.query, .close and .cancel."""

    out_trade_no: str


class RefundBiz(TypedDict):
    """biz_content of alipay.trade.refund."""

    out_trade_no: str
    refund_amount: str
    out_request_no: str
    refund_reason: str


class RefundQueryBiz(TypedDict):
    """biz_content of alipay.trade.fastpay.refund.query."""

    out_trade_no: str
    out_request_no: str


class BillBiz(TypedDict):
    """biz_content of alipay.data.dataservice.bill.downloadurl.query."""

    bill_type: str
    bill_date: str


@dataclass(frozen=True, slots=True)
class GatewayReply:
    """A verified answer of the gateway: its code, and the ``<method>_response`` fields."""

    code: str
    msg: str
    sub_code: str
    sub_msg: str
    fields: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """Whether Alipay did what was asked (code 10000)."""
        return self.code == SUCCESS_CODE

    def text(self, name: str) -> str:
        """A string field of the answer ("" when absent)."""
        value = self.fields.get(name, "")
        return value if isinstance(value, str) else str(value)

    def words(self) -> str:
        """Alipay's own words for a failure, for logs and the back office."""
        return self.sub_msg or self.msg or self.code

    def describe(self) -> str:
        """The whole failure in one line: code, sub-code and words."""
        return f"{self.code} {self.sub_code or '-'}: {self.words()}"


def response_key(method: str) -> str:
    """The JSON key of a method's answer: ``alipay.trade.pay`` → ``alipay_trade_pay_response``."""
    return method.replace(".", "_") + "_response"


def signed_text(document: str, key: str) -> str | None:
    """The exact JSON text of the top-level ``key``'s value in ``document`` (what Alipay signs)."""
    marker = json.dumps(key)
    at = document.find(marker)
    if at < 0:
        return None
    at += len(marker)
    while at < len(document) and document[at] in " \t\r\n":
        at += 1
    if at >= len(document) or document[at] != ":":
        return None
    at += 1
    while at < len(document) and document[at] in " \t\r\n":
        at += 1
    try:
        _, end = json.JSONDecoder().raw_decode(document, at)
    except ValueError:
        return None
    return document[at:end]


def _local(text: str, what: str) -> datetime:
    """A ``yyyy-MM-dd HH:mm:ss`` time of Alipay's (Asia/Shanghai) as an aware datetime."""
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError as exc:
        raise ValueError(f"{what} is not a time: {text!r}") from exc


def _wire_time(at: datetime) -> str:
    """An aware datetime as Alipay writes times (Asia/Shanghai)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times sent to Alipay must be aware")
    return at.astimezone(SHANGHAI).strftime(TIME_FORMAT)


# --- the provider ------------------------------------------------------------------------


class Alipay:
    """The Alipay provider: the ``Provider`` protocol over Alipay's openapi gateway."""

    name = "alipay"
    channel = "alipay"

    def __init__(
        self,
        *,
        app_id: str,
        private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        seller_id: str,
        gateway: str = DEFAULT_GATEWAY,
        notify_url: str = "",
        clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
        retry_pause: float = 1.0,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.gateway = gateway
        self.notify_url = notify_url
        self._private_key = private_key
        self._alipay_key = alipay_public_key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._transport = transport
        self._retry_pause = retry_pause
        self._tls: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"Alipay(app_id={self.app_id!r}, gateway={self.gateway!r})"

    # -- the wire --

    def _client(self) -> httpx.Client:
        """A client for one call (the TLS context, costly to make, is made once)."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return httpx.Client(
            timeout=TIMEOUT, transport=self._transport, verify=self._tls, follow_redirects=False
        )

    def request_params(
        self, method: str, biz: Mapping[str, Any], notify_url: str = ""
    ) -> dict[str, str]:
        """The signed form of one call (common parameters, ``biz_content`` and ``sign``)."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": _wire_time(self._clock()),
            "version": "1.0",
            "notify_url": notify_url,
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params = {k: v for k, v in params.items() if v}
        params["sign"] = rsa2_sign(self._private_key, sign_content(params))
        return params

    def call(self, method: str, biz: Mapping[str, Any], notify_url: str = "") -> GatewayReply:
        """One gateway call, its answer verified; ``ProviderError`` if unreachable or unsigned."""
        params = self.request_params(method, biz, notify_url)
        try:
            with self._client() as client:
                response = client.post(
                    self.gateway,
                    data=params,
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise ProviderError(f"Alipay {method}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"Alipay {method}: HTTP {response.status_code}")
        return self._verified(method, response.content)

    def _verified(self, method: str, raw: bytes) -> GatewayReply:
        try:
            document = raw.decode("utf-8")
            parsed = json.loads(document)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProviderError(f"Alipay {method}: the answer is not JSON") from exc
        if not isinstance(parsed, dict):
            raise ProviderError(f"Alipay {method}: the answer is not a JSON object")
        key = response_key(method)
        if key not in parsed:
            key = "error_response"
        body = parsed.get(key)
        if not isinstance(body, dict):
            raise ProviderError(f"Alipay {method}: the answer has no {response_key(method)}")
        code = str(body.get("code", ""))
        what = f"{code} {body.get('sub_code', '-')}: {body.get('sub_msg') or body.get('msg', '')}"
        signature = parsed.get("sign")
        if not isinstance(signature, str) or not signature:
            raise ProviderError(f"Alipay {method}: unsigned answer refused ({what})")
        text = signed_text(document, key)
        if text is None or json.loads(text) != body:
            raise ProviderError(f"Alipay {method}: cannot find the signed text of the answer")
        if not rsa2_verify(self._alipay_key, text, signature) and not (
            "\\/" in text and rsa2_verify(self._alipay_key, text.replace("\\/", "/"), signature)
        ):  # Alipay's SDKs also accept a signature over the text with "\/" unescaped
            raise ProviderError(f"Alipay {method}: badly signed answer refused ({what})")
        return GatewayReply(
            code=code,
            msg=str(body.get("msg", "")),
            sub_code=str(body.get("sub_code", "")),
            sub_msg=str(body.get("sub_msg", "")),
            fields=body,
        )

    def _must(self, method: str, reply: GatewayReply) -> GatewayReply:
        """``reply`` if it succeeded; else ``ProviderError`` (unknown outcome) or ``Refused``."""
        if reply.ok:
            return reply
        if reply.code == BUSINESS_FAILURE_CODE and reply.sub_code not in _UNKNOWN_OUTCOME_SUB_CODES:
            raise Refused(f"Alipay {method}: {reply.describe()}")
        if reply.code.startswith("4") and reply.code != BUSINESS_FAILURE_CODE:
            raise Refused(f"Alipay {method}: {reply.describe()}")
        raise ProviderError(f"Alipay {method}: {reply.describe()}")

    # -- reading answers --

    def _trade(self, out_trade_no: str, reply: GatewayReply, state: TradeState) -> TradeResult:
        named = reply.text("out_trade_no")
        if named and named != out_trade_no:  # a signed answer, but about another trade
            raise ProviderError(f"Alipay: asked about {out_trade_no}, answered about {named}")
        amount = reply.text("total_amount")
        paid = reply.text("gmt_payment") or reply.text("send_pay_date")
        try:
            return TradeResult(
                out_trade_no=out_trade_no,
                state=state,
                transaction_id=reply.text("trade_no"),
                amount=to_fen(amount) if amount else None,
                paid_at=_local(paid, "gmt_payment") if paid else None,
                payer=reply.text("buyer_user_id") or reply.text("buyer_open_id"),
            )
        except ValueError as exc:
            raise ProviderError(f"Alipay: a malformed trade in the answer: {exc}") from exc

    # -- the Provider protocol --

    def page_payment(self, charge: Charge, *, payer: str = "", return_url: str = "") -> PagePayment:
        """A QR URL for ``charge`` (alipay.trade.precreate); a phone opening it starts Alipay."""
        biz: PrecreateBiz = {
            "out_trade_no": charge.out_trade_no,
            "total_amount": to_yuan(charge.amount),
            "subject": charge.description[:256],
            "time_expire": _wire_time(charge.expires_at),
        }
        method = "alipay.trade.precreate"
        reply = self._must(method, self.call(method, biz, charge.notify_url or self.notify_url))
        url = reply.text("qr_code")
        if not url:
            raise ProviderError(f"Alipay {method}: the answer has no qr_code")
        return PagePayment(kind="redirect", url=url)

    def codepay(self, charge: Charge, auth_code: str) -> TradeResult:
        """Charge a payment code (alipay.trade.pay, scene bar_code)."""
        biz: PayBiz = {
            "out_trade_no": charge.out_trade_no,
            "scene": "bar_code",
            "auth_code": auth_code,
            "product_code": "FACE_TO_FACE_PAYMENT",
            "subject": charge.description[:256],
            "total_amount": to_yuan(charge.amount),
        }
        method = "alipay.trade.pay"
        reply = self.call(method, biz, charge.notify_url or self.notify_url)
        if reply.ok:
            return self._trade(charge.out_trade_no, reply, TradeState.SUCCESS)
        if reply.code == PAYING_CODE:
            return self._trade(charge.out_trade_no, reply, TradeState.USERPAYING)
        if reply.code == BUSINESS_FAILURE_CODE:
            if reply.sub_code in _UNKNOWN_OUTCOME_SUB_CODES:
                raise ProviderError(f"Alipay {method}: {reply.describe()}")
            if reply.sub_code == "ACQ.TRADE_HAS_SUCCESS":
                return self.query(charge.out_trade_no)
            return TradeResult(
                out_trade_no=charge.out_trade_no,
                state=TradeState.PAYERROR,
                detail=reply.words(),
            )
        self._must(method, reply)
        raise AssertionError("unreachable")  # pragma: no cover

    def query(self, out_trade_no: str) -> TradeResult:
        """The trade's state now (alipay.trade.query)."""
        biz: TradeBiz = {"out_trade_no": out_trade_no}
        method = "alipay.trade.query"
        reply = self.call(method, biz)
        if reply.code == BUSINESS_FAILURE_CODE and reply.sub_code == _NOT_EXIST:
            return TradeResult(out_trade_no=out_trade_no, state=TradeState.NOTPAY)
        self._must(method, reply)
        status = reply.text("trade_status")
        state = _STATES.get(status)
        if state is None:
            raise ProviderError(f"Alipay {method}: unknown trade_status {status!r}")
        return self._trade(out_trade_no, reply, state)

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade (alipay.trade.close).

        A QR nobody scanned has no trade at Alipay yet (``ACQ.TRADE_NOT_EXIST``): that is
        taken as closed, since precreate set the QR's ``time_expire`` to the order's expiry.
        """
        biz: TradeBiz = {"out_trade_no": out_trade_no}
        method = "alipay.trade.close"
        reply = self.call(method, biz)
        if reply.code == BUSINESS_FAILURE_CODE and reply.sub_code == _NOT_EXIST:
            return
        self._must(method, reply)

    def reverse(self, out_trade_no: str) -> None:
        """Cancel a code payment (alipay.trade.cancel), retried while Alipay says retry_flag Y."""
        biz: TradeBiz = {"out_trade_no": out_trade_no}
        method = "alipay.trade.cancel"
        reply: GatewayReply | None = None
        for attempt in range(CANCEL_ATTEMPTS):
            if attempt:
                time.sleep(self._retry_pause)
            try:
                reply = self.call(method, biz)
            except ProviderError:
                if attempt + 1 == CANCEL_ATTEMPTS:
                    raise
                continue
            if reply.ok:
                return
            if reply.code == BUSINESS_FAILURE_CODE and reply.sub_code == _NOT_EXIST:
                return
            if reply.text("retry_flag") != "Y" and reply.code != UNAVAILABLE_CODE:
                self._must(method, reply)
        assert reply is not None
        raise ProviderError(
            f"Alipay {method}: still asks to retry after {CANCEL_ATTEMPTS} attempts "
            f"({reply.describe()})"
        )

    def refund(
        self, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str
    ) -> RefundResult:
        """Give back ``amount`` fen (alipay.trade.refund; out_request_no is ``out_refund_no``)."""
        if amount <= 0 or amount > total:
            raise Refused(f"a refund of {amount} fen of a payment of {total} fen")
        biz: RefundBiz = {
            "out_trade_no": out_trade_no,
            "refund_amount": to_yuan(amount),
            "out_request_no": out_refund_no,
            "refund_reason": reason[:256],
        }
        method = "alipay.trade.refund"
        reply = self._must(method, self.call(method, biz))
        trade_no = reply.text("trade_no")
        if reply.text("fund_change") == "Y":
            return RefundResult(out_refund_no=out_refund_no, succeeded=True, refund_id=trade_no)
        # fund_change N: a repeated request, or still in progress; Alipay says to ask.
        query: RefundQueryBiz = {"out_trade_no": out_trade_no, "out_request_no": out_refund_no}
        method = "alipay.trade.fastpay.refund.query"
        answer = self._must(method, self.call(method, query))
        done = answer.text("refund_status") == "REFUND_SUCCESS"
        return RefundResult(
            out_refund_no=out_refund_no,
            succeeded=done,
            refund_id=trade_no or answer.text("trade_no"),
            detail="" if done else "Alipay has not confirmed the refund yet",
        )

    def bill(self, day: date) -> list[BillLine]:
        """``day``'s trades from Alipay's trade bill (a zip of GBK CSV files)."""
        biz: BillBiz = {"bill_type": "trade", "bill_date": day.isoformat()}
        method = "alipay.data.dataservice.bill.downloadurl.query"
        reply = self.call(method, biz)
        if reply.code == BUSINESS_FAILURE_CODE and reply.sub_code == "isp.bill_not_exist":
            return []  # Alipay makes no bill for a day without trades
        self._must(method, reply)
        url = reply.text("bill_download_url")
        if not url:
            raise ProviderError(f"Alipay {method}: the answer has no bill_download_url")
        try:
            with self._client() as client:
                response = client.get(url, follow_redirects=True)  # on to Alipay's storage
        except httpx.HTTPError as exc:
            raise ProviderError(f"Alipay bill download: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"Alipay bill download: HTTP {response.status_code}")
        try:
            return parse_bill_zip(response.content)
        except ValueError as exc:
            raise ProviderError(f"Alipay bill: {exc}") from exc

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeResult:
        """Verify and read Alipay's asynchronous notification (a signed form POST)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime")
        form = _notification_form(headers, body)
        signature = form.get("sign", "")
        if not signature:
            raise NotificationRejected("no sign")
        if form.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected(f"sign_type {form.get('sign_type')!r} is not RSA2")
        content = notification_sign_content(form)
        if not rsa2_verify(self._alipay_key, content, signature):
            raise NotificationRejected("bad signature")
        if form.get("app_id") != self.app_id:
            raise NotificationRejected(f"app_id {form.get('app_id')!r} is not ours")
        if form.get("seller_id") != self.seller_id:
            raise NotificationRejected(f"seller_id {form.get('seller_id')!r} is not ours")
        for name in ("notify_time", "out_trade_no", "trade_no", "trade_status", "total_amount"):
            if not form.get(name):
                raise NotificationRejected(f"no {name}")
        try:
            sent = _local(form["notify_time"], "notify_time")
            amount = to_fen(form["total_amount"])
            paid_at = (
                _local(form["gmt_payment"], "gmt_payment") if form.get("gmt_payment") else None
            )
            refunded = to_fen(form["refund_fee"]) if form.get("refund_fee") else 0
        except ValueError as exc:
            raise NotificationRejected(f"malformed: {exc}") from exc
        if now - sent > NOTIFY_MAX_AGE:
            raise NotificationRejected(f"stale: notify_time {form['notify_time']} is too old")
        if sent - now > NOTIFY_MAX_AHEAD:
            raise NotificationRejected(f"notify_time {form['notify_time']} is in the future")
        state = _STATES.get(form["trade_status"])
        if state is None:
            raise NotificationRejected(f"unknown trade_status {form['trade_status']!r}")
        if refunded > 0:
            state = TradeState.REFUND  # a refund's notification, not a payment
        return TradeResult(
            out_trade_no=form["out_trade_no"],
            state=state,
            transaction_id=form["trade_no"],
            amount=amount,
            paid_at=paid_at,
            payer=form.get("buyer_id") or form.get("buyer_open_id", ""),
        )

    def notification_reply(self, ok: bool) -> Reply:
        """``success`` stops Alipay's resending; anything else (``fail``) asks for it again."""
        return Reply(200, b"success" if ok else b"fail", "text/plain")


def _notification_form(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """The notification's fields, decoded in the charset it names; ``NotificationRejected``."""
    if not body:
        raise NotificationRejected("malformed: empty body")
    try:
        text = body.decode("ascii")
        raw = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="latin-1")
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected("malformed: not a urlencoded form") from exc
    names = [name for name, _ in raw]
    if len(set(names)) != len(names):
        raise NotificationRejected("malformed: a field given twice")
    declared = dict(raw).get("charset", "")
    if not declared:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        found = re.search(r"charset=([\w-]+)", content_type, re.IGNORECASE)
        declared = found.group(1) if found else "utf-8"
    encoding = _CHARSETS.get(declared.strip().lower())
    if encoding is None:
        raise NotificationRejected(f"malformed: unknown charset {declared!r}")
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, encoding=encoding, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected(f"malformed: not {declared} text") from exc
    return dict(pairs)


# --- the bill -----------------------------------------------------------------------------

_BILL_TYPES: Final[dict[str, TradeState]] = {"交易": TradeState.SUCCESS, "退款": TradeState.REFUND}


def _column(header: list[str], *names: str) -> int:
    plain = [re.sub(r"[（(]元[）)]", "", cell).strip() for cell in header]
    for name in names:
        if name in plain:
            return plain.index(name)
    raise ValueError(f"the bill has no column {names[0]}")


def parse_bill_csv(data: bytes) -> list[BillLine]:
    """Alipay's detail bill (业务明细, GBK CSV with ``#`` header and summary lines) as lines.

    A 交易 row is a payment (SUCCESS, its 订单金额); a 退款 row a refund of that trade
    (REFUND, with the trade's 订单金额 as the amount charged). Cells are stripped: Alipay
    pads them with tabs so that spreadsheets keep long numbers as text.
    """
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ValueError("the bill is not GBK text") from exc
    rows = [
        [cell.strip() for cell in row]
        for row in csv.reader(io.StringIO(text))
        if row and not row[0].lstrip().startswith("#") and any(cell.strip() for cell in row)
    ]
    if not rows:
        raise ValueError("the bill has no header line")
    header, *body = rows
    trade_no = _column(header, "支付宝交易号")
    out_trade_no = _column(header, "商户订单号")
    kind = _column(header, "业务类型")
    finished = _column(header, "完成时间")
    amount = _column(header, "订单金额")
    lines: list[BillLine] = []
    for number, row in enumerate(body, start=2):
        if len(row) < len(header):
            raise ValueError(f"bill row {number} has {len(row)} cells, not {len(header)}")
        state = _BILL_TYPES.get(row[kind])
        if state is None:
            continue
        lines.append(
            BillLine(
                out_trade_no=row[out_trade_no],
                transaction_id=row[trade_no],
                amount=abs(to_fen(row[amount])),
                state=state,
                at=_local(row[finished], "完成时间"),
            )
        )
    return lines


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's name: Alipay writes GBK names without zip's UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def parse_bill_zip(data: bytes) -> list[BillLine]:
    """The detail file's lines from Alipay's bill zip (the 汇总 summary file is skipped)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError("the bill download is not a zip") from exc
    with archive:
        for info in archive.infolist():
            name = _zip_name(info)
            if not name.lower().endswith(".csv") or "汇总" in name:
                continue
            content = archive.read(info)
            if "支付宝交易号".encode("gb18030") in content:
                return parse_bill_csv(content)
    raise ValueError("the bill zip has no detail (业务明细) file")


# --- configuration ------------------------------------------------------------------------


def _read(env: Mapping[str, str], name: str) -> str:
    path = env.get(name, "").strip()
    if not path:
        raise ImproperlyConfigured(f"{name} is not set (needed with EPPARK_ALIPAY_APP_ID)")
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {exc}") from exc


def from_environ(env: Mapping[str, str]) -> Alipay | None:
    """The Alipay provider configured by ``EPPARK_ALIPAY_*``; None if ``…_APP_ID`` is unset.

    ``ImproperlyConfigured`` names the variable that is missing or wrong.
    """
    app_id = env.get("EPPARK_ALIPAY_APP_ID", "").strip()
    if not app_id:
        return None
    if not _APP_ID.fullmatch(app_id):
        raise ImproperlyConfigured(f"EPPARK_ALIPAY_APP_ID {app_id!r} is not an Alipay app id")
    try:
        private_key = load_private_key(_read(env, "EPPARK_ALIPAY_PRIVATE_KEY_FILE"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"EPPARK_ALIPAY_PRIVATE_KEY_FILE: {exc}") from exc
    try:
        public_key = load_public_key(_read(env, "EPPARK_ALIPAY_PUBLIC_KEY_FILE"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"EPPARK_ALIPAY_PUBLIC_KEY_FILE: {exc}") from exc
    seller_id = env.get("EPPARK_ALIPAY_SELLER_ID", "").strip()
    if not _SELLER_ID.fullmatch(seller_id):
        raise ImproperlyConfigured(
            "EPPARK_ALIPAY_SELLER_ID must be the merchant's PID (16 digits starting 2088)"
        )
    gateway = env.get("EPPARK_ALIPAY_GATEWAY", "").strip() or DEFAULT_GATEWAY
    parts = urlsplit(gateway)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise ImproperlyConfigured(
            f"EPPARK_ALIPAY_GATEWAY {gateway!r} must be an https URL (http only for localhost)"
        )
    return Alipay(
        app_id=app_id,
        private_key=private_key,
        alipay_public_key=public_key,
        seller_id=seller_id,
        gateway=gateway,
    )
