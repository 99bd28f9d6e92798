"""TiNet Clink (天润融通): the screen-pop push (来电弹屏) and the OpenAPI v2 signing (protocols.md).

The push. Clink calls a URL the enterprise configures whenever a call rings,
is answered or hangs up; its exact parameter list is not public. This adapter
accepts the fields in the query string, in a form body
(``application/x-www-form-urlencoded``) or in a JSON object body, merged (the
body wins over the query), and reads them through ``FIELDS``: one table from
our fields to the names Clink is known or likely to use. Names are compared
without case and without ``_`` or ``-`` (``customerNumber``, ``customer_number``
and ``CUSTOMERNUMBER`` are one name); unknown names are ignored (a push carries
much we do not use). Event words go through ``EVENTS`` the same way.

In Clink's words ``customerNumber`` is the customer's side of a call and the
hotline (``hotline``, ``numberTrunk``) ours: on an inbound call the customer
(a robot's SIM) is the caller; on an outbound call it is the callee, so an
``outbound_connected`` event swaps them. An ``answered`` whose ``callType`` says
outbound is the callout connecting; a ``ringing`` of an outbound call (the robot's
SIM ringing) is no call of its own: it is acknowledged and ignored (``Ignored``).

The signature. The push's exact signing is not public either. The reading
chosen here is the scheme of TiNet's OpenAPI v2, which the project also uses for
its callouts: the query carries ``AccessKeyId``, ``Expires`` (seconds the
signature is good for, at most a day), ``Timestamp`` (UTC
``yyyy-MM-ddTHH:mm:ssZ``) and ``Signature`` = Base64(HMAC-SHA1(secret, METHOD +
host + path + "?" + the other query parameters sorted by name, each
``name=value`` percent-encoded as RFC 3986 and joined by ``&``)). When the
integration has a secret, a push without these, with a wrong signature, or
past ``Timestamp + Expires`` (or stamped in the future beyond a small clock
skew) is refused (``BadSignature``). As in the OpenAPI, only the query is
signed: a form body is not covered, so a centre with a secret should put the
event fields in the query (signed pushes are also idempotent here: a replay
within the window changes nothing). ``AccessKeyId`` is signed but not
compared with the integration's: the secret is what proves the sender.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

from eppark.calls.cti.events import (
    BadEvent,
    BadSignature,
    CtiEvent,
    EventKind,
    Ignored,
    clean_call_id,
    clean_number,
    clean_seat,
)

CHINA = ZoneInfo("Asia/Shanghai")
"""Clink's times without an offset are Beijing time."""

FIELDS: dict[str, tuple[str, ...]] = {
    "caller": ("customerNumber", "customer_number", "caller", "cli"),
    "seat": ("cno", "seat"),
    "callee": ("hotline", "callee", "numberTrunk"),
    "call_id": ("mainUniqueId", "uniqueId", "callId"),
    "event": ("event", "type", "callType"),
    "at": ("timestamp", "startTime", "at"),
    "request_id": ("requestUniqueId", "request_id"),
}
"""Our field → the names a Clink push may give it, the first present one winning."""

EVENTS: dict[str, EventKind] = {
    **dict.fromkeys(
        ("ring", "ringing", "incoming", "来电", "振铃", "呼入"),
        EventKind.RINGING,
    ),
    **dict.fromkeys(("answer", "answered", "connected", "接听", "接通"), EventKind.ANSWERED),
    **dict.fromkeys(
        ("hangup", "hungup", "hang_up", "bye", "end", "ended", "挂机", "挂断"),
        EventKind.HANGUP,
    ),
    **dict.fromkeys(
        (
            "outbound_connected",
            "outbound",
            "callout",
            "callout_connected",
            "outbound_answered",
            "外呼接通",
        ),
        EventKind.OUTBOUND_CONNECTED,
    ),
}
"""Clink's event words (normalised: lower case, ``-`` and spaces as ``_``) → our event."""

