"""The call-centre event every provider's push is read into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    """What happened to a call."""

    RINGING = "ringing"
    ANSWERED = "answered"
    HANGUP = "hangup"
    OUTBOUND_CONNECTED = "outbound_connected"


class BadEvent(ValueError):
    """A push that is not a call event this provider sends (the message names the field)."""


class Ignored(Exception):
    """A genuine push about nothing EP Park follows (a callout's ringing): answered 200, kept
    nowhere."""


class BadSignature(Exception):
    """A push whose signature is missing or wrong."""


@dataclass(frozen=True, slots=True)
class CtiEvent:
    """One call event: which call, who called whom, on which seat, when."""

    event: EventKind
    call_id: str
    caller: str
    callee: str
    seat: str
    at: datetime
    request_id: str = ""  # our callout's id, when the provider echoes it


PHONE_CHARS = frozenset("0123456789+-#*")


def clean_number(value: object, field: str, *, required: bool = False) -> str:
    """A phone number as the call centre wrote it (digits, +, -, #, *), trimmed."""
    if value is None:
        value = ""
    if not isinstance(value, str | int):
        raise BadEvent(f"{field}: must be a phone number")
    text = str(value).strip()
    if required and not text:
        raise BadEvent(f"{field}: required")
    if len(text) > 32 or any(ch not in PHONE_CHARS for ch in text):
        raise BadEvent(f"{field}: not a phone number")
    return text


def clean_seat(value: object) -> str:
    """A seat number (坐席号): 1–8 digits or letters; empty when not given."""
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise BadEvent("seat: must be a seat number")
    text = str(value).strip()
    if len(text) > 8 or not all(ch.isascii() and ch.isalnum() for ch in text):
        raise BadEvent("seat: 1 to 8 letters or digits")
    return text


def clean_call_id(value: object, field: str = "call_id") -> str:
    """The call centre's id of the call."""
    if not isinstance(value, str | int) or not str(value).strip():
        raise BadEvent(f"{field}: required")
    text = str(value).strip()
    if len(text) > 128 or any(ord(ch) < 32 for ch in text):
        raise BadEvent(f"{field}: at most 128 printable characters")
    return text
