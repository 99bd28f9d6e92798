"""The WeChat Pay APIv3 adapter against the local stand-in, over real HTTP, in both key modes.

Keys are generated for the run (``sim.wechatpay.generate_keys``); the stand-in checks the
adapter's request signatures and signs its answers and notifications like WeChat Pay does.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eppark.payments.providers.base import (
    Charge,
    NotificationRejected,
    ProviderError,
    Refused,
    TradeResult,
    TradeState,
)
from eppark.payments.providers.wechat import CST, WechatPay, from_environ
from eppark.sim.wechatpay import (
    Mode,
    PlatformKey,
    TestKeys,
    WechatPaySim,
    generate_keys,
    write_environ,
)


def code(last: int, n: int = 0) -> str:
    """A WeChat payment code whose last digit is ``last`` (``n`` makes it differ)."""
    return f"1345678901234{n:04d}{last}"


class Clock:
    """The stand-in's clock, moved by hand (USERPAYING turns to SUCCESS on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def keys() -> TestKeys:
    return generate_keys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["public_key", "certificate"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def sim(keys: TestKeys, mode: Mode, clock: Clock) -> Iterator[WechatPaySim]:
    with WechatPaySim(keys, mode=mode, clock=clock, userpaying_seconds=3) as server:
        yield server


@pytest.fixture
def wx(sim: WechatPaySim, keys: TestKeys, mode: Mode, tmp_path: Path) -> Iterator[WechatPay]:
    adapter = from_environ(write_environ(keys, tmp_path / "wechatpay", sim.base_url, mode))
    assert adapter is not None
    yield adapter
    adapter.shutdown()


def charge(out_trade_no: str, amount: int = 500, notify_url: str = "") -> Charge:
    return Charge(
        out_trade_no=out_trade_no,
        amount=amount,
        description="停车费 沪A12345",
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
        notify_url=notify_url or "https://park.example.com/pay/notify/wechat",
        attach="lot-1",
    )


# --- paying from a page ---------------------------------------------------------------------


def test_native_gives_a_code_url_and_a_payment_is_found_by_query(
    wx: WechatPay, sim: WechatPaySim
) -> None:
    page = wx.page_payment(charge("N20261201000001"))
    assert page.kind == "redirect"
    assert page.url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert wx.query("N20261201000001").state == TradeState.NOTPAY

    sim.pay("N20261201000001", openid="oPayer1")
    result = wx.query("N20261201000001")
    assert result.state == TradeState.SUCCESS
    assert result.amount == 500
    assert result.payer == "oPayer1"
    assert result.transaction_id.startswith("42000")
    assert result.paid_at == sim.trades["N20261201000001"].paid_at
    assert result.paid_at is not None
    assert result.paid_at.tzinfo is not None
    # what the adapter sent, as WeChat Pay documents it
    trade = sim.trades["N20261201000001"]
    assert (trade.kind, trade.total, trade.attach) == ("NATIVE", 500, "lot-1")


def test_jsapi_gives_a_pay_sign_that_verifies_with_the_merchant_key(
    wx: WechatPay, keys: TestKeys, sim: WechatPaySim
) -> None:
    page = wx.page_payment(charge("J20261201000001"), payer="oUserInWechat")
    assert page.kind == "jsapi"
    params = dict(page.params)
    assert params["appId"] == keys.appid
    assert params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=wx")
    assert params["timeStamp"].isdigit()
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    keys.merchant_key.public_key().verify(  # raises if it does not verify
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert sim.trades["J20261201000001"].openid == "oUserInWechat"


def test_order_numbers_with_every_allowed_character_are_signed_as_sent(
    wx: WechatPay, sim: WechatPaySim
) -> None:
    wx.page_payment(charge("Ab-_*09zZ"))
    sim.pay("Ab-_*09zZ")
    assert wx.query("Ab-_*09zZ").state == TradeState.SUCCESS


def test_a_bad_order_number_is_refused_before_anything_is_sent(
    wx: WechatPay, sim: WechatPaySim
) -> None:
    with pytest.raises(Refused, match="out_trade_no"):
        wx.page_payment(charge("bad/../no"))
    with pytest.raises(Refused, match="out_trade_no"):
        wx.query("x")
    assert sim.requests == []


# --- payment codes --------------------------------------------------------------------------


def test_codepay_success(wx: WechatPay, sim: WechatPaySim, keys: TestKeys) -> None:
    result = wx.codepay(charge("C20261201000001", 1250), code(0))
    assert result.state == TradeState.SUCCESS
    assert result.amount == 1250
    assert result.transaction_id
    assert result.detail == ""
    assert sim.trades["C20261201000001"].kind == "MICROPAY"


def test_codepay_userpaying_then_success_on_query(
    wx: WechatPay, sim: WechatPaySim, clock: Clock
) -> None:
    result = wx.codepay(charge("C20261201000002"), code(1))
    assert result.state == TradeState.USERPAYING
    assert wx.query("C20261201000002").state == TradeState.USERPAYING
    clock.advance(3)
    paid = wx.query("C20261201000002")
    assert paid.state == TradeState.SUCCESS
    assert paid.amount == 500


def test_codepay_declined_says_why(wx: WechatPay) -> None:
    result = wx.codepay(charge("C20261201000003"), code(2))
    assert result.state == TradeState.PAYERROR
    assert result.detail == "余额不足"
    assert wx.query("C20261201000003").state == TradeState.PAYERROR


def test_codepay_error_that_charged_is_found_by_query(wx: WechatPay) -> None:
    with pytest.raises(ProviderError, match="SYSTEM_ERROR"):
        wx.codepay(charge("C20261201000004"), code(3))
    found = wx.query("C20261201000004")
    assert found.state == TradeState.SUCCESS
    assert found.amount == 500


def test_an_invalid_payment_code_is_a_decline(wx: WechatPay) -> None:
    result = wx.codepay(charge("C20261201000005"), "123")
    assert result.state == TradeState.PAYERROR
    assert "付款码" in result.detail


def test_provider_down_raises_provider_error(wx: WechatPay, sim: WechatPaySim) -> None:
    sim.go_down("refuse")
    with pytest.raises(ProviderError, match="unreachable"):
        wx.codepay(charge("C20261201000006"), code(0))
    with pytest.raises(ProviderError):
        wx.query("C20261201000006")
    sim.come_back()
    # the call never arrived: WeChat Pay has no such order
    never = wx.query("C20261201000006")
    assert never.state == TradeState.NOTPAY
    assert "ORDER_NOT_EXIST" in never.detail
    sim.go_down("503")
    with pytest.raises(ProviderError, match="503"):
        wx.codepay(charge("C20261201000007"), code(0))
    sim.come_back()
    assert wx.codepay(charge("C20261201000007"), code(0)).state == TradeState.SUCCESS


# --- close, reverse, refund -----------------------------------------------------------------


def test_close_an_unpaid_trade_but_not_a_paid_one(wx: WechatPay, sim: WechatPaySim) -> None:
    wx.page_payment(charge("K20261201000001"))
    wx.close("K20261201000001")
    assert wx.query("K20261201000001").state == TradeState.CLOSED
    wx.page_payment(charge("K20261201000002"))
    sim.pay("K20261201000002")
    with pytest.raises(Refused, match="ORDERPAID"):
        wx.close("K20261201000002")


def test_reverse_a_code_payment(wx: WechatPay) -> None:
    assert wx.codepay(charge("R20261201000001"), code(1)).state == TradeState.USERPAYING
    wx.reverse("R20261201000001")
    assert wx.query("R20261201000001").state == TradeState.REVOKED
    assert wx.codepay(charge("R20261201000002"), code(0)).state == TradeState.SUCCESS
    wx.reverse("R20261201000002")  # charged after all: the money goes back
    assert wx.query("R20261201000002").state == TradeState.REVOKED
    with pytest.raises(Refused, match="ORDER_NOT_EXIST"):
        wx.reverse("R20261201000003")


def test_refund(wx: WechatPay, sim: WechatPaySim) -> None:
    assert wx.codepay(charge("F20261201000001", 800), code(0)).state == TradeState.SUCCESS
    first = wx.refund("F20261201000001", "RF20261201000001", 300, 800, "多收了")
    assert first.succeeded
    assert first.refund_id
    again = wx.refund("F20261201000001", "RF20261201000001", 300, 800, "多收了")
    assert again.refund_id == first.refund_id  # the same refund, not a second one
    assert wx.query("F20261201000001").state == TradeState.REFUND
    with pytest.raises(Refused, match="NOT_ENOUGH"):
        wx.refund("F20261201000001", "RF20261201000002", 600, 800, "")
    sim.refund_status = "PROCESSING"
    later = wx.refund("F20261201000001", "RF20261201000003", 500, 800, "")
    assert not later.succeeded
    with pytest.raises(Refused):
        wx.refund("F20261201000001", "RF20261201000004", 0, 800, "")


# --- the daily bill -------------------------------------------------------------------------


def test_bill_lists_the_days_trades_and_refunds(wx: WechatPay, sim: WechatPaySim) -> None:
    wx.page_payment(charge("B20261201000001", 500))
    sim.pay("B20261201000001")
    wx.codepay(charge("B20261201000002", 1250), code(0))
    wx.page_payment(charge("B20261201000003", 700))  # never paid: not in the bill
    wx.refund("B20261201000001", "RB20261201000001", 200, 500, "")
    today = datetime.now(CST).date()
    lines = wx.bill(today)
    seen = sorted((line.out_trade_no, line.state, line.amount) for line in lines)
    assert seen == [
        ("B20261201000001", TradeState.REFUND, 200),
        ("B20261201000001", TradeState.SUCCESS, 500),
        ("B20261201000002", TradeState.SUCCESS, 1250),
    ]
    paid = next(line for line in lines if line.out_trade_no == "B20261201000002")
    assert paid.transaction_id == sim.trades["B20261201000002"].transaction_id
    assert paid.at.tzinfo is not None
    assert wx.bill(today - timedelta(days=3)) == []


def test_bill_with_a_wrong_hash_is_refused(wx: WechatPay, sim: WechatPaySim) -> None:
    wx.codepay(charge("B20261201000009"), code(0))
    sim.bill_tampered = True
    with pytest.raises(ProviderError, match="hash"):
        wx.bill(datetime.now(CST).date())


# --- the answers' signatures ----------------------------------------------------------------


@pytest.mark.parametrize("signing", ["none", "bad"])
def test_an_unsigned_or_badly_signed_answer_is_not_believed(
    wx: WechatPay, sim: WechatPaySim, signing: str
) -> None:
    sim.response_signing = signing  # type: ignore[assignment]
    with pytest.raises(ProviderError, match="signed"):
        wx.codepay(charge("S20261201000001"), code(0))
    with pytest.raises(ProviderError, match="signed"):
        wx.query("S20261201000001")
    sim.response_signing = "ok"
    assert wx.query("S20261201000001").state == TradeState.SUCCESS


def test_an_unsigned_error_answer_is_read_but_never_as_success(
    wx: WechatPay, sim: WechatPaySim
) -> None:
    sim.response_signing = "none"
    declined = wx.codepay(charge("S20261201000002"), code(2))
    assert declined.state == TradeState.PAYERROR


def test_the_stand_in_refuses_a_badly_signed_request(
    sim: WechatPaySim, keys: TestKeys, tmp_path: Path, mode: Mode
) -> None:
    env = write_environ(keys, tmp_path / "other", sim.base_url, mode)
    stranger = rsa.generate_private_key(65537, 2048)  # not the key the serial names
    Path(env["EPPARK_WECHATPAY_PRIVATE_KEY_FILE"]).write_bytes(
        stranger.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    adapter = from_environ(env)
    assert adapter is not None
    try:
        with pytest.raises(Refused, match="SIGN_ERROR"):
            adapter.query("S20261201000003")
    finally:
        adapter.shutdown()
    answer = httpx.get(f"{sim.base_url}/v3/pay/transactions/out-trade-no/S20261201000003")
    assert answer.status_code == 401
    assert answer.json()["code"] == "SIGN_ERROR"


# --- certificate mode: fetching and rotating platform certificates --------------------------


def test_certificates_are_fetched_when_the_folder_is_empty(
    keys: TestKeys, clock: Clock, tmp_path: Path
) -> None:
    with WechatPaySim(keys, mode="certificate", clock=clock) as sim:
        env = write_environ(
            keys, tmp_path / "wx", sim.base_url, "certificate", with_certificates=False
        )
        adapter = from_environ(env)
        assert adapter is not None
        try:
            assert adapter.codepay(charge("P20261201000001"), code(0)).state == TradeState.SUCCESS
            folder = Path(env["EPPARK_WECHATPAY_PLATFORM_CERT_DIR"])
            assert [p.name for p in folder.iterdir()] == [f"wechatpay_{keys.platform.serial}.pem"]
        finally:
            adapter.shutdown()
        # the next start reads them from the folder: no fetch
        before = len(sim.requests)
        again = from_environ(env)
        assert again is not None
        try:
            assert again.query("P20261201000001").state == TradeState.SUCCESS
        finally:
            again.shutdown()
        assert [r[1] for r in sim.requests[before:]] == [
            f"/v3/pay/transactions/out-trade-no/P20261201000001?mchid={keys.mchid}"
        ]


def test_a_rotated_platform_certificate_is_fetched(
    keys: TestKeys, clock: Clock, tmp_path: Path
) -> None:
    with WechatPaySim(keys, mode="certificate", clock=clock) as sim:
        adapter = from_environ(write_environ(keys, tmp_path / "wx", sim.base_url, "certificate"))
        assert adapter is not None
        try:
            assert adapter.codepay(charge("P20261201000002"), code(0)).state == TradeState.SUCCESS
            new = sim.rotate_platform_key()
            assert adapter.query("P20261201000002").state == TradeState.SUCCESS
            assert any(r[1] == "/v3/certificates" for r in sim.requests)
            assert adapter.keys.get(new.serial) is not None
        finally:
            adapter.shutdown()


# --- notifications --------------------------------------------------------------------------


@dataclass
class Receiver:
    """Our notify endpoint in miniature: the adapter's verdict and reply, over real HTTP."""

    url: str = ""
    results: list[TradeResult] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)


@pytest.fixture
def receiver(wx: WechatPay) -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                result = wx.parse_notification(dict(self.headers), body, datetime.now(UTC))
            except NotificationRejected as error:
                state.rejections.append(str(error))
                reply = wx.notification_reply(False)
            else:
                state.results.append(result)
                reply = wx.notification_reply(True)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/pay/notify/wechat"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_notification_is_verified_decrypted_and_read_even_twice(
    wx: WechatPay, sim: WechatPaySim, receiver: Receiver
) -> None:
    wx.page_payment(charge("T20261201000001", 600, notify_url=receiver.url))
    sim.pay("T20261201000001", openid="oNotified")
    assert sim.notify("T20261201000001", times=2) == [204, 204]
    assert receiver.rejections == []
    first, second = receiver.results
    assert first == second
    assert first.out_trade_no == "T20261201000001"
    assert first.state == TradeState.SUCCESS
    assert first.amount == 600
    assert first.payer == "oNotified"
    assert first.transaction_id == sim.trades["T20261201000001"].transaction_id
    assert first.paid_at == sim.trades["T20261201000001"].paid_at


def test_a_rejected_notification_is_answered_500_fail(
    wx: WechatPay, sim: WechatPaySim, receiver: Receiver
) -> None:
    wx.page_payment(charge("T20261201000002", notify_url=receiver.url))
    sim.pay("T20261201000002")
    headers, body = sim.build_notification("T20261201000002", signature="WECHATPAY/SIGNTEST/AAAA")
    answer = httpx.post(receiver.url, content=body, headers=headers)
    assert answer.status_code == 500
    assert answer.json() == {"code": "FAIL", "message": "失败"}
    assert receiver.results == []
    assert "SIGNTEST" in receiver.rejections[0]


@pytest.fixture
def paid(wx: WechatPay, sim: WechatPaySim) -> str:
    wx.page_payment(charge("T20261201000003"))
    sim.pay("T20261201000003")
    return "T20261201000003"


def _rejected(wx: WechatPay, headers: dict[str, str], body: bytes, match: str) -> None:
    with pytest.raises(NotificationRejected, match=match):
        wx.parse_notification(headers, body, datetime.now(UTC))


def test_notification_with_a_bad_signature(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    headers, body = sim.build_notification(paid)
    _rejected(wx, headers, body.replace(b"TRANSACTION", b"TRANSACTIOM"), "bad signature")
    other = PlatformKey.generate()
    forged = base64.b64encode(
        other.key.sign(
            f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
            + body
            + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    ).decode()
    _rejected(wx, {**headers, "Wechatpay-Signature": forged}, body, "bad signature")
    _rejected(wx, {**headers, "Wechatpay-Signature": "not base64!"}, body, "bad signature")


def test_notification_signature_probe(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    headers, body = sim.build_notification(
        paid, signature="WECHATPAY/SIGNTEST/" + base64.b64encode(b"x" * 256).decode()
    )
    _rejected(wx, headers, body, "SIGNTEST")


def test_notification_stale_or_from_the_future(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    headers, body = sim.build_notification(paid, timestamp=now - 310)
    _rejected(wx, headers, body, "stale")
    headers, body = sim.build_notification(paid, timestamp=now + 310)
    _rejected(wx, headers, body, "future")
    headers, body = sim.build_notification(paid, timestamp=now - 200)  # within 5 minutes
    assert wx.parse_notification(headers, body, datetime.now(UTC)).out_trade_no == paid


def test_notification_with_an_unknown_serial(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    headers, body = sim.build_notification(paid, serial="5157F09EFDC096DE15EBE81A47057A72")
    _rejected(wx, headers, body, "unknown Wechatpay-Serial")
    headers, body = sim.build_notification(paid, serial="PUB_KEY_ID_0000000000000000000000000")
    _rejected(wx, headers, body, "unknown Wechatpay-Serial")


def test_notification_with_a_tampered_ciphertext(
    wx: WechatPay, sim: WechatPaySim, paid: str
) -> None:
    headers, body = sim.build_notification(paid, corrupt_ciphertext=True)
    _rejected(wx, headers, body, "does not decrypt")


def test_notification_malformed(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    for body in (b"not json", b"[]", b'{"resource": {"algorithm": "AEAD_AES_256_GCM"}}', b""):
        _rejected(wx, sim.signed_headers(body), body, "malformed")
    headers, body = sim.build_notification(
        paid, resource={"out_trade_no": paid, "trade_state": "?"}
    )
    _rejected(wx, headers, body, "malformed resource")
    _rejected(wx, {}, b"{}", "not signed")


def test_notification_for_another_merchant(wx: WechatPay, sim: WechatPaySim, paid: str) -> None:
    doc = {**sim.transaction_doc(sim.trades[paid]), "mchid": "1999999999"}
    headers, body = sim.build_notification(paid, resource=doc)
    _rejected(wx, headers, body, "another merchant")


def test_a_refund_notification_is_not_a_payment(
    wx: WechatPay, sim: WechatPaySim, paid: str
) -> None:
    headers, body = sim.build_notification(paid, event_type="REFUND.SUCCESS")
    _rejected(wx, headers, body, "not a payment notification")


def test_notification_reply(wx: WechatPay) -> None:
    ok = wx.notification_reply(True)
    assert ok.status in (200, 204)
    assert ok.body == b""
    fail = wx.notification_reply(False)
    assert fail.status == 500
    assert json.loads(fail.body)["code"] == "FAIL"
