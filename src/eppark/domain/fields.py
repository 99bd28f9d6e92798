"""Typed readers for JSON-shaped input: each names the field it rejects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from eppark.domain.errors import BadInput

_MISSING: Any = object()


def join(path: str, key: str | int) -> str:
    """Dotted/indexed path of a child field: ``join("lot", "x")`` → ``lot.x``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def obj(value: Any, path: str) -> Mapping[str, Any]:
    """A JSON object."""
    if not isinstance(value, Mapping):
        raise BadInput(path or "input", "must be a JSON object")
    return value


def require(container: Mapping[str, Any], key: str, path: str = "") -> Any:
    """The value of a required key."""
    if key not in container:
        raise BadInput(join(path, key), "is required")
    return container[key]


def integer(value: Any, path: str, *, minimum: int | None = None) -> int:
    """A JSON integer (booleans and floats are refused), optionally bounded below."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(path, "must be a whole number")
    if minimum is not None and value < minimum:
        raise BadInput(path, f"must be ≥ {minimum}")
    return value


def boolean(value: Any, path: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise BadInput(path, "must be true or false")
    return value


def string(value: Any, path: str) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise BadInput(path, "must be a string")
    return value


def timestamp(value: Any, path: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset (``Z`` or ``+08:00``)."""
    if not isinstance(value, str):
        raise BadInput(path, "must be an ISO 8601 time with an offset, as a string")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(path, f"{value!r} is not a valid ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadInput(path, f"{value!r} has no UTC offset (e.g. +08:00)")
    return parsed
