"""A local stand-in of Alipay's openapi gateway, speaking its signed wire format over HTTP.

It serves ``POST /gateway.do`` like ``openapi.alipay.com``: it verifies each request's
RSA2 signature with the app's public key (a bad one is refused with code 40002
``isv.invalid-signature``, as Alipay does), keeps trades in memory, and answers
``{"<method>_response": {…}, "sign": "…"}`` signed with its own "Alipay" key. Methods:
``alipay.trade.precreate``, ``.pay``, ``.query``, ``.close``, ``.cancel``, ``.refund``,
``.fastpay.refund.query`` and ``alipay.data.dataservice.bill.downloadurl.query``, whose
URL serves a zip of GBK CSV files shaped like Alipay's trade bill (业务明细 and 汇总).
``notify()`` posts a signed notification form to a notify_url (optionally twice), and
``pay_qr()`` plays a driver who scanned a precreated QR and paid.

A payment code's last digit picks what happens, like the sandbox (contracts.md):
``1`` waits for the driver (10003 / WAIT_BUYER_PAY) and succeeds ``confirm_after`` seconds
later by the stand-in's clock; ``2`` is declined (40004, 余额不足); ``3`` answers 20000
(service unavailable) although the trade was paid (a query finds TRADE_SUCCESS); any other
digit pays at once. ``down = True`` answers every call with HTTP 503;
``cancel_failures = n`` makes the next n cancels ask to be retried (``retry_flag=Y``);
``unsigned`` and ``tamper`` spoil the answers' signatures; ``escape_slashes`` writes ``/``
as ``\\/`` in answers signed unescaped (as Alipay sometimes does); ``rewrite_answer``
changes an answer's fields before it is signed (a signed answer about something else).

Keys are made at run time (``new_rsa_key``); no private key is ever committed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from eppark.payments.providers.alipay import (
    SHANGHAI,
    TIME_FORMAT,
    notification_sign_content,
    response_key,
    rsa2_sign,
    rsa2_verify,
    sign_content,
    to_fen,
    to_yuan,
)
from eppark.sim.standin import QuietHandler, StandInServer

_AUTH_CODE: Final = re.compile(r"(2[5-9]|30)\d{14,22}")
_AMOUNT: Final = re.compile(r"\d{1,9}(\.\d{1,2})?")


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (RSA2), made at run time."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """``key`` as PKCS#8 PEM (what ``EPPARK_ALIPAY_PRIVATE_KEY_FILE`` holds)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The public half of ``key`` as PEM (what ``EPPARK_ALIPAY_PUBLIC_KEY_FILE`` holds)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass
class SimTrade:
    """One trade as the stand-in keeps it."""

    out_trade_no: str
    total: int  # fen
    subject: str
    notify_url: str
    status: str  # PRECREATED (a QR nobody scanned), WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED
    trade_no: str = ""
    buyer_id: str = ""
    paid_at: datetime | None = None
    succeed_at: datetime | None = None  # a WAIT_BUYER_PAY code payment turns paid then
    expires_at: datetime | None = None
    qr_code: str = ""
    refunded: int = 0
    refunds: dict[str, tuple[int, datetime]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one gateway call answers: the method's fields (with code and msg)."""

    fields: dict[str, Any]


def _ok(**fields: Any) -> _Answer:
    return _Answer({"code": "10000", "msg": "Success", **fields})


def _fail(code: str, msg: str, sub_code: str, sub_msg: str, **fields: Any) -> _Answer:
    return _Answer({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, **fields})


def _not_exist() -> _Answer:
    return _fail("40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")


class AlipayStandIn(StandInServer):
    """The stand-in gateway: ``start()`` serves it on 127.0.0.1 (port 0: a free one)."""

    NAME = "alipay-standin"

    def __init__(
        self,
        *,
        app_id: str,
        app_public_key: rsa.RSAPublicKey,
        seller_id: str,
        alipay_key: rsa.RSAPrivateKey | None = None,
        port: int = 0,
        confirm_after: float = 3.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(port)
        self.app_id = app_id
        self.seller_id = seller_id
        self.alipay_key = alipay_key or new_rsa_key()
        self.confirm_after = timedelta(seconds=confirm_after)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.down = False
        self.unsigned = False
        self.tamper = False
        self.escape_slashes = False
        self.rewrite_answer: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        self.cancel_failures = 0
        self.trades: dict[str, SimTrade] = {}
        self.calls: list[str] = []  # the methods called, in order
        self._app_key = app_public_key
        self._lock = threading.Lock()
        self._bills: dict[str, date] = {}
        self._sequence = 0

    @property
    def gateway(self) -> str:
        """The gateway URL (``EPPARK_ALIPAY_GATEWAY``)."""
        return f"{self.base_url}/gateway.do"

    @property
    def public_key_pem(self) -> str:
        """The stand-in's "Alipay public key" (``EPPARK_ALIPAY_PUBLIC_KEY_FILE``)."""
        return public_pem(self.alipay_key)

    # -- the driver's side --

    def _trade_no(self, now: datetime) -> str:
        self._sequence += 1
        noise = secrets.randbelow(10**6)
        return f"{now.astimezone(SHANGHAI):%Y%m%d}2200{self._sequence:06d}{noise:06d}"

    def pay_qr(self, out_trade_no: str, *, buyer_id: str = "2088102177846880") -> SimTrade:
        """A driver scans the precreated QR of ``out_trade_no`` and pays it."""
        now = self.clock()
        with self._lock:
            trade = self.trades[out_trade_no]
            if trade.status not in ("PRECREATED", "WAIT_BUYER_PAY"):
                raise ValueError(f"trade {out_trade_no} is {trade.status}")
            if trade.expires_at is not None and now >= trade.expires_at:
                raise ValueError(f"the QR of {out_trade_no} has expired")
            trade.status = "TRADE_SUCCESS"
            trade.trade_no = trade.trade_no or self._trade_no(now)
            trade.buyer_id = buyer_id
            trade.paid_at = now
            return trade

    # -- notifications --

    def notification_form(self, out_trade_no: str, **overrides: str) -> dict[str, str]:
        """The signed fields of a trade_status_sync notification (``overrides`` before signing)."""
        now = self.clock()
        with self._lock:
            trade = self._settled(self.trades[out_trade_no], now)
            form = {
                "notify_time": now.astimezone(SHANGHAI).strftime(TIME_FORMAT),
                "notify_type": "trade_status_sync",
                "notify_id": secrets.token_hex(17),
                "app_id": self.app_id,
                "charset": "utf-8",
                "version": "1.0",
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_id": trade.buyer_id,
                "buyer_logon_id": "159****5620",
                "seller_id": self.seller_id,
                "seller_email": "parking@example.com",
                "trade_status": "TRADE_SUCCESS"
                if trade.status == "TRADE_SUCCESS"
                else trade.status,
                "total_amount": to_yuan(trade.total),
                "receipt_amount": to_yuan(trade.total),
                "buyer_pay_amount": to_yuan(trade.total),
                "subject": trade.subject,
                "gmt_create": (trade.paid_at or now).astimezone(SHANGHAI).strftime(TIME_FORMAT),
            }
            if trade.paid_at is not None:
                form["gmt_payment"] = trade.paid_at.astimezone(SHANGHAI).strftime(TIME_FORMAT)
        form.update(overrides)
        return self.sign_form(form)

    def sign_form(self, form: Mapping[str, str]) -> dict[str, str]:
        """``form`` with ``sign_type`` and ``sign`` as Alipay adds them to a notification."""
        fields = {k: v for k, v in form.items() if k not in ("sign", "sign_type")}
        signature = rsa2_sign(self.alipay_key, notification_sign_content(fields))
        return {**fields, "sign_type": "RSA2", "sign": signature}

    @staticmethod
    def encode_form(form: Mapping[str, str]) -> bytes:
        """A notification form as Alipay posts it (urlencoded UTF-8)."""
        return urlencode(form, encoding="utf-8").encode("ascii")

    def notify(
        self, out_trade_no: str, *, notify_url: str = "", twice: bool = False
    ) -> list[tuple[int, bytes]]:
        """Post the trade's signed notification (twice if asked); each answer's status and body."""
        url = notify_url or self.trades[out_trade_no].notify_url
        body = self.encode_form(self.notification_form(out_trade_no))
        answers: list[tuple[int, bytes]] = []
        with httpx.Client(timeout=5.0) as client:
            for _ in range(2 if twice else 1):
                response = client.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                )
                answers.append((response.status_code, response.content))
        return answers

    # -- the gateway --

    def _settled(self, trade: SimTrade, now: datetime) -> SimTrade:
        """``trade`` after a driver's confirmation that is due by ``now``."""
        if (
            trade.status == "WAIT_BUYER_PAY"
            and trade.succeed_at is not None
            and now >= trade.succeed_at
        ):
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = trade.succeed_at
        return trade

    def _respond(self, method: str, answer: _Answer) -> bytes:
        key = response_key(method) if method else "error_response"
        fields = answer.fields
        if self.rewrite_answer is not None:
            fields = self.rewrite_answer(method, dict(fields))
        text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        signature = rsa2_sign(self.alipay_key, text)
        if self.tamper and "total_amount" in fields:
            text = text.replace('"total_amount":"', '"total_amount":"1', 1)
        elif self.tamper:
            text = text.replace('"msg":"', '"msg":"x', 1)
        if self.escape_slashes:  # as some of Alipay's answers are written, signed unescaped
            text = text.replace("/", "\\/")
        if self.unsigned:
            return f'{{"{key}":{text}}}'.encode()
        return f'{{"{key}":{text},"sign":"{signature}"}}'.encode()

    def handle_gateway(self, params: dict[str, str]) -> bytes:
        """One gateway call's answer (JSON bytes)."""
        method = params.get("method", "")
        with self._lock:
            self.calls.append(method)
        for name in ("app_id", "method", "charset", "sign_type", "sign", "timestamp", "version"):
            if not params.get(name):
                return self._respond(
                    method,
                    _fail(
                        "40001",
                        "Missing Required Arguments",
                        f"isv.missing-{name}",
                        f"缺少{name}参数",
                    ),
                )
        if params["app_id"] != self.app_id:
            return self._respond(
                method, _fail("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数")
            )
        if params["sign_type"] != "RSA2":
            return self._respond(
                method,
                _fail("40002", "Invalid Arguments", "isv.invalid-signature-type", "无效签名类型"),
            )
        if not rsa2_verify(self._app_key, sign_content(params), params["sign"]):
            return self._respond(
                method,
                _fail(
                    "40002",
                    "Invalid Arguments",
                    "isv.invalid-signature",
                    "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
                ),
            )
        try:
            biz = json.loads(params.get("biz_content", "{}"))
        except ValueError:
            biz = None
        if not isinstance(biz, dict) or not all(isinstance(v, str) for v in biz.values()):
            return self._respond(
                method,
                _fail(
                    "40002", "Invalid Arguments", "isv.invalid-biz-content", "biz_content格式错误"
                ),
            )
        handler = _METHODS.get(method)
        if handler is None:
            return self._respond(
                method, _fail("40002", "Invalid Arguments", "isv.invalid-method", "不存在的方法名")
            )
        with self._lock:
            answer = handler(self, biz, params.get("notify_url", ""), self.clock())
        return self._respond(method, answer)

    def _amount(self, text: str) -> int | None:
        return to_fen(text) if _AMOUNT.fullmatch(text or "") and to_fen(text) > 0 else None

    def _precreate(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        otn = biz.get("out_trade_no", "")
        total = self._amount(biz.get("total_amount", ""))
        if not otn or total is None or not biz.get("subject"):
            return _fail("40004", "Business Failed", "ACQ.INVALID_PARAMETER", "参数无效")
        old = self.trades.get(otn)
        if old is not None:
            if old.status != "PRECREATED" or old.total != total:
                return _fail(
                    "40004",
                    "Business Failed",
                    "ACQ.TRADE_HAS_SUCCESS"
                    if old.status == "TRADE_SUCCESS"
                    else "ACQ.CONTEXT_INCONSISTENT",
                    "交易信息被篡改",
                )
            return _ok(out_trade_no=otn, qr_code=old.qr_code)
        expires = None
        if biz.get("time_expire"):
            expires = datetime.strptime(biz["time_expire"], TIME_FORMAT).replace(tzinfo=SHANGHAI)
        trade = SimTrade(
            out_trade_no=otn,
            total=total,
            subject=biz["subject"],
            notify_url=notify_url,
            status="PRECREATED",
            expires_at=expires,
            qr_code=f"https://qr.alipay.com/bax{secrets.token_hex(12)}",
        )
        self.trades[otn] = trade
        return _ok(out_trade_no=otn, qr_code=trade.qr_code)

    def _pay(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        otn = biz.get("out_trade_no", "")
        total = self._amount(biz.get("total_amount", ""))
        code = biz.get("auth_code", "")
        if not otn or total is None or biz.get("scene") != "bar_code":
            return _fail("40004", "Business Failed", "ACQ.INVALID_PARAMETER", "参数无效")
        old = self.trades.get(otn)
        if old is not None and old.status == "TRADE_SUCCESS":
            return _fail("40004", "Business Failed", "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if old is not None and old.status == "TRADE_CLOSED":
            return _fail("40004", "Business Failed", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if not _AUTH_CODE.fullmatch(code):
            return _fail(
                "40004",
                "Business Failed",
                "ACQ.PAYMENT_AUTH_CODE_INVALID",
                "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
            )
        if code[-1] == "2":
            return _fail("40004", "Business Failed", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "余额不足")
        trade = SimTrade(
            out_trade_no=otn,
            total=total,
            subject=biz.get("subject", ""),
            notify_url=notify_url,
            status="TRADE_SUCCESS",
            trade_no=self._trade_no(now),
            buyer_id="2088" + code[-12:].rjust(12, "0"),
            paid_at=now,
        )
        self.trades[otn] = trade
        fields = {
            "trade_no": trade.trade_no,
            "out_trade_no": otn,
            "buyer_logon_id": "159****5620",
            "total_amount": to_yuan(total),
            "receipt_amount": to_yuan(total),
            "buyer_user_id": trade.buyer_id,
        }
        if code[-1] == "1":
            trade.status = "WAIT_BUYER_PAY"
            trade.paid_at = None
            trade.succeed_at = now + self.confirm_after
            return _Answer({"code": "10003", "msg": " order success pay inprocess", **fields})
        if code[-1] == "3":
            return _fail("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
        return _ok(**fields, gmt_payment=now.astimezone(SHANGHAI).strftime(TIME_FORMAT))

    def _visible(self, biz: dict[str, str], now: datetime) -> SimTrade | None:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None or trade.status == "PRECREATED":
            return None  # a QR nobody scanned is no trade at Alipay yet
        return self._settled(trade, now)

    def _query(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        trade = self._visible(biz, now)
        if trade is None:
            return _not_exist()
        fields: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "159****5620",
            "trade_status": trade.status,
            "total_amount": to_yuan(trade.total),
            "buyer_user_id": trade.buyer_id,
        }
        if trade.paid_at is not None:
            fields["send_pay_date"] = trade.paid_at.astimezone(SHANGHAI).strftime(TIME_FORMAT)
            fields["buyer_pay_amount"] = to_yuan(trade.total)
        return _ok(**fields)

    def _close(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        trade = self._visible(biz, now)
        if trade is None:
            return _not_exist()
        if trade.status != "WAIT_BUYER_PAY":
            return _fail("40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        return _ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no)

    def _cancel(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        if self.cancel_failures > 0:
            self.cancel_failures -= 1
            return _fail("40004", "Business Failed", "ACQ.SYSTEM_ERROR", "系统错误", retry_flag="Y")
        trade = self._visible(biz, now)
        if trade is None:
            return _not_exist()
        action = "close"
        if trade.status == "TRADE_SUCCESS":
            action = "refund"
            trade.refunded = trade.total
        trade.status = "TRADE_CLOSED"
        return _ok(
            trade_no=trade.trade_no, out_trade_no=trade.out_trade_no, retry_flag="N", action=action
        )

    def _refund(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        trade = self._visible(biz, now)
        if trade is None:
            return _not_exist()
        request_no = biz.get("out_request_no") or trade.out_trade_no
        amount = self._amount(biz.get("refund_amount", ""))
        if amount is None:
            return _fail("40004", "Business Failed", "ACQ.INVALID_PARAMETER", "参数无效")
        fields = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "159****5620",
        }
        done = trade.refunds.get(request_no)
        if done is not None:
            return _ok(**fields, fund_change="N", refund_fee=to_yuan(trade.refunded))
        if trade.status != "TRADE_SUCCESS":
            return _fail("40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.refunded + amount > trade.total:
            return _fail(
                "40004", "Business Failed", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"
            )
        trade.refunded += amount
        trade.refunds[request_no] = (amount, now)
        if trade.refunded == trade.total:
            trade.status = "TRADE_CLOSED"
        return _ok(
            **fields,
            fund_change="Y",
            refund_fee=to_yuan(trade.refunded),
            gmt_refund_pay=now.astimezone(SHANGHAI).strftime(TIME_FORMAT),
        )

    def _refund_query(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        trade = self._visible(biz, now)
        if trade is None:
            return _not_exist()
        request_no = biz.get("out_request_no", "")
        done = trade.refunds.get(request_no)
        if done is None:
            return _ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no)
        return _ok(
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            out_request_no=request_no,
            total_amount=to_yuan(trade.total),
            refund_amount=to_yuan(done[0]),
            refund_status="REFUND_SUCCESS",
        )

    def _bill_url(self, biz: dict[str, str], notify_url: str, now: datetime) -> _Answer:
        if biz.get("bill_type") != "trade":
            return _fail(
                "40004", "Business Failed", "isp.bill_type_not_supported", "账单类型不支持"
            )
        try:
            day = date.fromisoformat(biz.get("bill_date", ""))
        except ValueError:
            return _fail("40004", "Business Failed", "isv.invalid-bill_date", "账单日期格式不正确")
        if not self._bill_rows(day):
            return _fail("40004", "Business Failed", "isp.bill_not_exist", "账单不存在")
        token = secrets.token_urlsafe(16)
        self._bills[token] = day
        return _ok(bill_download_url=f"{self.base_url}/downloadBillFile.resource?fileId={token}")

    # -- the bill --

    def _bill_rows(self, day: date) -> list[list[str]]:
        """``day``'s rows of the 业务明细 file: one per payment, one per refund."""
        rows: list[list[str]] = []

        def local(at: datetime) -> str:
            return at.astimezone(SHANGHAI).strftime(TIME_FORMAT)

        def row(trade: SimTrade, kind: str, at: datetime, taken: str, **more: str) -> list[str]:
            cells = {
                "支付宝交易号": trade.trade_no,
                "商户订单号": trade.out_trade_no,
                "业务类型": kind,
                "商品名称": trade.subject,
                "创建时间": local(at),
                "完成时间": local(at),
                "对方账户": "159****5620",
                "订单金额（元）": to_yuan(trade.total),
                "商家实收（元）": taken,
                **more,
            }
            zero = "0.00"
            return [cells.get(name, "" if "元" not in name else zero) for name in BILL_HEADER]

        for trade in self.trades.values():
            if trade.paid_at is not None and trade.paid_at.astimezone(SHANGHAI).date() == day:
                fee = _fee(trade.total, negative=True)
                rows.append(
                    row(trade, "交易", trade.paid_at, to_yuan(trade.total), **{"服务费（元）": fee})
                )
            for request_no, (amount, at) in trade.refunds.items():
                if at.astimezone(SHANGHAI).date() == day:
                    more = {"退款批次号/请求号": request_no}
                    rows.append(row(trade, "退款", at, "-" + to_yuan(amount), **more))
        return rows

    def bill_zip(self, day: date) -> bytes:
        """``day``'s trade bill as Alipay serves it: a zip of the detail and summary CSV (GBK)."""
        with self._lock:
            rows = self._bill_rows(day)
        return bill_zip(self.seller_id, day, rows, self.clock())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if standin.down:
                    self._send(503, b"Service Unavailable", "text/plain")
                    return
                if not self.path.startswith("/gateway.do"):
                    self._send(404, b"not found", "text/plain")
                    return
                query = self.path.partition("?")[2]
                try:
                    params = dict(parse_qsl(query, encoding="utf-8"))
                    params.update(parse_qsl(body.decode("ascii"), encoding="utf-8"))
                except (UnicodeDecodeError, ValueError):
                    self._send(400, b"bad form", "text/plain")
                    return
                answer = standin.handle_gateway(params)
                self._send(200, answer, "application/json;charset=utf-8")

            def do_GET(self) -> None:
                if standin.down:
                    self._send(503, b"Service Unavailable", "text/plain")
                    return
                path, _, query = self.path.partition("?")
                if path == "/downloadBillFile.resource":  # Alipay redirects to its file storage
                    token = dict(parse_qsl(query)).get("fileId", "")
                    self.send_response(302)
                    self.send_header("Location", f"/bill-files/{token}.zip")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = path.removeprefix("/bill-files/").removesuffix(".zip")
                with standin._lock:
                    day = standin._bills.get(token)
                if not path.startswith("/bill-files/") or day is None:
                    self._send(404, b"not found", "text/plain")
                    return
                self._send(200, standin.bill_zip(day), "application/zip")

        return Handler


def _fee(fen: int, *, negative: bool) -> str:
    """Alipay's service fee of a payment (0.6 %, rounded half up), as the bill writes it."""
    fee = int((Decimal(fen) * Decimal("0.006")).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    return ("-" if negative and fee else "") + to_yuan(fee)


BILL_HEADER: Final = [
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号",
    "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）",
    "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）",
    "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）",
    "分润（元）", "备注",
]  # fmt: skip


def bill_csv(seller_id: str, day: date, rows: list[list[str]], made_at: datetime) -> bytes:
    """The 业务明细 CSV of Alipay's trade bill (GBK; cells padded with tabs, as Alipay does)."""
    out = io.StringIO()
    start = f"{day:%Y年%m月%d日} 00:00:00"
    end = f"{day + timedelta(days=1):%Y年%m月%d日} 00:00:00"
    out.write("#支付宝业务明细查询\r\n")
    out.write(f"#账号：[{seller_id}0156]\r\n")
    out.write(f"#起始日期：[{start}]   终止日期：[{end}]\r\n")
    out.write(
        "#-----------------------------------------业务明细列表----------------------------------------\r\n"
    )
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BILL_HEADER)
    for row in rows:
        writer.writerow([cell + "\t" if cell else "" for cell in row])
    payments = sum(1 for row in rows if row[2] == "交易")
    out.write(
        "#-----------------------------------------业务明细列表结束------------------------------------\r\n"
    )
    out.write(f"#交易合计：{payments}笔，退款合计：{len(rows) - payments}笔\r\n")
    out.write(f"#导出时间：[{made_at.astimezone(SHANGHAI):%Y年%m月%d日 %H:%M:%S}]\r\n")
    return out.getvalue().encode("gb18030")


def bill_zip(seller_id: str, day: date, rows: list[list[str]], made_at: datetime) -> bytes:
    """The bill zip: ``<pid>_<yyyymmdd>_业务明细.csv`` and its ``(汇总)`` summary."""
    stem = f"{seller_id}0156_{day:%Y%m%d}"
    payments = [row for row in rows if row[2] == "交易"]
    refunds = [row for row in rows if row[2] == "退款"]
    summary = io.StringIO()
    summary.write("#支付宝业务汇总查询\r\n")
    summary.write(f"#账号：[{seller_id}0156]\r\n")
    summary.write(
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,已收入金额（元）,商家实收（元）\r\n"
    )
    taken = to_yuan(max(sum(to_fen(row[12]) for row in rows), 0))
    summary.write(f"合计,,{len(payments)},{len(refunds)},{taken},{taken}\r\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}_业务明细.csv", bill_csv(seller_id, day, rows, made_at))
        archive.writestr(f"{stem}_业务明细(汇总).csv", summary.getvalue().encode("gb18030"))
    return buffer.getvalue()


_Method = Callable[[AlipayStandIn, dict[str, str], str, datetime], _Answer]
_METHODS: Final[dict[str, _Method]] = {
    "alipay.trade.precreate": AlipayStandIn._precreate,
    "alipay.trade.pay": AlipayStandIn._pay,
    "alipay.trade.query": AlipayStandIn._query,
    "alipay.trade.close": AlipayStandIn._close,
    "alipay.trade.cancel": AlipayStandIn._cancel,
    "alipay.trade.refund": AlipayStandIn._refund,
    "alipay.trade.fastpay.refund.query": AlipayStandIn._refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": AlipayStandIn._bill_url,
}
