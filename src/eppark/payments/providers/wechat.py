"""WeChat Pay APIv3 adapter (直连商户): native, JSAPI, payment codes, query, close, reverse,
refund, the daily trade bill, and payment notifications.

Written on ``cryptography`` and ``httpx`` rather than the ``wechatpayv3`` package, because that
package hard-codes the gateway host (``_gate_way``), so it cannot be pointed at a local stand-in
without patching a private attribute, and it downloads platform certificates when constructed.

Wire format (protocols.md, "WeChat Pay API v3"):

- every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  signature=…,timestamp=…,serial_no=…``: SHA256withRSA with the merchant's key over
  ``METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n``;
- every answer is signed by WeChat Pay (``Wechatpay-Signature/-Timestamp/-Nonce/-Serial`` over
  ``timestamp\\nnonce\\nbody\\n``). A 2xx answer that is unsigned, badly signed or more than five
  minutes off is refused (``ProviderError``): success is only ever believed when signed. An
  error answer is checked when it carries a signature; an unsigned one is read, since believing
  it can only make us refuse or retry (WeChat's SDKs do not check error answers at all). The
  bill file download is the one answer WeChat does not sign: its SHA1 from the signed
  ``tradebill`` answer is checked instead;
- the key that verifies is chosen by ``Wechatpay-Serial``: the WeChat Pay public key's id
  (``PUB_KEY_ID_…``, public-key mode) or a platform certificate's serial (certificate mode;
  certificates are kept as PEM files in a folder, and fetched with ``GET /v3/certificates`` and
  decrypted with the APIv3 key when a serial is unknown);
- notifications carry an AES-256-GCM ``resource`` under the APIv3 key.

Configuration from the environment: ``from_environ`` (docs/payments-wechat.md).
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NotRequired, TypedDict
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.mch.weixin.qq.com"
AUTH_SCHEME: Final = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX: Final = "WECHATPAY/SIGNTEST/"
"""WeChat Pay's deliberately wrong probe signatures start with this; they must be refused."""
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
"""A signed answer or notification more than this far from our clock is refused."""
REFRESH_AT_MOST_EVERY_S: Final = 60.0
"""Platform certificates are fetched again for an unknown serial at most this often."""
TIMEOUT_S: Final = 5.0
CST: Final = ZoneInfo("Asia/Shanghai")
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-*|@]{1,64}")

_DECLINES: Final = frozenset(
    {
        "NOT_ENOUGH",
        "NOTENOUGH",
        "AUTH_CODE_ERROR",
        "AUTH_CODE_INVALID",
        "AUTHCODEEXPIRE",
        "AUTH_CODE_EXPIRE",
        "BUYER_MISMATCH",
        "PAYER_MISMATCH",
        "TRADE_ERROR",
        "RULE_LIMIT",
        "ACCOUNT_ERROR",
        "USER_ACCOUNT_ABNORMAL",
        "PAYERROR",
    }
)
"""Codepay error codes that mean the payer's side declined: the trade is not paid."""
_UNKNOWN_OUTCOME: Final = frozenset(
    {"SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR", "BANKERROR", "FREQUENCY_LIMITED"}
)
"""Error codes after which the trade's fate is unknown (query before deciding)."""


# --- signatures and encryption ------------------------------------------------------------


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``message``, base64 — WeChat Pay's only signature."""
    raw = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``key``'s SHA256withRSA over ``message``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def decrypt(apiv3_key: bytes, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """AEAD_AES_256_GCM as WeChat Pay uses it; ``InvalidTag`` if it was tampered with."""
    try:
        data = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidTag from error
    return AESGCM(apiv3_key).decrypt(
        nonce.encode("utf-8"), data, associated_data.encode("utf-8") or None
    )


def jsapi_pay_sign(
    key: rsa.RSAPrivateKey, app_id: str, time_stamp: str, nonce: str, pkg: str
) -> str:
    """The ``paySign`` of ``getBrandWCPayRequest``."""
    return sign(key, f"{app_id}\n{time_stamp}\n{nonce}\n{pkg}\n")


def certificate_serial(cert: x509.Certificate) -> str:
    """A certificate's serial as WeChat Pay writes it (upper-case hexadecimal)."""
    return f"{cert.serial_number:X}"


