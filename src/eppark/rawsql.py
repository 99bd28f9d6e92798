"""Raw SQL helpers for the hot paths, portable over PostgreSQL and SQLite.

The gate loop runs a handful of plain statements per plate read instead of
the ORM's (whose query building costs more than the database itself). Values
go through Django's own adapters, so a raw row reads and writes exactly what
the ORM would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime


def ts(value: datetime | None) -> Any:
    """A datetime as the database takes it (SQLite: naive UTC text)."""
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def js(value: Any) -> Any:
    """A JSON value as the database takes it (PostgreSQL: jsonb)."""
    return connection.ops.adapt_json_value(value, None)


def aware(value: Any) -> datetime:
    """A datetime column read by a raw query, as an aware datetime (SQLite gives naive UTC)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a datetime: {value!r}")
        value = parsed
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aware_or_none(value: Any) -> datetime | None:
    """``aware``, keeping NULL."""
    return None if value is None else aware(value)


def any_of(values: Sequence[Any]) -> tuple[str, Any]:
    """``column <fragment>`` matching any of ``values``, and its one parameter.

    One statement text whatever the list's length (PostgreSQL prepares it once):
    ``= ANY(array)``, or on SQLite ``IN`` over a JSON array.
    """
    if connection.vendor == "postgresql":
        return "= ANY(%s)", list(values)
    return "IN (SELECT value FROM json_each(%s))", json.dumps(list(values))


def loads(value: Any) -> Any:
    """A JSON column read by a raw query (Django has both databases hand it over as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def literal(*values: str) -> str:
    """Fixed values (an enum's) as SQL literals, comma-separated, to write into a statement.

    A lookup that must match a partial index names its state in the SQL: a prepared
    statement's generic plan cannot see inside a parameter. Only plain words are taken.
    """
    for value in values:
        if not re.fullmatch(r"[a-z_]+", value):
            raise ValueError(f"not a plain SQL word: {value!r}")
    return ", ".join(f"'{value}'" for value in values)
