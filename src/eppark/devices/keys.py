"""Camera endpoint keys: the secret in ``/devices/lpr/<vendor>/<key>``, stored only as a digest.

A key is a random token (``new_key``: 32 URL-safe characters, about 190 bits),
so one SHA-256 of it is as good as a slow password hash and costs one hashlib
call per push. The database keeps the digest (to find the camera) and, for
keys long enough to spare them, the last four characters as a hint that tells
one key from another; the key itself is shown once, when it is set, and never
again.
"""

from __future__ import annotations

import hashlib
import secrets

HINT_LENGTH = 4
HINT_FROM = 12
"""Only keys of at least this many characters keep a hint (a short key would give itself away)."""


def random_secret(nbytes: int = 24) -> str:
    """A random URL-safe secret (letters, digits, - and _) that never starts with ``-``.

    Secrets are typed or pasted on command lines (``--password …``, a camera's web page); one
    starting with ``-`` would be read as an option there.
    """
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-"):
            return value


def new_key() -> str:
    """A fresh endpoint key."""
    return random_secret()


def key_digest(key: str) -> str:
    """The stored form of ``key``: its SHA-256, 64 hex digits."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_hint(key: str) -> str:
    """The last characters of a long key (empty for a short one)."""
    return key[-HINT_LENGTH:] if len(key) >= HINT_FROM else ""


def masked(hint: str, is_set: bool) -> str:
    """How a stored key is shown: ``••••••••abcd``, ``••••••••`` or empty (no key)."""
    if not is_set:
        return ""
    return "•" * 8 + hint
