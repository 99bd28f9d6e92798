"""Licence-plate camera (LPR/ANPR) protocol adapters: one pure module per vendor.

Each vendor module has ``parse(push, *, max_image_bytes, tz) -> PlateRead |
Heartbeat`` (raising ``BadPayload``), ``reply(event, *, open) -> Reply`` and
``OPENS_BY_REPLY`` (Vzenith and HXZX open through the reply; Hikvision and
Dahua through ``barrier.async_open_barrier``). ``ADAPTERS`` maps a vendor
code (``Camera.vendor``) to its module's functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from eppark.devices.lpr import dahua, hikvision, hxzx, vzenith
from eppark.devices.lpr.events import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_TZ,
    VENDORS,
    BadPayload,
    Event,
    Heartbeat,
    HttpPush,
    Image,
    PlateRead,
    Reply,
    Vendor,
)


class Parser(Protocol):
    """A vendor's ``parse`` function."""

    def __call__(
        self, push: HttpPush, *, max_image_bytes: int = ..., tz: ZoneInfo = ...
    ) -> Event: ...


class Replier(Protocol):
    """A vendor's ``reply`` function."""

    def __call__(self, event: Event, *, open: bool = ...) -> Reply: ...


@dataclass(frozen=True)
class Adapter:
    """One vendor's parse and reply functions."""

    vendor: Vendor
    parse: Parser
    reply: Replier
    opens_by_reply: bool


ADAPTERS: Final[Mapping[Vendor, Adapter]] = {
    "vzenith": Adapter("vzenith", vzenith.parse, vzenith.reply, vzenith.OPENS_BY_REPLY),
    "hxzx": Adapter("hxzx", hxzx.parse, hxzx.reply, hxzx.OPENS_BY_REPLY),
    "hikvision": Adapter("hikvision", hikvision.parse, hikvision.reply, hikvision.OPENS_BY_REPLY),
    "dahua": Adapter("dahua", dahua.parse, dahua.reply, dahua.OPENS_BY_REPLY),
}


def adapter(vendor: str) -> Adapter:
    """The adapter for a vendor code, or KeyError naming the known ones."""
    try:
        return ADAPTERS[vendor]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"unknown LPR vendor {vendor!r} (known: {', '.join(VENDORS)})") from None


__all__ = [
    "ADAPTERS",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_TZ",
    "VENDORS",
    "Adapter",
    "BadPayload",
    "Event",
    "Heartbeat",
    "HttpPush",
    "Image",
    "PlateRead",
    "Reply",
    "Vendor",
    "adapter",
]