def _norm_serial(serial: str) -> str:
    serial = serial.strip()
    if serial.startswith("PUB_KEY_ID_"):
        return serial
    return serial.upper().lstrip("0")


# --- wire models ---------------------------------------------------------------------------


class Amount(TypedDict):
    """``amount`` of an order: fen, CNY."""

    total: int
    currency: str


class StoreInfo(TypedDict):
    """``scene_info.store_info`` of a payment code: the merchant's own store number."""

    out_id: str


class SceneInfo(TypedDict):
    """``scene_info`` of a payment code."""

    store_info: StoreInfo


class Payer(TypedDict, total=False):
    """``payer``: the openid (JSAPI) or the payment code (codepay)."""

    openid: str
    auth_code: str


class OrderRequest(TypedDict):
    """The body of ``/v3/pay/transactions/{native,jsapi,codepay}``."""

    appid: str
    mchid: str
    description: str
    out_trade_no: str
    amount: Amount
    attach: NotRequired[str]
    time_expire: NotRequired[str]  # native and JSAPI
    notify_url: NotRequired[str]  # native and JSAPI
    payer: NotRequired[Payer]  # JSAPI and codepay
    scene_info: NotRequired[SceneInfo]  # codepay


class RefundAmount(TypedDict):
    """``amount`` of a refund: fen, CNY."""

    refund: int
    total: int
    currency: str


class RefundRequest(TypedDict):
    """The body of ``/v3/refund/domestic/refunds``."""

    out_trade_no: str
    out_refund_no: str
    amount: RefundAmount
    reason: NotRequired[str]


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An APIv3 error answer: ``{"code": "…", "message": "…"}``."""

    status: int
    code: str
    message: str

    @classmethod
    def parse(cls, status: int, body: bytes) -> ErrorAnswer:
        """The error in ``body``; its HTTP status as the code when the body says nothing."""
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        code = str(doc.get("code") or f"HTTP_{status}")
        message = str(doc.get("message") or "")
        return cls(status, code, message)

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}" if self.message else self.code


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction as the query answer, codepay answer and notification resource carry it."""

    out_trade_no: str
    trade_state: TradeState
    transaction_id: str = ""
    total: int | None = None
    payer_total: int | None = None
    success_time: datetime | None = None
    openid: str = ""
    trade_state_desc: str = ""
    mchid: str = ""
    appid: str = ""

    @classmethod
    def parse(cls, doc: Any, *, out_trade_no: str = "") -> Transaction:
        """Read a transaction document; ``ValueError`` if it is not one."""
        if not isinstance(doc, dict):
            raise ValueError("a transaction is a JSON object")
        state_text = str(doc.get("trade_state", ""))
        try:
            state = TradeState(state_text)
        except ValueError:
            raise ValueError(f"unknown trade_state {state_text!r}") from None
        amount = doc.get("amount") or {}
        payer = doc.get("payer") or {}
        if not isinstance(amount, dict) or not isinstance(payer, dict):
            raise ValueError("amount and payer are JSON objects")
        total = amount.get("total")
        payer_total = amount.get("payer_total")
        for value in (total, payer_total):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError("amounts are integers (fen)")
        success_time = doc.get("success_time")
        paid_at = datetime.fromisoformat(success_time) if success_time else None
        if paid_at is not None and paid_at.tzinfo is None:
            raise ValueError("success_time has no offset")
        return cls(
            out_trade_no=str(doc.get("out_trade_no") or out_trade_no),
            trade_state=state,
            transaction_id=str(doc.get("transaction_id") or ""),
            total=total,
            payer_total=payer_total,
            success_time=paid_at,
            openid=str(payer.get("openid") or ""),
            trade_state_desc=str(doc.get("trade_state_desc") or ""),
            mchid=str(doc.get("mchid") or ""),
            appid=str(doc.get("appid") or ""),
        )

    def result(self) -> TradeResult:
        """As the provider interface reports it."""
        return TradeResult(
            out_trade_no=self.out_trade_no,
            state=self.trade_state,
            transaction_id=self.transaction_id,
            amount=self.total,
            paid_at=self.success_time,
            payer=self.openid,
            detail=self.trade_state_desc if self.trade_state != TradeState.SUCCESS else "",
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body)
        except ValueError as error:
            raise ProviderError(f"WeChat Pay answered {self.status} with no JSON") from error
        if not isinstance(doc, dict):
            raise ProviderError(f"WeChat Pay answered {self.status} with no JSON object")
        return doc

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> ErrorAnswer:
        return ErrorAnswer.parse(self.status, self.body)


