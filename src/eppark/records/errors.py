"""The one error a named action raises when it will not do what was asked."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

REASON_MAX = 256
"""The longest reason a named action keeps (a stay's closing note holds as much)."""


class Refused(Exception):
    """A named action refused: the message says why, in words; nothing was changed."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = str(message)


def required_reason(reason: str | None) -> str:
    """The reason, trimmed; refused when there is none."""
    text = (reason or "").strip()
    if not text:
        raise Refused(_("A reason is required."))
    if len(text) > REASON_MAX:
        raise Refused(_("The reason is too long (at most %(n)d characters).") % {"n": REASON_MAX})
    return text
