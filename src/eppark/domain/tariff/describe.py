"""A rule as the Chinese sentence on the lot's price board.

Forms, fixed: prices in 元 with up to two decimals (``2.5元``); lengths in
分钟 unless whole hours, in 小时 up to 24 h and beyond unless whole days
(``90分钟``, ``12小时``, ``2天``); a 24 h cap reads ``30元封顶``, a calendar-day
cap ``每天30元封顶``; a window's cap ``，最高5元``; the exit grace is not shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eppark.domain.tariff.rule import Period, Segment, TariffRule


def describe(rule: TariffRule) -> str:
    """The rule's text, e.g. ``30分钟内免费，1小时内5元，之后每小时3元，30元封顶``."""
    parts: list[str] = []
    if rule.free_minutes:
        free = f"{span(rule.free_minutes)}内免费"
        parts.append(free + ("（超时后免费时长不计费）" if rule.free_minutes_deducted else ""))
    if rule.first:
        parts.append(f"{span(rule.first.minutes)}内{_price(rule.first.price)}")
    lead = "之后" if rule.first else ""
    if rule.segments:
        parts.append(lead + "；".join(_window(segment) for segment in rule.segments))
    else:
        assert rule.unit is not None
        if rule.unit.price == 0:
            parts.append("之后免费" if parts else "免费")
        else:
            parts.append(_every(rule.unit, lead))
    text = "，".join(parts)
    if rule.cap:
        cap = f"{yuan(rule.cap.price)}封顶"
        cap = f"每天{cap}" if rule.cap.per == "day" else cap
        text += ("；" if rule.segments else "，") + cap
    return text


def yuan(fen: int) -> str:
    """Fen as 元, two decimals at most and trailing zeros dropped: 250 → ``2.5元``."""
    whole, cents = divmod(fen, 100)
    if not cents:
        return f"{whole}元"
    return f"{whole}.{cents:02d}".rstrip("0") + "元"


def span(minutes: int) -> str:
    """A length: ``30分钟``, ``1小时``, ``24小时``, ``2天``."""
    if minutes % 60:
        return f"{minutes}分钟"
    hours = minutes // 60
    if hours > 24 and hours % 24 == 0:
        return f"{hours // 24}天"
    return f"{hours}小时"


def _every(unit: Period, lead: str) -> str:
    """``每小时3元``, ``每30分钟1元``; ``免费`` for a zero price."""
    if unit.price == 0:
        return f"{lead}免费"
    length = span(unit.minutes)
    length = length[1:] if length in ("1小时", "1分钟") else length
    return f"{lead}每{length}{yuan(unit.price)}"


def _window(segment: Segment) -> str:
    """``20:00-08:00每12小时5元，最高5元``."""
    text = _every(segment.unit, f"{segment.start_text}-{segment.end_text}")
    if segment.cap is not None:
        text += f"，最高{yuan(segment.cap)}"
    return text


def _price(fen: int) -> str:
    """A price, or ``免费`` for zero."""
    return yuan(fen) if fen else "免费"