# --- the daily bill ------------------------------------------------------------------------


def _yuan_to_fen(text: str) -> int:
    try:
        value = Decimal(text.strip() or "0") * 100
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number of fen: {text!r}")
    return int(value)


def parse_tradebill(text: str) -> list[BillLine]:
    """WeChat Pay's ``ALL`` trade bill (CSV, every field prefixed with a backtick, a header
    line, then one line per trade or refund, then a summary header and a summary line) as
    bill lines. A refund line's ``amount`` is the refunded amount and its state ``REFUND``.
    ``ValueError`` for a file that is not such a bill.
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lstrip("`") for cell in rows[0]]
    index = {name: i for i, name in enumerate(header)}
    needed = ("交易时间", "微信订单号", "商户订单号", "交易状态")
    missing = [name for name in needed if name not in index]
    if missing:
        raise ValueError(f"not a WeChat Pay trade bill: no {', '.join(missing)} column")
    lines: list[BillLine] = []
    for row in rows[1:]:
        cells = [cell.strip().lstrip("`").strip() for cell in row]
        if cells and cells[0].startswith("总"):  # 总交易单数,…: the summary follows
            break

        def cell(name: str, cells: list[str] = cells) -> str:
            i = index.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        state_text = cell("交易状态")
        try:
            state = TradeState(state_text)
        except ValueError:
            log.warning("WeChat Pay bill: skipping a line in state %r", state_text)
            continue
        if state == TradeState.REFUND:
            amount = _yuan_to_fen(cell("退款金额") or cell("申请退款金额"))
        else:
            amount = _yuan_to_fen(cell("订单金额") or cell("应结订单金额"))
        at = datetime.strptime(cell("交易时间"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        lines.append(
            BillLine(
                out_trade_no=cell("商户订单号"),
                transaction_id=cell("微信订单号"),
                amount=amount,
                state=state,
                at=at,
            )
        )
    return lines


# --- verification keys -----------------------------------------------------------------------


class _Keys:
    """The keys that verify WeChat Pay's signatures, by ``Wechatpay-Serial``."""

    def __init__(
        self,
        public_key: rsa.RSAPublicKey | None,
        public_key_id: str,
        certificates: Iterable[x509.Certificate],
        cert_dir: Path | None,
    ) -> None:
        self.public_key = public_key
        self.public_key_id = public_key_id
        self.cert_dir = cert_dir
        self.lock = threading.Lock()
        self.certs: dict[str, rsa.RSAPublicKey] = {}
        self.last_refresh = float("-inf")
        for cert in certificates:
            self.add(cert)

    @property
    def certificate_mode(self) -> bool:
        return self.cert_dir is not None

    def add(self, cert: x509.Certificate) -> str:
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a platform certificate holds an RSA key")
        serial = _norm_serial(certificate_serial(cert))
        with self.lock:
            self.certs[serial] = key
        return serial

    def get(self, serial: str) -> rsa.RSAPublicKey | None:
        if self.public_key is not None and serial.strip() == self.public_key_id:
            return self.public_key
        with self.lock:
            return self.certs.get(_norm_serial(serial))


def _load_private_key(path: Path, variable: str) -> rsa.RSAPrivateKey:
    data = _read(path, variable)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            f"{variable}: {path} is not an unencrypted PEM private key ({error})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured(f"{variable}: {path} does not hold an RSA key")
    return key


def _load_public_key(path: Path, variable: str) -> rsa.RSAPublicKey:
    data = _read(path, variable)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"{variable}: {path} is not a PEM public key ({error})"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ImproperlyConfigured(f"{variable}: {path} does not hold an RSA key")
    return key


