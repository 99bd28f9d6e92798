"""A local stand-in of WeChat Pay APIv3, for tests and trials of the real adapter.

A real HTTP server (``ThreadingHTTPServer`` in a thread of its own) that speaks WeChat Pay's
signed wire format: it checks the merchant's ``Authorization`` signature on every request
(401 ``SIGN_ERROR`` otherwise), keeps trades in memory, answers native, JSAPI, codepay, query,
close, reverse, refund, tradebill and the bill download (and ``/v3/certificates`` in
certificate mode), signs its answers with its own platform key, and sends payment
notifications (signed; ``resource`` AES-256-GCM under the APIv3 key), once or twice.

It is written independently of ``eppark.payments.providers.wechat`` (only ``cryptography``),
so a mistake in the adapter's wire format is not mirrored here.

Knobs, like the sandbox's (contracts.md): a payment code's last digit ``1`` → USERPAYING,
then SUCCESS ``userpaying_seconds`` later (on ``clock``, which tests move by hand); ``2`` →
declined (``NOT_ENOUGH``, 余额不足); ``3`` → the call answers 500 ``SYSTEM_ERROR`` although the
trade is paid; any other digit pays at once. ``go_down("refuse")`` stops listening
(connection refused) and ``go_down("503")`` answers 503 to everything; ``come_back()``.
``response_signing`` ``"bad"`` signs answers with a stranger's key, ``"none"`` not at all.

Test keys are generated at run time (``generate_keys``); none is ever committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CST: Final = ZoneInfo("Asia/Shanghai")
Mode = Literal["public_key", "certificate"]
_AUTH = re.compile(r'(\w+)="([^"]*)"')
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*]{6,32}")


# --- keys --------------------------------------------------------------------------------


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, serial: int) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (stand-in)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign (stand-in)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )


@dataclass
class PlatformKey:
    """One key WeChat Pay signs with: its certificate (certificate mode) and public key id."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    public_key_id: str

    @property
    def serial(self) -> str:
        """The certificate's serial as WeChat Pay writes it."""
        return f"{self.cert.serial_number:X}"

    @classmethod
    def generate(cls) -> PlatformKey:
        """A fresh RSA 2048 key, a self-signed certificate and a ``PUB_KEY_ID_…``."""
        key = _rsa()
        serial = secrets.randbits(159) | (1 << 158)  # 40 hex digits, like WeChat's
        cert = _certificate(key, serial)
        public_key_id = "PUB_KEY_ID_" + "".join(secrets.choice("0123456789") for _ in range(30))
        return cls(key, cert, public_key_id)


@dataclass
class TestKeys:
    """A merchant and its WeChat Pay, made up for one test run."""

    __test__ = False  # not a pytest class

    mchid: str
    appid: str
    apiv3_key: str  # 32 ASCII characters
    merchant_key: rsa.RSAPrivateKey
    merchant_serial: str
    platform: PlatformKey


