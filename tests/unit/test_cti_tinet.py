"""The TiNet Clink adapter: vendor-shaped pushes (query and form), signing, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from eppark.calls.cti import tinet
from eppark.calls.cti.events import BadEvent, BadSignature, EventKind, Ignored

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tinet"
NOW = datetime(2026, 12, 1, 10, 0, 10, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
SECRET = "tinet-secret-for-tests"
HOST = "park.example.com"
PATH = "/cti/tinet/k-tinet-1"


def request_line(method: str = "POST", host: str = HOST, path: str = PATH) -> dict[str, str]:
    return {":method": method, ":authority": host, ":path": path}


def as_query(name: str) -> dict[str, str]:
    return dict(parse_qsl((FIXTURES / name).read_text("utf-8")))


def test_ringing_in_the_query_string() -> None:
    event = tinet.read(b"", request_line(), as_query("ringing.query"), "", now=NOW)
    assert event.event is EventKind.RINGING
    assert event.caller == "14400000001"
    assert event.callee == "4008001234"
    assert event.seat == "1001"
    assert event.call_id == "medias_1-1796119200.1234"  # mainUniqueId over uniqueId
    assert event.at == datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)  # ms epoch


def test_answered_in_a_form_body_with_chinese_words_and_beijing_time() -> None:
    body = (FIXTURES / "answered.form").read_bytes()
    event = tinet.read(body, {**request_line(), "Content-Type": FORM}, {}, "", now=NOW)
    assert event.event is EventKind.ANSWERED  # type=接听
    assert event.caller == "14400000001"  # customer_number
    assert event.callee == "4008001234"  # numberTrunk
    assert event.seat == "1001"
    assert event.at == datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)  # 18:00:05 in Beijing


def test_hangup_form_with_seconds_epoch() -> None:
    body = (FIXTURES / "hangup.form").read_bytes()
    event = tinet.read(body, {"content-type": FORM}, {}, "", now=NOW)
    assert event.event is EventKind.HANGUP  # 挂机
    assert event.at == datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)


def test_outbound_answer_is_outbound_connected_with_the_robot_as_callee() -> None:
    event = tinet.read(b"", request_line(), as_query("outbound.query"), "", now=NOW)
    assert event.event is EventKind.OUTBOUND_CONNECTED  # event=answered, callType=outbound
    assert event.callee == "14400000001"  # the customer's side: the robot dialled
    assert event.caller == "075586001234"
    assert event.request_id == "8f14e45fceea167a5a36dedd4bea2543"


def test_an_outbound_calls_ringing_is_ignored() -> None:
    query = {**as_query("outbound.query"), "event": "ringing"}
    with pytest.raises(Ignored):
        tinet.read(b"", {}, query, "", now=NOW)
    hangup = tinet.read(b"", {}, {**query, "event": "hangup"}, "", now=NOW)
    assert hangup.event is EventKind.HANGUP


def test_json_body_and_names_in_any_case() -> None:
    body = (FIXTURES / "ringing.json").read_bytes()
    event = tinet.read(body, {"Content-Type": "application/json"}, {}, "", now=NOW)
    assert event.event is EventKind.RINGING  # "Ring"
    assert event.call_id == "medias_1-1796119200.1234"  # uniqueId
    assert event.at == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    shouting = {"CUSTOMER_NUMBER": "14400000001", "CNO": "1002", "UNIQUEID": "x-1", "EVENT": "来电"}
    event = tinet.read(b"", {}, shouting, "", now=NOW)
    assert (event.caller, event.seat, event.call_id) == ("14400000001", "1002", "x-1")
    assert event.at == NOW  # no time given: when it arrived


def test_body_wins_over_query() -> None:
    body = b"event=hangup&mainUniqueId=c-1"
    event = tinet.read(body, {}, {"event": "ringing", "cno": "1001"}, "", now=NOW)
    assert event.event is EventKind.HANGUP
    assert event.seat == "1001"


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ({"mainUniqueId": "c-1"}, b"", "event"),
        ({"event": "dancing", "mainUniqueId": "c-1"}, b"", "event"),
        ({"event": "ringing"}, b"", "call_id"),
        ({"event": "ringing", "mainUniqueId": "c-1", "customerNumber": "abc"}, b"", "caller"),
        ({"event": "ringing", "mainUniqueId": "c-1", "cno": "seat 1"}, b"", "seat"),
        ({"event": "ringing", "mainUniqueId": "c-1", "timestamp": "9" * 30}, b"", "at"),
        ({"event": "ringing", "mainUniqueId": "c-1", "startTime": "yesterday"}, b"", "at"),
        ({"event": "ringing", "mainUniqueId": "c-1", "startTime": "2026-12-01"}, b"", "at"),
        ({}, b"\xff\xfe", "body"),
        ({}, b"[1, 2]", "body"),
        ({}, b"{broken", "body"),
        ({}, b"a=1&&b", "body"),
        ({"event": "ringing", "mainUniqueId": "c" * 300}, b"", "call_id"),
        ({"event": "ringing", "mainUniqueId": "c-1", "requestUniqueId": "r" * 65}, b"", "request"),
    ],
)
def test_bad_pushes_are_refused_naming_the_field(
    query: dict[str, str], body: bytes, field: str
) -> None:
    with pytest.raises(BadEvent) as refused:
        tinet.read(body, {}, query, "", now=NOW)
    assert str(refused.value).startswith(field)


# --- signing ------------------------------------------------------------------------------------


def signed(params: dict[str, str], at: datetime = NOW, **kwargs: object) -> dict[str, str]:
    return tinet.signed_params("AK-1", SECRET, "POST", HOST, PATH, at, params=params, **kwargs)  # type: ignore[arg-type]


def test_a_signed_push_is_read() -> None:
    query = signed(as_query("ringing.query"))
    assert set(tinet.SIGNING_PARAMETERS) <= set(query)
    assert query["Timestamp"] == "2026-12-01T10:00:10Z"
    event = tinet.read(b"", request_line(), query, SECRET, now=NOW + timedelta(seconds=30))
    assert event.event is EventKind.RINGING


def test_the_signature_is_openapi_v2s_string() -> None:
    """METHOD + host + path + "?" + sorted RFC 3986 query, HMAC-SHA1, Base64 (by hand)."""
    import base64
    import hashlib
    import hmac

    params = {"b": "x y", "a": "粤~*", "Signature": "ignored"}
    text = "POSTh/p?a=%E7%B2%A4~%2A&b=x%20y"
    expected = base64.b64encode(hmac.new(b"s", text.encode(), hashlib.sha1).digest()).decode()
    assert tinet.signature("s", "post", "h", "/p", params) == expected


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong_secret", "changed_field", "other_path", "expired", "future", "long_expiry"],
)
def test_bad_signatures_are_refused(tamper: str) -> None:
    query = signed(as_query("ringing.query"))
    line = request_line()
    now = NOW
    if tamper == "unsigned":
        query = as_query("ringing.query")
    elif tamper == "wrong_secret":
        query = tinet.signed_params("AK-1", "other", "POST", HOST, PATH, NOW, params=query)
    elif tamper == "changed_field":
        query["customerNumber"] = "14400000002"
    elif tamper == "other_path":
        line = request_line(path="/cti/tinet/other")
    elif tamper == "expired":
        now = NOW + timedelta(seconds=61)
    elif tamper == "future":
        now = NOW - timedelta(minutes=10)
    elif tamper == "long_expiry":
        query = signed(as_query("ringing.query"), expires=tinet.MAX_EXPIRES + 1)
    with pytest.raises(BadSignature):
        tinet.read(b"", line, query, SECRET, now=now)


def test_without_a_secret_signing_parameters_are_ignored() -> None:
    query = {**as_query("ringing.query"), "Signature": "whatever", "Expires": "x"}
    assert tinet.read(b"", {}, query, "", now=NOW).event is EventKind.RINGING


def test_the_field_table_is_the_one_place() -> None:
    """Every field of the event is read through ``FIELDS``; every event through ``EVENTS``."""
    assert set(tinet.FIELDS) == {"caller", "seat", "callee", "call_id", "event", "at", "request_id"}
    assert set(tinet.EVENTS.values()) == set(EventKind)