def _load_certificates(folder: Path, variable: str) -> list[x509.Certificate]:
    if not folder.is_dir():
        raise ImproperlyConfigured(f"{variable}: {folder} is not a folder")
    certs: list[x509.Certificate] = []
    for path in sorted(folder.glob("*.pem")):
        try:
            certs.extend(x509.load_pem_x509_certificates(_read(path, variable)))
        except ValueError as error:
            raise ImproperlyConfigured(
                f"{variable}: {path} is not a PEM certificate ({error})"
            ) from None
    return certs


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"{variable}: cannot read {path} ({error.strerror})") from None


# --- the adapter ---------------------------------------------------------------------------


class WechatPay:
    """WeChat Pay APIv3 for one directly connected merchant (``Provider``)."""

    name: str = "wechat"
    channel: str = "wechat"

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: bytes,
        private_key: rsa.RSAPrivateKey,
        cert_serial: str,
        public_key: rsa.RSAPublicKey | None = None,
        public_key_id: str = "",
        certificates: Iterable[x509.Certificate] = (),
        cert_dir: Path | None = None,
        base_url: str = DEFAULT_BASE_URL,
        store_id: str = "eppark",
        timeout: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(apiv3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        if public_key is None and cert_dir is None:
            raise ValueError("give the WeChat Pay public key, or a platform certificate folder")
        if public_key is not None and not public_key_id:
            raise ValueError("the WeChat Pay public key needs its id (PUB_KEY_ID_…)")
        self.mchid = mchid
        self.appid = appid
        self.apiv3_key = apiv3_key
        self.private_key = private_key
        self.cert_serial = cert_serial
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self.timeout = timeout
        self.clock = clock
        self.keys = _Keys(public_key, public_key_id, certificates, cert_dir)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout,
                    headers={"User-Agent": "eppark (WeChat Pay APIv3)"},
                    follow_redirects=False,
                )
            return self._client

    def shutdown(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def authorization(self, method: str, url: str, body: str) -> str:
        """The ``Authorization`` header of a request to ``url`` (absolute or a path)."""
        target = httpx.URL(url).raw_path.decode("ascii")  # exactly what goes on the wire
        timestamp = str(int(self.clock()))
        nonce = secrets.token_hex(16).upper()
        signature = sign(self.private_key, f"{method}\n{target}\n{timestamp}\n{nonce}\n{body}\n")
        return (
            f'{AUTH_SCHEME} mchid="{self.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{self.cert_serial}"'
        )

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> httpx.Response:
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": self.authorization(method, url, text),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return self._http().request(method, url, content=text.encode("utf-8"), headers=headers)
        except httpx.HTTPError as error:
            raise ProviderError(f"WeChat Pay unreachable: {error!r}") from error

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _Answer:
        """One signed API call whose answer's signature has been checked."""
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        response = self._send(method, url, body)
        answer = _Answer(response.status_code, response.content)
        signed = "Wechatpay-Signature" in response.headers
        if answer.ok or signed:
            self._verify_answer(response.headers, answer.body)
        return answer

    def _verify_answer(
        self, headers: httpx.Headers, body: bytes, brought: Mapping[str, Any] | None = None
    ) -> None:
        serial = headers.get("Wechatpay-Serial", "")
        signature = headers.get("Wechatpay-Signature", "")
        timestamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        if not (serial and signature and timestamp and nonce):
            raise ProviderError("WeChat Pay's answer is not signed")
        try:
            skew = abs(self.clock() - int(timestamp))
        except ValueError:
            raise ProviderError("WeChat Pay's answer has a bad timestamp") from None
        if skew > MAX_CLOCK_SKEW.total_seconds():
            raise ProviderError("WeChat Pay's answer is signed too far from our clock")
        if brought is not None:
            key = brought.get(_norm_serial(serial)) or self.keys.get(serial)
        else:
            key = self._key_for(serial)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ProviderError(f"WeChat Pay's answer is signed with an unknown key {serial!r}")
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        if not verify(key, message, signature):
            raise ProviderError("WeChat Pay's answer is badly signed")

    def _key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        key = self.keys.get(serial)
        if key is None and self.keys.certificate_mode:
            now = time.monotonic()
            with self.keys.lock:
                due = now - self.keys.last_refresh >= REFRESH_AT_MOST_EVERY_S
                if due:
                    self.keys.last_refresh = now
            if due:
                try:
                    self.refresh_certificates()
                except (ProviderError, Refused) as error:
                    log.warning("WeChat Pay platform certificates: %s", error)
                key = self.keys.get(serial)
        return key

    def refresh_certificates(self) -> list[str]:
        """Fetch WeChat Pay's platform certificates (``GET /v3/certificates``), decrypt them
        with the APIv3 key, keep them and write them to the certificate folder; their serials.
        """
        if self.keys.cert_dir is None:
            raise Refused("platform certificates are not used in public-key mode")
        url = f"{self.base_url}/v3/certificates"
        response = self._send("GET", url, None)
        if not 200 <= response.status_code < 300:
            raise _fail(_Answer(response.status_code, response.content).error())
        doc = _Answer(response.status_code, response.content).json()
        found: dict[str, x509.Certificate] = {}
        try:
            for item in doc.get("data") or []:
                enc = item["encrypt_certificate"]
                pem = decrypt(
                    self.apiv3_key, enc["nonce"], enc.get("associated_data", ""), enc["ciphertext"]
                )
                cert = x509.load_pem_x509_certificate(pem)
                found[_norm_serial(certificate_serial(cert))] = cert
        except (KeyError, TypeError, ValueError, InvalidTag) as error:
            raise ProviderError(f"WeChat Pay's certificates cannot be read: {error!r}") from None
        # Signed by one of the certificates it brings (they decrypted under our APIv3 key).
        brought = {serial: cert.public_key() for serial, cert in found.items()}
        self._verify_answer(response.headers, response.content, brought)
        for key, cert in found.items():
            self.keys.add(cert)
            self._save_certificate(key, cert)
        return sorted(found)

    def _save_certificate(self, serial: str, cert: x509.Certificate) -> None:
        if self.keys.cert_dir is None:
            return
        path = self.keys.cert_dir / f"wechatpay_{serial}.pem"
        try:
            if not path.exists():
                path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        except OSError as error:
            log.warning("WeChat Pay: cannot keep certificate %s in %s: %s", serial, path, error)

    # -- operations ------------------------------------------------------------------------

    def _order_body(self, charge: Charge, *, codepay: bool = False) -> OrderRequest:
        _check_out_trade_no(charge.out_trade_no)
        if charge.amount <= 0:
            raise Refused("the amount must be positive")
        if charge.expires_at.tzinfo is None:
            raise Refused("expires_at must be an aware datetime")
        body: OrderRequest = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": charge.description[:127],
            "out_trade_no": charge.out_trade_no,
            "amount": {"total": charge.amount, "currency": "CNY"},
        }
        if not codepay:  # a payment code is charged at once and notifies nobody
            body["time_expire"] = charge.expires_at.astimezone(CST).isoformat(timespec="seconds")
            body["notify_url"] = charge.notify_url
        if charge.attach:
            body["attach"] = charge.attach[:128]
        return body

    def page_payment(self, charge: Charge, *, payer: str = "", return_url: str = "") -> PagePayment:
        """JSAPI inside WeChat (``payer`` is the openid), else a native ``code_url``.

        ``return_url`` is not used: WeChat returns to the page that called the JSAPI.
        """
        body = self._order_body(charge)
        if payer:
            body["payer"] = {"openid": payer}
            answer = self._call("POST", "/v3/pay/transactions/jsapi", body=body)
            prepay_id = str(_ok(answer).get("prepay_id") or "")
            if not prepay_id:
                raise ProviderError("WeChat Pay's JSAPI answer has no prepay_id")
            time_stamp = str(int(self.clock()))
            nonce = secrets.token_hex(16)
            package = f"prepay_id={prepay_id}"
            params = {
                "appId": self.appid,
                "timeStamp": time_stamp,
                "nonceStr": nonce,
                "package": package,
                "signType": "RSA",
                "paySign": jsapi_pay_sign(self.private_key, self.appid, time_stamp, nonce, package),
            }
            return PagePayment(kind="jsapi", params=params)
        answer = self._call("POST", "/v3/pay/transactions/native", body=body)
        code_url = str(_ok(answer).get("code_url") or "")
        if not code_url:
            raise ProviderError("WeChat Pay's native answer has no code_url")
        return PagePayment(kind="redirect", url=code_url)

    def codepay(self, charge: Charge, auth_code: str) -> TradeResult:
        """Charge a payment code: SUCCESS, USERPAYING (query later) or PAYERROR (declined)."""
        body = self._order_body(charge, codepay=True)
        body["payer"] = {"auth_code": auth_code.strip()}
        body["scene_info"] = {"store_info": {"out_id": self.store_id}}
        answer = self._call("POST", "/v3/pay/transactions/codepay", body=body)
        otn = charge.out_trade_no
        if answer.ok:
            doc = answer.json()
            if doc.get("trade_state") in (None, "") and answer.status == 202:
                return TradeResult(otn, TradeState.USERPAYING)
            return _transaction(doc, otn).result()
        error = answer.error()
        if error.code == "USERPAYING":
            return TradeResult(otn, TradeState.USERPAYING, detail=error.message)
        if error.code in _DECLINES:
            return TradeResult(otn, TradeState.PAYERROR, detail=error.message or error.code)
        if error.code in ("ORDERPAID", "ORDER_PAID"):  # an earlier attempt went through
            raise ProviderError(f"WeChat Pay: {error}; query it")
        raise _fail(error)

    def query(self, out_trade_no: str) -> TradeResult:
        """The trade's state; an order WeChat Pay never heard of is NOTPAY (detail says so)."""
        _check_out_trade_no(out_trade_no)
        answer = self._call(
            "GET",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}",
            query={"mchid": self.mchid},
        )
        if answer.ok:
            return _transaction(answer.json(), out_trade_no).result()
        error = answer.error()
        if error.code == "ORDER_NOT_EXIST" or error.code == "ORDERNOTEXIST":
            return TradeResult(out_trade_no, TradeState.NOTPAY, detail=str(error))
        raise _fail(error)

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade (204); ``Refused`` if it was paid."""
        _check_out_trade_no(out_trade_no)
        answer = self._call(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            body={"mchid": self.mchid},
        )
        if not answer.ok:
            raise _fail(answer.error())

    def reverse(self, out_trade_no: str) -> None:
        """Cancel a payment-code trade (撤销); money already taken goes back."""
        _check_out_trade_no(out_trade_no)
        answer = self._call(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}/reverse",
            body={"appid": self.appid, "mchid": self.mchid},
        )
        if not answer.ok:
            error = answer.error()
            if error.code == "USERPAYING":
                raise ProviderError(str(error))  # try again: the payer is still confirming
            raise _fail(error)

    def refund(
        self, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str
    ) -> RefundResult:
        """Refund ``amount`` of ``total`` fen; ``succeeded`` False while WeChat processes it."""
        _check_out_trade_no(out_trade_no)
        if not _OUT_REFUND_NO.fullmatch(out_refund_no):
            raise Refused(f"bad out_refund_no {out_refund_no!r}")
        if not 0 < amount <= total:
            raise Refused("a refund is more than 0 and at most the trade's total")
        body: RefundRequest = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "amount": {"refund": amount, "total": total, "currency": "CNY"},
        }
        if reason:
            body["reason"] = reason[:80]
        answer = self._call("POST", "/v3/refund/domestic/refunds", body=body)
        doc = _ok(answer)
        status = str(doc.get("status") or "")
        refund_id = str(doc.get("refund_id") or "")
        if status == "SUCCESS":
            return RefundResult(out_refund_no, True, refund_id=refund_id)
        if status == "PROCESSING":
            return RefundResult(out_refund_no, False, refund_id=refund_id, detail=status)
        if status in ("CLOSED", "ABNORMAL"):
            raise Refused(f"WeChat Pay refund {out_refund_no} is {status}")
        raise ProviderError(f"WeChat Pay's refund answer has an unknown status {status!r}")

    def bill(self, day: date) -> list[BillLine]:
        """The day's trades from WeChat Pay's ``ALL`` trade bill (no bill that day: none)."""
        answer = self._call(
            "GET", "/v3/bill/tradebill", query={"bill_date": day.isoformat(), "bill_type": "ALL"}
        )
        if not answer.ok:
            error = answer.error()
            if error.code == "NO_STATEMENT_EXIST":
                return []
            raise _fail(error)
        doc = answer.json()
        url = str(doc.get("download_url") or "")
        if not url:
            raise ProviderError("WeChat Pay's bill answer has no download_url")
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
            raise ProviderError(f"WeChat Pay's bill is elsewhere than its API: {url}")
        response = self._send("GET", url, None)  # the file itself is not signed: check its hash
        if response.status_code != 200:
            raise _fail(ErrorAnswer.parse(response.status_code, response.content))
        data = response.content
        if not _hash_matches(doc, data) and not (
            data[:2] == b"\x1f\x8b" and _hash_matches(doc, gzip.decompress(data))
        ):
            raise ProviderError("WeChat Pay's bill file does not match its hash")
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            return parse_tradebill(data.decode("utf-8"))
        except ValueError as error:
            raise ProviderError(f"WeChat Pay's bill cannot be read: {error}") from None

    # -- notifications ---------------------------------------------------------------------

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeResult:
        """Verify and decrypt a payment notification; ``NotificationRejected`` with the reason."""
        low = {key.lower(): value for key, value in headers.items()}
        serial = low.get("wechatpay-serial", "").strip()
        signature = low.get("wechatpay-signature", "").strip()
        timestamp = low.get("wechatpay-timestamp", "").strip()
        nonce = low.get("wechatpay-nonce", "").strip()
        if not (serial and signature and timestamp and nonce):
            raise NotificationRejected("not signed: Wechatpay-* headers missing")
        if signature.startswith(SIGNTEST_PREFIX):
            raise NotificationRejected("a WeChat Pay signature probe (WECHATPAY/SIGNTEST/)")
        try:
            sent_at = datetime.fromtimestamp(int(timestamp), UTC)
        except (ValueError, OverflowError, OSError):
            raise NotificationRejected(f"bad timestamp {timestamp!r}") from None
        if now - sent_at > MAX_CLOCK_SKEW:
            raise NotificationRejected(f"stale: signed at {sent_at.isoformat()}")
        if sent_at - now > MAX_CLOCK_SKEW:
            raise NotificationRejected(f"from the future: signed at {sent_at.isoformat()}")
        key = self._key_for(serial)
        if key is None:
            raise NotificationRejected(f"unknown Wechatpay-Serial {serial!r}")
        if not verify(key, f"{timestamp}\n{nonce}\n".encode() + body + b"\n", signature):
            raise NotificationRejected("bad signature")
        try:
            doc = json.loads(body)
            event_type = str(doc.get("event_type") or "")
            resource = doc["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError(f"algorithm {resource.get('algorithm')!r}")
            nonce_r = str(resource["nonce"])
            associated = str(resource.get("associated_data") or "")
            ciphertext = str(resource["ciphertext"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise NotificationRejected(f"malformed body: {error!r}") from None
        if event_type and not event_type.startswith("TRANSACTION."):
            raise NotificationRejected(f"not a payment notification: {event_type}")
        try:
            plain = decrypt(self.apiv3_key, nonce_r, associated, ciphertext)
        except InvalidTag:
            raise NotificationRejected("resource does not decrypt (AES-GCM tag)") from None
        try:
            transaction = Transaction.parse(json.loads(plain))
        except ValueError as error:
            raise NotificationRejected(f"malformed resource: {error}") from None
        if transaction.mchid and transaction.mchid != self.mchid:
            raise NotificationRejected(f"for another merchant {transaction.mchid!r}")
        if transaction.appid and transaction.appid != self.appid:
            raise NotificationRejected(f"for another app {transaction.appid!r}")
        if not transaction.out_trade_no:
            raise NotificationRejected("malformed resource: no out_trade_no")
        return transaction.result()

    def notification_reply(self, ok: bool) -> Reply:
        """204 with no body when accepted; 500 with ``{"code": "FAIL", …}`` to have it resent."""
        if ok:
            return Reply(204, b"", "text/plain")
        body = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False)
        return Reply(500, body.encode("utf-8"))


# --- helpers -------------------------------------------------------------------------------


def _check_out_trade_no(out_trade_no: str) -> None:
    if not _OUT_TRADE_NO.fullmatch(out_trade_no):
        raise Refused(f"bad out_trade_no {out_trade_no!r} (6-32 of digits, letters, _-*)")


def _hash_matches(doc: Mapping[str, Any], data: bytes) -> bool:
    hash_type = str(doc.get("hash_type") or "SHA1").lower()
    if hash_type not in ("sha1", "sha256"):
        return False
    return hashlib.new(hash_type, data).hexdigest() == str(doc.get("hash_value") or "").lower()


def _ok(answer: _Answer) -> dict[str, Any]:
    if not answer.ok:
        raise _fail(answer.error())
    return answer.json()


def _transaction(doc: Any, out_trade_no: str) -> Transaction:
    try:
        transaction = Transaction.parse(doc, out_trade_no=out_trade_no)
    except ValueError as error:
        raise ProviderError(f"WeChat Pay's transaction cannot be read: {error}") from None
    if transaction.out_trade_no != out_trade_no:
        raise ProviderError(f"WeChat Pay answered for {transaction.out_trade_no!r}")
    return transaction


def _fail(error: ErrorAnswer) -> Exception:
    """The exception for an error answer: unknown outcome (retry, query) or an outright no."""
    if error.status >= 500 or error.status == 429 or error.code in _UNKNOWN_OUTCOME:
        return ProviderError(f"WeChat Pay: {error}")
    return Refused(f"WeChat Pay: {error}")


# --- configuration -------------------------------------------------------------------------

PREFIX: Final = "EPPARK_WECHATPAY_"


def from_environ(env: Mapping[str, str]) -> WechatPay | None:
    """The adapter configured by ``EPPARK_WECHATPAY_*``; None when ``…_MCHID`` is unset.

    ``ImproperlyConfigured`` (naming the variable) for anything missing or unreadable.
    """
    mchid = env.get(f"{PREFIX}MCHID", "").strip()
    if not mchid:
        return None

    def need(name: str) -> str:
        value = env.get(PREFIX + name, "").strip()
        if not value:
            raise ImproperlyConfigured(f"{PREFIX}{name} is required with {PREFIX}MCHID")
        return value

    appid = need("APPID")
    apiv3_key = need("APIV3_KEY").encode("utf-8")
    if len(apiv3_key) != 32:
        raise ImproperlyConfigured(f"{PREFIX}APIV3_KEY must be the 32-character APIv3 key")
    private_key = _load_private_key(Path(need("PRIVATE_KEY_FILE")), f"{PREFIX}PRIVATE_KEY_FILE")
    cert_serial = need("CERT_SERIAL")
    public_key_file = env.get(f"{PREFIX}PUBLIC_KEY_FILE", "").strip()
    public_key_id = env.get(f"{PREFIX}PUBLIC_KEY_ID", "").strip()
    cert_dir_text = env.get(f"{PREFIX}PLATFORM_CERT_DIR", "").strip()
    public_key = None
    if public_key_file or public_key_id:
        if not public_key_file:
            raise ImproperlyConfigured(f"{PREFIX}PUBLIC_KEY_FILE is required with …PUBLIC_KEY_ID")
        if not public_key_id:
            raise ImproperlyConfigured(f"{PREFIX}PUBLIC_KEY_ID is required with …PUBLIC_KEY_FILE")
        public_key = _load_public_key(Path(public_key_file), f"{PREFIX}PUBLIC_KEY_FILE")
    elif not cert_dir_text:
        raise ImproperlyConfigured(
            f"set {PREFIX}PUBLIC_KEY_FILE and {PREFIX}PUBLIC_KEY_ID (WeChat Pay public key) "
            f"or {PREFIX}PLATFORM_CERT_DIR (platform certificates)"
        )
    cert_dir = Path(cert_dir_text) if cert_dir_text else None
    certificates = (
        _load_certificates(cert_dir, f"{PREFIX}PLATFORM_CERT_DIR") if cert_dir is not None else []
    )
    base_url = env.get(f"{PREFIX}BASE_URL", "").strip() or DEFAULT_BASE_URL
    if not base_url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"{PREFIX}BASE_URL must be an http(s) URL, not {base_url!r}")
    return WechatPay(
        mchid=mchid,
        appid=appid,
        apiv3_key=apiv3_key,
        private_key=private_key,
        cert_serial=cert_serial,
        public_key=public_key,
        public_key_id=public_key_id,
        certificates=certificates,
        cert_dir=cert_dir,
        base_url=base_url,
        store_id=env.get(f"{PREFIX}STORE_ID", "").strip() or "eppark",
    )
