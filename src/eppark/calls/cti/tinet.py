"""TiNet Clink (天润融通): the screen-pop push and the OpenAPI v2 callout (protocols.md)."""

from __future__ import annotations

from collections.abc import Mapping

from eppark.calls.cti.events import BadEvent, CtiEvent


def read(
    body: bytes, headers: Mapping[str, str], query: Mapping[str, str], secret: str
) -> CtiEvent:
    """A pushed screen-pop request, checked and read."""
    raise BadEvent("tinet: not implemented yet")
