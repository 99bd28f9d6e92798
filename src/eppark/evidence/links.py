"""Links to evidence files: signed and expiring for robots and phones, plain for staff.

A signed link names the record, the field, a digest of the file it held when
the link was made, and when the link expires; ``django.core.signing`` (salted,
keyed by ``SECRET_KEY``) makes it tamper-proof. It carries no storage path: the
file is found from the record, and a record whose file changed since answers
no longer. A link in a robot's ``present`` command lives as long as the
prompt (``EPPARK_PRESENT_TTL_S``) plus ``MARGIN_S`` (a robot that receives the
command late, a phone that reloads the screen).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "eppark.evidence"
MARGIN_S = 300


class LinkError(Exception):
    """A signed link that is not one of ours (tampered, truncated, malformed)."""


class LinkExpired(LinkError):
    """A genuine signed link past its expiry."""


@dataclass(frozen=True)
class Link:
    """What a signed link points at."""

    kind: str
    pk: int
    field: str
    digest: str  # of the file's stored name
    expires: int  # Unix time

    def names(self, name: str | None) -> bool:
        """Whether the link was made for the stored file ``name``."""
        return bool(name) and digest(name or "") == self.digest


def digest(name: str) -> str:
    """A short fingerprint of a stored file name (the name itself stays on the server)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def link_ttl() -> int:
    """Seconds a link sent with a robot's prompt stays valid."""
    return int(getattr(settings, "EPPARK_PRESENT_TTL_S", 120)) + MARGIN_S


def public_url() -> str:
    """Where robots and drivers' phones reach this server."""
    return str(getattr(settings, "EPPARK_PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")


def sign(
    kind: str, pk: int, field: str, name: str, *, ttl: int | None = None, now: float | None = None
) -> str:
    """A token for the file ``name`` held in ``field`` of record ``kind``/``pk``."""
    issued = time.time() if now is None else now
    expires = int(issued + (link_ttl() if ttl is None else ttl))
    payload = {"k": kind, "i": pk, "f": field, "n": digest(name), "e": expires}
    return signing.dumps(payload, salt=SALT, compress=True)


def signed_url(
    kind: str, pk: int, field: str, name: str, *, ttl: int | None = None, now: float | None = None
) -> str:
    """The absolute, signed, expiring URL of one evidence file (under EPPARK_PUBLIC_URL)."""
    token = sign(kind, pk, field, name, ttl=ttl, now=now)
    return public_url() + reverse("evidence:signed", args=[token])


def read(token: str, *, now: float | None = None, check_expiry: bool = True) -> Link:
    """The link a token stands for; LinkError if forged, LinkExpired if past its time."""
    try:
        data: Any = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError) as exc:
        raise LinkError("not a valid evidence link") from exc
    if not (
        isinstance(data, dict)
        and isinstance(data.get("k"), str)
        and isinstance(data.get("i"), int)
        and isinstance(data.get("f"), str)
        and isinstance(data.get("n"), str)
        and isinstance(data.get("e"), int)
    ):
        raise LinkError("not a valid evidence link")
    link = Link(data["k"], data["i"], data["f"], data["n"], data["e"])
    if check_expiry and link.expires <= (time.time() if now is None else now):
        raise LinkExpired("the evidence link has expired")
    return link


def staff_path(kind: str, pk: int, field: str) -> str:
    """The staff URL of one evidence file (login and the record's lot checked when opened)."""
    return reverse("evidence:staff", args=[kind, pk, field])


def staff_path_for(url: str) -> str | None:
    """The staff URL of the file a signed link points at (expired or not); None if not ours.

    The console mirrors a robot's screen long after the links it was sent have
    expired; staff see those photos through the checked staff view instead.
    """
    segments = [part for part in urlsplit(url).path.split("/") if part]
    if len(segments) < 3 or segments[-2] != "s":
        return None
    try:
        link = read(segments[-1], check_expiry=False)
    except LinkError:
        return None
    return staff_path(link.kind, link.pk, link.field)
