"""WeChat Pay's documented payloads (tests/fixtures/wechatpay/) read by the adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from eppark.payments.providers.base import NotificationRejected, TradeState
from eppark.payments.providers.wechat import WechatPay, parse_tradebill
from eppark.sim.wechatpay import TestKeys, encrypt_resource, generate_keys

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wechatpay"
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def keys() -> TestKeys:
    return generate_keys(mchid="1230000109", appid="wxd678efh567hg6787")


def _adapter(keys: TestKeys) -> WechatPay:
    return WechatPay(
        mchid=keys.mchid,
        appid=keys.appid,
        apiv3_key=keys.apiv3_key.encode(),
        private_key=keys.merchant_key,
        cert_serial=keys.merchant_serial,
        public_key=keys.platform.key.public_key(),
        public_key_id=keys.platform.public_key_id,
    )


def _notification(keys: TestKeys, resource: bytes, now: datetime) -> tuple[dict[str, str], bytes]:
    """The documented envelope and headers, filled in and signed as WeChat Pay does."""
    from eppark.sim.wechatpay import WechatPaySim

    envelope = json.loads((FIXTURES / "notification_envelope.json").read_text("utf-8"))
    envelope["resource"].update(encrypt_resource(keys.apiv3_key, resource, "transaction"))
    body = json.dumps(envelope, ensure_ascii=False).encode()
    signed = WechatPaySim(keys).signed_headers(body, timestamp=int(now.timestamp()))
    headers = json.loads((FIXTURES / "notification_headers.json").read_text("utf-8"))
    assert set(headers) <= set(signed)
    headers.update(signed)
    headers["Wechatpay-Serial"] = keys.platform.public_key_id
    return {name.lower(): value for name, value in headers.items()}, body  # any header case


def test_the_documented_notification_is_read(keys: TestKeys) -> None:
    now = datetime.now(UTC)
    resource = (FIXTURES / "notification_resource.json").read_bytes()
    headers, body = _notification(keys, resource, now)
    result = _adapter(keys).parse_notification(headers, body, now)
    assert result.out_trade_no == "1217752501201407033233368018"
    assert result.transaction_id == "1217752501201407033233368018"
    assert result.state == TradeState.SUCCESS
    assert result.amount == 500
    assert result.payer == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert result.paid_at == datetime(2018, 6, 8, 10, 34, 56, tzinfo=CST)


def test_a_notification_is_judged_by_the_given_clock(keys: TestKeys) -> None:
    now = datetime.now(UTC)
    resource = (FIXTURES / "notification_resource.json").read_bytes()
    headers, body = _notification(keys, resource, now)
    with pytest.raises(NotificationRejected, match="stale"):
        _adapter(keys).parse_notification(headers, body, now + timedelta(minutes=5, seconds=1))


def test_the_documented_trade_bill_is_read() -> None:
    lines = parse_tradebill((FIXTURES / "tradebill_all.csv").read_text("utf-8"))
    assert [(x.out_trade_no, x.state, x.amount) for x in lines] == [
        ("T20190610000001", TradeState.SUCCESS, 500),
        ("T20190610000002", TradeState.SUCCESS, 1250),
        ("T20190610000001", TradeState.REFUND, 200),
    ]
    assert lines[0].transaction_id == "4200000346201906105076263380"
    assert lines[1].at == datetime(2019, 6, 10, 8, 15, 2, tzinfo=CST)


def test_an_empty_bill_and_a_file_that_is_no_bill() -> None:
    assert parse_tradebill("") == []
    with pytest.raises(ValueError, match="not a WeChat Pay trade bill"):
        parse_tradebill("a,b,c\n1,2,3\n")
    header = (FIXTURES / "tradebill_all.csv").read_text("utf-8").splitlines()[0]
    with pytest.raises(ValueError, match="fen"):
        parse_tradebill(
            header + "\n`2019-06-10 00:00:13,`wx,`1,`0,`,`42,`T1,`o,`NATIVE,`SUCCESS,`OTHERS,"
            "`CNY,`5.001,`0.00,`0,`0,`0.00,`0.00,`,`,`x,`,`0,`0.60%,`5.001,`0.00,`\n"
        )