SIGNING_PARAMETERS = ("AccessKeyId", "Expires", "Timestamp", "Signature")
MAX_EXPIRES = 86400
CLOCK_SKEW = timedelta(minutes=5)
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_FIELD = 256

_SQUEEZE = re.compile(r"[_\-\s]")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


# --- signing (OpenAPI v2) ---------------------------------------------------------------------


def percent(text: str) -> str:
    """RFC 3986 percent-encoding, as TiNet's SDKs write it (space is %20, ``~`` stays)."""
    return quote(text, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The query as signed: every parameter but ``Signature``, sorted by name, encoded."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in pairs)


def signature(secret: str, method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    """Base64(HMAC-SHA1(secret, METHOD + host + path + "?" + canonical query))."""
    text = f"{method.upper()}{host}{path}?{canonical_query(params)}"
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_params(
    access_key_id: str,
    secret: str,
    method: str,
    host: str,
    path: str,
    now: datetime,
    *,
    expires: int = 60,
    params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The query of a signed request: ``params`` plus AccessKeyId, Expires, Timestamp, Signature."""
    query = {
        **(params or {}),
        "AccessKeyId": access_key_id,
        "Expires": str(expires),
        "Timestamp": now.astimezone(UTC).strftime(TIMESTAMP_FORMAT),
    }
    query["Signature"] = signature(secret, method, host, path, query)
    return query


def verify(
    secret: str,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    now: datetime,
) -> None:
    """Refuse a request that is unsigned, wrongly signed or expired (no secret: nothing to do)."""
    if not secret:
        return
    missing = [name for name in SIGNING_PARAMETERS if not query.get(name)]
    if missing:
        raise BadSignature(f"unsigned: {', '.join(missing)} missing from the query")
    if not method or not host or not path:
        raise BadSignature("cannot check the signature: request line unknown")
    expected = signature(secret, method, host, path, query)
    if not hmac.compare_digest(expected.encode(), query["Signature"].encode()):
        raise BadSignature("wrong Signature")
    try:
        stamped = datetime.strptime(query["Timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        expires = int(query["Expires"])
    except ValueError:
        raise BadSignature("Timestamp or Expires unreadable") from None
    if not 0 < expires <= MAX_EXPIRES:
        raise BadSignature(f"Expires must be 1 to {MAX_EXPIRES} seconds")
    if stamped > now + CLOCK_SKEW:
        raise BadSignature("Timestamp is in the future")
    if now > stamped + timedelta(seconds=expires):
        raise BadSignature("signature expired")


# --- the push ---------------------------------------------------------------------------------


def _squeeze(name: str) -> str:
    return _SQUEEZE.sub("", name).lower()


_ALIASES: dict[str, dict[str, int]] = {
    ours: {_squeeze(alias): rank for rank, alias in enumerate(aliases)}
    for ours, aliases in FIELDS.items()
}


def fields_of(body: bytes, content_type: str, query: Mapping[str, str]) -> dict[str, str]:
    """The push's parameters: the query's, then the body's (form or JSON object) over them."""
    merged = {k: v for k, v in query.items() if k not in SIGNING_PARAMETERS}
    text = body.strip()
    if not text:
        return merged
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEvent("body: not UTF-8") from None
    if "json" in content_type.lower() or decoded.startswith("{"):
        try:
            data: Any = json.loads(decoded)
        except ValueError:
            raise BadEvent("body: not a JSON object") from None
        if not isinstance(data, dict):
            raise BadEvent("body: not a JSON object")
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, dict | list | bool):
                continue  # nested data we do not read
            merged[str(name)] = str(value)
        return merged
    try:
        pairs = parse_qsl(decoded, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadEvent("body: not a form (name=value&…)") from None
    merged.update(pairs)
    return merged


def pick(params: Mapping[str, str], ours: str) -> str:
    """Our field ``ours`` from the push: the first of its aliases present (and not blank)."""
    aliases = _ALIASES[ours]
    found = sorted(
        (aliases[_squeeze(name)], value.strip())
        for name, value in params.items()
        if _squeeze(name) in aliases and value.strip()
    )
    if not found:
        return ""
    value = found[0][1]
    if len(value) > MAX_FIELD:
        raise BadEvent(f"{ours}: too long")
    return value


def event_kind(word: str) -> EventKind:
    """Our event for Clink's word."""
    kind = EVENTS.get(_SQUEEZE.sub("_", word.strip()).lower())
    if kind is None:
        known = ", ".join(sorted({str(k) for k in EVENTS.values()}))
        raise BadEvent(f"event: {word!r} is not a call event ({known} or Clink's words)")
    return kind


def moment(value: str, now: datetime) -> datetime:
    """When: epoch seconds or milliseconds, ISO 8601, or Beijing local time; else ``now``."""
    if not value:
        return now
    if value.isdigit():
        number = int(value)
        seconds = number / 1000 if number >= 10**11 else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadEvent("at: not a time") from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadEvent("at: not a time (epoch, ISO 8601 or yyyy-MM-dd HH:mm:ss)") from None
    if parsed.tzinfo is None:
        if not _LOCAL_TIME.fullmatch(value):
            raise BadEvent("at: not a time (epoch, ISO 8601 or yyyy-MM-dd HH:mm:ss)")
        parsed = parsed.replace(tzinfo=CHINA)
    return parsed


def _says_outbound(params: Mapping[str, str]) -> bool:
    """Whether another of the event's names (``callType``) calls this an outbound call."""
    aliases = _ALIASES["event"]
    words = [v for k, v in params.items() if _squeeze(k) in aliases]
    squeezed = [_SQUEEZE.sub("_", w.strip()).lower() for w in words]
    return any(EVENTS.get(w) is EventKind.OUTBOUND_CONNECTED for w in squeezed)


def parse(body: bytes, content_type: str, query: Mapping[str, str], now: datetime) -> CtiEvent:
    """One event from a push (fields through ``FIELDS``, words through ``EVENTS``)."""
    params = fields_of(body, content_type, query)
    word = pick(params, "event")
    if not word:
        raise BadEvent("event: required (event, type or callType)")
    kind = event_kind(word)
    if _says_outbound(params) and kind is not EventKind.OUTBOUND_CONNECTED:
        if kind is EventKind.ANSWERED:
            kind = EventKind.OUTBOUND_CONNECTED  # event=answered with callType=outbound
        elif kind is EventKind.RINGING:  # the robot's SIM ringing for a callout: not a call
            raise Ignored("an outbound call's ringing")
    customer = clean_number(pick(params, "caller"), "caller")
    hotline = clean_number(pick(params, "callee"), "callee")
    caller, callee = (
        (hotline, customer)
        if kind is EventKind.OUTBOUND_CONNECTED
        else (
            customer,
            hotline,
        )
    )
    request_id = pick(params, "request_id")
    if len(request_id) > 64:
        raise BadEvent("request_id: at most 64 characters")
    return CtiEvent(
        event=kind,
        call_id=clean_call_id(pick(params, "call_id") or None, "call_id (mainUniqueId)"),
        caller=caller,
        callee=callee,
        seat=clean_seat(pick(params, "seat")),
        at=moment(pick(params, "at"), now),
        request_id=request_id,
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value


def read(
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    secret: str,
    *,
    now: datetime | None = None,
) -> CtiEvent:
    """A pushed screen-pop request, checked and read.

    ``headers`` carry the request line as pseudo-headers (``:method``, ``:authority``,
    ``:path``: see ``eppark.calls.views``) for the signature.
    """
    now = now or datetime.now(UTC)
    verify(
        secret,
        _header(headers, ":method"),
        _header(headers, ":authority"),
        _header(headers, ":path"),
        query,
        now,
    )
    return parse(body, _header(headers, "Content-Type"), query, now)
