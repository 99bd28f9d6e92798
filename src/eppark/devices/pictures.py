"""Pictures from devices: fetching one by URL within limits, and telling JPEG from PNG.

Used for the robot's ID photos sent by URL and the Ezviz snapshots' ``picUrl``: a
picture is fetched with a timeout and a size limit, no redirects, no proxy from the
environment, and accepted only when its first bytes are a JPEG's or a PNG's.
"""

from __future__ import annotations

import time

import httpx
from django.utils.translation import gettext as _

TIMEOUT_S = 5.0
JPEG = "image/jpeg"
PNG = "image/png"
_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
EXTENSIONS = {JPEG: "jpg", PNG: "png"}


def picture_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` by the data's magic bytes; None for anything else."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


class FetchError(Exception):
    """A picture could not be fetched: unreachable, refused, too large."""


def fetch(url: str, max_bytes: int, timeout: float = TIMEOUT_S) -> bytes:
    """GET ``url`` (http or https, no redirects), refusing more than ``max_bytes``."""
    if not url.startswith(("http://", "https://")):
        raise FetchError(_("not an http(s) address"))
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchError(_("HTTP %(status)d") % {"status": response.status_code})
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(_("larger than %(n)d bytes") % {"n": max_bytes})
            body = bytearray()
            for piece in response.iter_bytes():
                body.extend(piece)
                if len(body) > max_bytes:
                    raise FetchError(_("larger than %(n)d bytes") % {"n": max_bytes})
                if time.monotonic() > deadline:
                    raise FetchError(_("took longer than %(s)g s") % {"s": timeout})
            return bytes(body)
    except httpx.HTTPError as error:
        raise FetchError(str(error) or type(error).__name__) from error
