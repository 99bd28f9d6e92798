"""How records read in the back office: yuan, scenarios, expected actions, decisions in words."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from eppark.domain.scenarios import SCENARIOS

QR_WORDS: dict[str, Any] = {
    "unplated_entry": gettext_lazy("unplated entry QR code"),
    "monthly_renewal": gettext_lazy("monthly pass renewal QR code"),
    "temp_payment": gettext_lazy("parking fee QR code"),
    "unplated_exit": gettext_lazy("unplated exit QR code"),
}

LIGHT_WORDS: dict[str, Any] = {
    "green": pgettext_lazy("light band", "green"),
    "yellow": pgettext_lazy("light band", "yellow"),
    "red": pgettext_lazy("light band", "red"),
}


def yuan(fen: int | None) -> str:
    """An amount in fen as yuan: 500 → ``¥5.00``; none → ``—``."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def scenario_words(scenario_id: str) -> str:
    """A scenario's title as the manual names it (``entry.monthly_valid`` → 月卡车进场)."""
    scenario = SCENARIOS.get(scenario_id)
    return scenario.title if scenario else scenario_id or "—"


def expected_action_words(code: str) -> str:
    """What the driver was expected to do, in words; ``—`` for nothing."""
    from eppark.console.live import EXPECTED_ACTIONS  # the console's table, not a second one

    if not code:
        return "—"
    return str(EXPECTED_ACTIONS.get(code, code))


def screen_words(display: Any) -> str:
    """A robot screen (the decision's ``display`` object) in words."""
    if not isinstance(display, dict):
        return "—"
    kind = display.get("kind")
    if kind == "face":
        return _("smile")
    if kind == "qr":
        return str(QR_WORDS.get(str(display.get("qr")), _("QR code")))
    if kind == "text":
        return "“{}”".format(display.get("text", ""))
    if kind == "vehicles":
        return _("the group's cars inside")
    return str(kind or "—")


def decision_words(decision: Any) -> str:
    """A gate decision in one line of words, never raw JSON."""
    if not isinstance(decision, dict) or not decision:
        return "—"
    parts = [
        _("the gate opens") if decision.get("open") else _("the gate stays shut"),
        _("voice: “%(voice)s”") % {"voice": decision.get("voice") or "—"},
        _("screen: %(screen)s") % {"screen": screen_words(decision.get("display"))},
        _("light: %(light)s")
        % {"light": str(LIGHT_WORDS.get(str(decision.get("light")), decision.get("light") or "—"))},
    ]
    return pgettext("records", "; ").join(parts)