def generate_keys(mchid: str = "1900000109", appid: str = "wxd678efh567hg6787") -> TestKeys:
    """Fresh keys: the merchant's RSA 2048 key and serial, WeChat Pay's key, an APIv3 key."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return TestKeys(
        mchid=mchid,
        appid=appid,
        apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
        merchant_key=_rsa(),
        merchant_serial=secrets.token_hex(20).upper(),
        platform=PlatformKey.generate(),
    )


def write_environ(
    keys: TestKeys,
    folder: Path,
    base_url: str,
    mode: Mode = "public_key",
    *,
    with_certificates: bool = True,
) -> dict[str, str]:
    """Write the merchant's key (and WeChat Pay's public key or certificate) into ``folder``
    and give the ``EPPARK_WECHATPAY_*`` variables that configure the adapter with them.
    ``with_certificates=False`` leaves the certificate folder empty (the adapter fetches them).
    """
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / "apiclient_key.pem"
    private.write_bytes(
        keys.merchant_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    env = {
        "EPPARK_WECHATPAY_MCHID": keys.mchid,
        "EPPARK_WECHATPAY_APPID": keys.appid,
        "EPPARK_WECHATPAY_APIV3_KEY": keys.apiv3_key,
        "EPPARK_WECHATPAY_PRIVATE_KEY_FILE": str(private),
        "EPPARK_WECHATPAY_CERT_SERIAL": keys.merchant_serial,
        "EPPARK_WECHATPAY_BASE_URL": base_url,
    }
    if mode == "public_key":
        public = folder / "pub_key.pem"
        public.write_bytes(
            keys.platform.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        env["EPPARK_WECHATPAY_PUBLIC_KEY_FILE"] = str(public)
        env["EPPARK_WECHATPAY_PUBLIC_KEY_ID"] = keys.platform.public_key_id
    else:
        certs = folder / "platform_certs"
        certs.mkdir(exist_ok=True)
        if with_certificates:
            (certs / f"wechatpay_{keys.platform.serial}.pem").write_bytes(
                keys.platform.cert.public_bytes(serialization.Encoding.PEM)
            )
        env["EPPARK_WECHATPAY_PLATFORM_CERT_DIR"] = str(certs)
    return env


# --- crypto, written out here on purpose -------------------------------------------------


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def _verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def encrypt_resource(apiv3_key: str, plaintext: bytes, associated_data: str) -> dict[str, str]:
    """``{algorithm, ciphertext, associated_data, nonce}`` as WeChat Pay encrypts them."""
    nonce = secrets.token_urlsafe(9)[:12]
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext, associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def _rfc3339(at: dt.datetime) -> str:
    return at.astimezone(CST).isoformat(timespec="seconds")


def _fen(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


# --- trades ------------------------------------------------------------------------------


@dataclass
class SimTrade:
    """A trade as the stand-in keeps it."""

    out_trade_no: str
    kind: str  # NATIVE, JSAPI, MICROPAY
    total: int
    description: str
    notify_url: str = ""
    attach: str = ""
    openid: str = ""
    state: str = "NOTPAY"
    state_desc: str = ""
    transaction_id: str = ""
    paid_at: dt.datetime | None = None
    userpaying_until: float | None = None  # on the stand-in's clock
    refunded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True


class WechatPaySim:
    """The stand-in; ``start()`` it, point the adapter at ``base_url``, ``stop()`` it."""

    def __init__(
        self,
        keys: TestKeys,
        *,
        mode: Mode = "public_key",
        host: str = "127.0.0.1",
        port: int = 0,
        userpaying_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.mode: Mode = mode
        self.host = host
        self.port = port
        self.userpaying_seconds = userpaying_seconds
        self.clock = clock
        self.platform = keys.platform
        self.retired: list[PlatformKey] = []  # older certificates still served
        self.response_signing: Literal["ok", "none", "bad"] = "ok"
        self.refund_status = "SUCCESS"
        self.bill_tampered = False  # the bill file no longer matches its signed hash
        self.trades: dict[str, SimTrade] = {}
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.down: Literal["refuse", "503"] | None = None
        self._bills: dict[str, bytes] = {}
        self._stranger: rsa.RSAPrivateKey | None = None  # signs "bad" answers, made on demand
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (port 0: a free one, kept across ``go_down``/``come_back``)."""
        server = _Server((self.host, self.port), self._handler())
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wechatpay-sim"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and join the server's threads."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> WechatPaySim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the adapter finds it (``EPPARK_WECHATPAY_BASE_URL``)."""
        return f"http://{self.host}:{self.port}"

    def go_down(self, how: Literal["refuse", "503"] = "refuse") -> None:
        """Be unreachable: refuse connections, or answer 503 to everything."""
        self.down = how
        if how == "refuse":
            self.stop()

    def come_back(self) -> None:
        """Answer again, on the same port."""
        if self.down == "refuse":
            self.start()
        self.down = None

    def rotate_platform_key(self) -> PlatformKey:
        """Sign with a new platform key from now on (the old certificate is still served)."""
        with self._lock:
            self.retired.append(self.platform)
            self.platform = PlatformKey.generate()
            return self.platform

    # -- what a payer does ----------------------------------------------------------------

    def pay(self, out_trade_no: str, *, openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") -> SimTrade:
        """The payer pays a native or JSAPI trade (scans ``code_url``, confirms in WeChat)."""
        with self._lock:
            trade = self.trades[out_trade_no]
            if trade.state not in ("NOTPAY", "USERPAYING"):
                raise ValueError(f"trade {out_trade_no} is {trade.state}")
            trade.openid = trade.openid or openid
            self._succeed(trade)
            return trade

    def _succeed(self, trade: SimTrade) -> None:
        trade.state = "SUCCESS"
        trade.state_desc = "支付成功"
        trade.paid_at = dt.datetime.now(CST).replace(microsecond=0)
        trade.transaction_id = trade.transaction_id or (
            "42000" + "".join(secrets.choice("0123456789") for _ in range(23))
        )
        trade.userpaying_until = None

    def _settle(self, trade: SimTrade) -> None:
        if (
            trade.state == "USERPAYING"
            and trade.userpaying_until is not None
            and self.clock() >= trade.userpaying_until
        ):
            self._succeed(trade)

    # -- notifications --------------------------------------------------------------------

    def transaction_doc(self, trade: SimTrade) -> dict[str, Any]:
        """The trade as WeChat Pay's query answer and notification resource write it."""
        doc: dict[str, Any] = {
            "appid": self.keys.appid,
            "mchid": self.keys.mchid,
            "out_trade_no": trade.out_trade_no,
            "trade_type": trade.kind,
            "trade_state": trade.state,
            "trade_state_desc": trade.state_desc or _STATE_DESC.get(trade.state, ""),
            "attach": trade.attach,
            "amount": {"total": trade.total, "currency": "CNY"},
        }
        if trade.transaction_id:
            doc["transaction_id"] = trade.transaction_id
            doc["bank_type"] = "OTHERS"
        if trade.paid_at is not None:
            doc["success_time"] = _rfc3339(trade.paid_at)
            doc["amount"].update(payer_total=trade.total, payer_currency="CNY")
        if trade.openid:
            doc["payer"] = {"openid": trade.openid}
        return doc

    def build_notification(
        self,
        out_trade_no: str,
        *,
        timestamp: int | None = None,
        serial: str | None = None,
        signature: str | None = None,
        corrupt_ciphertext: bool = False,
        resource: dict[str, Any] | None = None,
        event_type: str = "TRANSACTION.SUCCESS",
    ) -> tuple[dict[str, str], bytes]:
        """A payment notification's headers and body, signed now with the platform key.

        ``timestamp``/``serial``/``signature`` override what the headers say (the body is
        signed with the given timestamp); ``corrupt_ciphertext`` flips a bit of the ciphertext
        before signing (the signature holds, the AES-GCM tag fails); ``resource`` replaces
        the transaction document.
        """
        with self._lock:
            doc = (
                resource
                if resource is not None
                else self.transaction_doc(self.trades[out_trade_no])
            )
        encrypted = encrypt_resource(
            self.keys.apiv3_key, json.dumps(doc, ensure_ascii=False).encode(), "transaction"
        )
        if corrupt_ciphertext:
            raw = bytearray(base64.b64decode(encrypted["ciphertext"]))
            raw[0] ^= 0x01
            encrypted["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        now = dt.datetime.now(CST)
        body = json.dumps(
            {
                "id": "EV-" + secrets.token_hex(10).upper(),
                "create_time": _rfc3339(now),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "支付成功",
                "resource": {"original_type": "transaction", **encrypted},
            },
            ensure_ascii=False,
        ).encode()
        headers = self.signed_headers(body, timestamp=timestamp)
        if serial is not None:
            headers["Wechatpay-Serial"] = serial
        if signature is not None:
            headers["Wechatpay-Signature"] = signature
        return headers, body

    def signed_headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """The headers WeChat Pay sends with a notification of ``body``, signed now."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = self._signature_headers(ts, secrets.token_hex(16), body)
        headers["Content-Type"] = "application/json"
        return headers

    def notify(self, out_trade_no: str, *, url: str = "", times: int = 1) -> list[int]:
        """POST the trade's payment notification to its ``notify_url`` (or ``url``)
        ``times`` times; the HTTP statuses answered.
        """
        with self._lock:
            target = url or self.trades[out_trade_no].notify_url
        statuses = []
        with httpx.Client(timeout=5.0) as client:
            for _ in range(times):
                headers, body = self.build_notification(out_trade_no)
                statuses.append(client.post(target, content=body, headers=headers).status_code)
        return statuses

    # -- signing --------------------------------------------------------------------------

    def _serial(self) -> str:
        if self.mode == "public_key":
            return self.platform.public_key_id
        return self.platform.serial

    def _signature_headers(self, timestamp: str, nonce: str, body: bytes) -> dict[str, str]:
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        return {
            "Wechatpay-Serial": self._serial(),
            "Wechatpay-Signature": _sign(self.platform.key, message),
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def _check_request(self, method: str, target: str, headers: Any, body: bytes) -> bool:
        header = headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return False
        params = dict(_AUTH.findall(rest))
        if params.get("mchid") != self.keys.mchid:
            return False
        if params.get("serial_no") != self.keys.merchant_serial:
            return False
        try:
            if abs(time.time() - int(params.get("timestamp", ""))) > 300:
                return False
        except ValueError:
            return False
        message = (
            f"{method}\n{target}\n{params['timestamp']}\n{params.get('nonce_str', '')}\n".encode()
            + body
            + b"\n"
        )
        return _verify(self.keys.merchant_key.public_key(), message, params.get("signature", ""))

    # -- HTTP -----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, signed, content_type = sim._route(
                    method, self.path, self.headers, body
                )
                with sim._lock:
                    sim.requests.append((method, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.send_header("Request-ID", secrets.token_hex(16))
                if signed:
                    for name, value in sim._answer_signature(payload).items():
                        self.send_header(name, value)
                self.end_headers()
                if payload:
                    self.wfile.write(payload)
                self.close_connection = True

        return Handler

    def _answer_signature(self, payload: bytes) -> dict[str, str]:
        if self.response_signing == "none":
            return {}
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        headers = self._signature_headers(ts, nonce, payload)
        if self.response_signing == "bad":
            message = f"{ts}\n{nonce}\n".encode() + payload + b"\n"
            if self._stranger is None:
                self._stranger = _rsa()
            headers["Wechatpay-Signature"] = _sign(self._stranger, message)
        return headers

    def _route(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, bytes, bool, str]:
        """(status, body, whether to sign it, content type) for one request."""
        if self.down == "503":
            return 503, b"<html>503 Service Unavailable</html>", False, "text/html"
        if not self._check_request(method, target, headers, body):
            return _error(401, "SIGN_ERROR", "签名错误")
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            doc: Any = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "PARAM_ERROR", "请求体不是JSON")
        if not isinstance(doc, dict):
            return _error(400, "PARAM_ERROR", "请求体不是JSON对象")
        with self._lock:
            if method == "POST" and path in (
                "/v3/pay/transactions/native",
                "/v3/pay/transactions/jsapi",
            ):
                return self._order(path.rsplit("/", 1)[1].upper(), doc)
            if method == "POST" and path == "/v3/pay/transactions/codepay":
                return self._codepay(doc)
            match = re.fullmatch(
                r"/v3/pay/transactions/out-trade-no/([^/]+)(/close|/reverse)?", path
            )
            if match:
                otn, action = match.groups()
                trade = self.trades.get(otn)
                if method == "GET" and not action:
                    if query.get("mchid") != self.keys.mchid:
                        return _error(400, "PARAM_ERROR", "商户号不正确")
                    if trade is None:
                        return _error(404, "ORDER_NOT_EXIST", "订单不存在")
                    self._settle(trade)
                    return _json(200, self.transaction_doc(trade))
                if method == "POST" and action == "/close":
                    return self._close(doc, trade)
                if method == "POST" and action == "/reverse":
                    return self._reverse(doc, trade)
            if method == "POST" and path == "/v3/refund/domestic/refunds":
                return self._refund(doc)
            if method == "GET" and path == "/v3/bill/tradebill":
                return self._tradebill(query)
            if method == "GET" and path == "/v3/billdownload/file":
                data = self._bills.get(query.get("token", ""))
                if data is None:
                    return _error(404, "NOT_FOUND", "账单不存在")
                if self.bill_tampered:
                    data = data.replace(b"`", b"", 1)
                return 200, data, False, "application/octet-stream"
            if method == "GET" and path == "/v3/certificates":
                return self._certificates()
        return _error(404, "NOT_FOUND", "无此接口")

    def _merchant_ok(self, doc: dict[str, Any], *, appid: bool = True) -> bool:
        return doc.get("mchid") == self.keys.mchid and (
            not appid or doc.get("appid") == self.keys.appid
        )

    def _new_trade(self, kind: str, doc: dict[str, Any]) -> SimTrade | tuple[int, bytes, bool, str]:
        if not self._merchant_ok(doc):
            return _error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        otn = doc.get("out_trade_no")
        amount = doc.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        description = doc.get("description")
        if not isinstance(otn, str) or not _OUT_TRADE_NO.fullmatch(otn):
            return _error(400, "PARAM_ERROR", "商户订单号格式错误")
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            return _error(400, "PARAM_ERROR", "订单金额不正确")
        if not isinstance(description, str) or not description or len(description) > 127:
            return _error(400, "PARAM_ERROR", "商品描述不正确")
        existing = self.trades.get(otn)
        if existing is not None:
            if existing.state in ("SUCCESS", "REFUND"):
                return _error(400, "ORDERPAID", "该订单已支付")
            if existing.state in ("CLOSED", "REVOKED"):
                return _error(400, "ORDER_CLOSED", "订单已关闭")
            if existing.total != total or existing.kind != kind:
                return _error(400, "INVALID_REQUEST", "商户订单号重复")
            return existing
        trade = SimTrade(
            out_trade_no=otn,
            kind=kind,
            total=total,
            description=description,
            notify_url=str(doc.get("notify_url") or ""),
            attach=str(doc.get("attach") or ""),
        )
        self.trades[otn] = trade
        return trade

    def _order(self, kind: str, doc: dict[str, Any]) -> tuple[int, bytes, bool, str]:
        if not str(doc.get("notify_url") or "").startswith(("http://", "https://")):
            return _error(400, "PARAM_ERROR", "notify_url格式错误")
        openid = ""
        if kind == "JSAPI":
            payer = doc.get("payer")
            openid = payer.get("openid", "") if isinstance(payer, dict) else ""
            if not openid:
                return _error(400, "PARAM_ERROR", "JSAPI支付必须传openid")
        trade = self._new_trade(kind, doc)
        if not isinstance(trade, SimTrade):
            return trade
        trade.openid = openid
        if kind == "JSAPI":
            return _json(200, {"prepay_id": "wx" + secrets.token_hex(16)})
        return _json(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"})

    def _codepay(self, doc: dict[str, Any]) -> tuple[int, bytes, bool, str]:
        payer = doc.get("payer")
        auth_code = payer.get("auth_code", "") if isinstance(payer, dict) else ""
        scene = doc.get("scene_info")
        store = scene.get("store_info") if isinstance(scene, dict) else None
        if not isinstance(store, dict) or not store.get("out_id"):
            return _error(400, "PARAM_ERROR", "scene_info.store_info.out_id 必填")
        if not re.fullmatch(r"1[0-5]\d{16}", str(auth_code)):
            return _error(400, "AUTH_CODE_INVALID", "付款码无效，请重新扫码")
        trade = self._new_trade("MICROPAY", doc)
        if not isinstance(trade, SimTrade):
            return trade
        if trade.state != "NOTPAY":  # the same order again: its state
            self._settle(trade)
            return _json(200, self.transaction_doc(trade))
        trade.openid = "o" + hashlib.sha256(auth_code.encode()).hexdigest()[:27]
        digit = auth_code[-1]
        if digit == "1":
            trade.state = "USERPAYING"
            trade.state_desc = "需要用户输入支付密码"
            trade.userpaying_until = self.clock() + self.userpaying_seconds
            return _json(202, {"trade_state": "USERPAYING"})
        if digit == "2":
            trade.state = "PAYERROR"
            trade.state_desc = "余额不足"
            return _error(403, "NOT_ENOUGH", "余额不足")
        self._succeed(trade)
        if digit == "3":
            return _error(500, "SYSTEM_ERROR", "系统错误")
        return _json(200, self.transaction_doc(trade))

    def _close(self, doc: dict[str, Any], trade: SimTrade | None) -> tuple[int, bytes, bool, str]:
        if not self._merchant_ok(doc, appid=False):
            return _error(400, "PARAM_ERROR", "商户号不正确")
        if trade is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        self._settle(trade)
        if trade.state in ("SUCCESS", "REFUND"):
            return _error(400, "ORDERPAID", "订单已支付")
        trade.state = "CLOSED"
        trade.state_desc = "订单已关闭"
        return 204, b"", True, "application/json"

    def _reverse(self, doc: dict[str, Any], trade: SimTrade | None) -> tuple[int, bytes, bool, str]:
        if not self._merchant_ok(doc):
            return _error(400, "PARAM_ERROR", "appid或商户号不正确")
        if trade is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.kind != "MICROPAY":
            return _error(400, "INVALID_REQUEST", "非付款码订单不能撤销")
        self._settle(trade)
        if trade.state == "REFUND":
            return _error(400, "INVALID_REQUEST", "订单已退款，不能撤销")
        trade.state = "REVOKED"
        trade.state_desc = "已撤销"
        trade.userpaying_until = None
        return _json(
            200,
            {
                "appid": self.keys.appid,
                "mchid": self.keys.mchid,
                "out_trade_no": trade.out_trade_no,
            },
        )

    def _refund(self, doc: dict[str, Any]) -> tuple[int, bytes, bool, str]:
        trade = self.trades.get(str(doc.get("out_trade_no") or ""))
        out_refund_no = str(doc.get("out_refund_no") or "")
        amount = doc.get("amount")
        if not isinstance(amount, dict):
            amount = {}
        refund, total = amount.get("refund"), amount.get("total")
        if trade is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if not out_refund_no:
            return _error(400, "PARAM_ERROR", "out_refund_no 必填")
        for earlier in trade.refunds:
            if earlier["out_refund_no"] == out_refund_no:
                return _json(200, earlier)
        if trade.state not in ("SUCCESS", "REFUND"):
            return _error(403, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != trade.total:
            return _error(400, "PARAM_ERROR", "订单金额与原订单不一致")
        if not isinstance(refund, int) or refund <= 0 or refund > trade.total - trade.refunded:
            return _error(403, "NOT_ENOUGH", "可退金额不足")
        now = dt.datetime.now(CST).replace(microsecond=0)
        answer = {
            "refund_id": "50000" + "".join(secrets.choice("0123456789") for _ in range(24)),
            "out_refund_no": out_refund_no,
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _rfc3339(now),
            "status": self.refund_status,
            "amount": {
                "total": trade.total,
                "refund": refund,
                "payer_total": trade.total,
                "payer_refund": refund,
                "settlement_refund": refund,
                "settlement_total": trade.total,
                "discount_refund": 0,
                "currency": "CNY",
            },
            "_at": now.isoformat(),
        }
        if self.refund_status == "SUCCESS":
            answer["success_time"] = _rfc3339(now)
        trade.refunds.append(answer)
        trade.refunded += refund
        trade.state = "REFUND"
        trade.state_desc = "转入退款"
        return _json(200, {k: v for k, v in answer.items() if not k.startswith("_")})

    def tradebill_csv(self, day: dt.date) -> str:
        """The ``ALL`` trade bill of ``day`` (Asia/Shanghai), as WeChat Pay writes it: a header
        line, every field of the other lines prefixed with a backtick, a summary at the end.
        """
        rows: list[dict[str, str]] = []
        paid = refunded = fees = 0
        for trade in self.trades.values():
            common = {
                "公众账号ID": self.keys.appid,
                "商户号": self.keys.mchid,
                "特约商户号": "0",
                "微信订单号": trade.transaction_id,
                "商户订单号": trade.out_trade_no,
                "用户标识": trade.openid,
                "交易类型": trade.kind,
                "付款银行": "OTHERS",
                "货币种类": "CNY",
                "商品名称": trade.description,
                "商户数据包": trade.attach,
                "费率": "0.60%",
            }
            if trade.paid_at is not None and trade.paid_at.astimezone(CST).date() == day:
                fee = round(trade.total * 6 / 1000)
                paid, fees = paid + trade.total, fees + fee
                rows.append(
                    common
                    | {
                        "交易时间": trade.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
                        "交易状态": "SUCCESS",
                        "应结订单金额": _fen(trade.total),
                        "订单金额": _fen(trade.total),
                        "手续费": f"{fee / 100:.5f}",
                    }
                )
            for refund in trade.refunds:
                at = dt.datetime.fromisoformat(refund["_at"])
                if at.date() != day:
                    continue
                amount = refund["amount"]["refund"]
                refunded += amount
                rows.append(
                    common
                    | {
                        "交易时间": at.strftime("%Y-%m-%d %H:%M:%S"),
                        "交易状态": "REFUND",
                        "微信退款单号": refund["refund_id"],
                        "商户退款单号": refund["out_refund_no"],
                        "退款金额": _fen(amount),
                        "申请退款金额": _fen(amount),
                        "退款类型": "ORIGINAL",
                        "退款状态": refund["status"],
                    }
                )
        if not rows:
            return ""
        rows.sort(key=lambda row: row["交易时间"])
        lines = [",".join(_BILL_COLUMNS)]
        for row in rows:
            cells = [row.get(name, _BILL_DEFAULTS.get(name, "")) for name in _BILL_COLUMNS]
            lines.append(",".join("`" + cell for cell in cells))
        summary = {
            "总交易单数": str(len(rows)),
            "应结订单总金额": _fen(paid),
            "退款总金额": _fen(refunded),
            "充值券退款总金额": "0.00",
            "手续费总金额": f"{fees / 100:.5f}",
            "订单总金额": _fen(paid),
            "申请退款总金额": _fen(refunded),
        }
        lines.append(",".join(summary))
        lines.append(",".join("`" + cell for cell in summary.values()))
        return "\r\n".join(lines) + "\r\n"

    def _tradebill(self, query: dict[str, str]) -> tuple[int, bytes, bool, str]:
        try:
            day = dt.date.fromisoformat(query.get("bill_date", ""))
        except ValueError:
            return _error(400, "PARAM_ERROR", "账单日期格式不正确")
        if query.get("bill_type", "ALL") != "ALL":
            return _error(400, "PARAM_ERROR", "仅支持ALL")
        text = self.tradebill_csv(day)
        if not text:
            return _error(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        data = text.encode("utf-8")
        if query.get("tar_type") == "GZIP":
            data = gzip.compress(data)
        token = secrets.token_urlsafe(16)
        self._bills[token] = data
        return _json(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(data).hexdigest(),
                "download_url": f"{self.base_url}/v3/billdownload/file?token={token}",
            },
        )

    def _certificates(self) -> tuple[int, bytes, bool, str]:
        if self.mode != "certificate":
            return _error(404, "NOT_FOUND", "无可用的平台证书")
        data = []
        for platform in [*self.retired, self.platform]:
            pem = platform.cert.public_bytes(serialization.Encoding.PEM)
            data.append(
                {
                    "serial_no": platform.serial,
                    "effective_time": _rfc3339(platform.cert.not_valid_before_utc),
                    "expire_time": _rfc3339(platform.cert.not_valid_after_utc),
                    "encrypt_certificate": encrypt_resource(
                        self.keys.apiv3_key, pem, "certificate"
                    ),
                }
            )
        return _json(200, {"data": data})


_BILL_COLUMNS: Final = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
]
"""The columns of WeChat Pay's ``ALL`` trade bill, in order."""
_BILL_DEFAULTS: Final = dict.fromkeys(
    ("应结订单金额", "代金券金额", "退款金额", "充值券退款金额", "订单金额", "申请退款金额"), "0.00"
) | {"微信退款单号": "0", "商户退款单号": "0", "手续费": "0.00000"}

_STATE_DESC: Final = {
    "NOTPAY": "未支付",
    "USERPAYING": "需要用户输入支付密码",
    "CLOSED": "订单已关闭",
    "REVOKED": "已撤销",
    "REFUND": "转入退款",
}


def _json(status: int, doc: dict[str, Any]) -> tuple[int, bytes, bool, str]:
    return status, json.dumps(doc, ensure_ascii=False).encode(), True, "application/json"


def _error(status: int, code: str, message: str) -> tuple[int, bytes, bool, str]:
    return _json(status, {"code": code, "message": message})
