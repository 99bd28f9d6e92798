"""The generic JSON provider (contracts.md "Call centre and the agent desk").

Events: ``POST /cti/generic/{key}`` with a JSON object
``{"event", "call_id", "caller", "callee", "seat", "at"}``; when the integration has
a secret, ``X-EPPark-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.
Callouts: the project POSTs ``{"seat", "number", "request_id"}`` to the provider's
``callout_url``, signed the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from eppark.calls.cti.events import (
    BadEvent,
    BadSignature,
    CtiEvent,
    EventKind,
    clean_call_id,
    clean_number,
    clean_seat,
)

SIGNATURE_HEADER = "X-EPPark-Signature"
FIELDS = frozenset({"event", "call_id", "caller", "callee", "seat", "at", "request_id"})


def signature(secret: str, body: bytes) -> str:
    """The header value that signs ``body``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> None:
    """Refuse a body whose signature is missing or wrong (no secret: nothing to check)."""
    if not secret:
        return
    if not header or not hmac.compare_digest(header.strip(), signature(secret, body)):
        raise BadSignature("missing or wrong X-EPPark-Signature")


def parse(body: bytes) -> CtiEvent:
    """One event from the provider's JSON body."""
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadEvent("body: not a JSON object") from error
    if not isinstance(data, dict):
        raise BadEvent("body: not a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise BadEvent(f"{unknown[0]}: unknown field")
    try:
        kind = EventKind(str(data.get("event")))
    except ValueError as error:
        raise BadEvent(
            "event: must be one of ringing, answered, hangup, outbound_connected"
        ) from error
    at = data.get("at")
    if not isinstance(at, str):
        raise BadEvent("at: required, ISO 8601 with a UTC offset")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as error:
        raise BadEvent("at: not an ISO 8601 time") from error
    if moment.tzinfo is None:
        raise BadEvent("at: needs a UTC offset")
    request_id = data.get("request_id") or ""
    if not isinstance(request_id, str) or len(request_id) > 64:
        raise BadEvent("request_id: at most 64 characters")
    return CtiEvent(
        event=kind,
        call_id=clean_call_id(data.get("call_id")),
        caller=clean_number(data.get("caller"), "caller"),
        callee=clean_number(data.get("callee"), "callee"),
        seat=clean_seat(data.get("seat")),
        at=moment,
        request_id=request_id,
    )


def callout_body(seat: str, number: str, request_id: str) -> bytes:
    """The callout request the project POSTs to ``callout_url``."""
    return json.dumps(
        {"seat": seat, "number": number, "request_id": request_id}, ensure_ascii=False
    ).encode()


def read(
    body: bytes, headers: Mapping[str, str], query: Mapping[str, str], secret: str
) -> CtiEvent:
    """A pushed request, checked and read: its signature first, then its JSON."""
    verify(secret, body, headers.get(SIGNATURE_HEADER))
    return parse(body)
