"""Payment rules (pure: no Django, no I/O, no clock).

- which provider a payment code (付款码) belongs to, by its prefix;
- how long a payment code that needs the driver's confirmation (USERPAYING)
  is polled before it is reversed;
- whether a provider's notification pays our order: its order number and
  amount must be ours, and a second copy changes nothing;
- how long an order's price holds, and how a monthly renewal extends a pass.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from eppark.domain import order_states

WECHAT = "wechat"
ALIPAY = "alipay"

_WECHAT_CODE = re.compile(r"1[0-5]\d{16}")
_ALIPAY_CODE = re.compile(r"(2[5-9]|30)\d{14,22}")


def payment_code_channel(code: str) -> str | None:
    """``wechat`` or ``alipay`` for a payment code shown to the scanner; None for anything else.

    WeChat codes are 18 digits starting 10–15; Alipay codes 16–24 digits starting 25–30.
    """
    code = code.strip()
    if _WECHAT_CODE.fullmatch(code):
        return WECHAT
    if _ALIPAY_CODE.fullmatch(code):
        return ALIPAY
    return None


def mask_code(code: str) -> str:
    """A payment code as it may be kept and shown: its first two and last four digits."""
    code = code.strip()
    return f"{code[:2]}{'*' * max(0, len(code) - 6)}{code[-4:]}" if len(code) > 6 else "****"


CODEPAY_FIRST_QUERY = timedelta(seconds=3)
"""A payment code waiting for the driver's confirmation (USERPAYING) is first queried this
long after it was charged: most drivers confirm within a few seconds."""
CODEPAY_QUERY_EVERY = timedelta(seconds=10)
"""Then the gap doubles from the first one, up to this (protocols.md: every ~10 s)."""
CODEPAY_GIVE_UP_AFTER = timedelta(seconds=45)
"""After this long without success the payment is reversed (protocols.md, WeChat codepay)."""
CODEPAY_CHECK_GAPS = (
    timedelta(seconds=1),
    timedelta(seconds=2),
    timedelta(seconds=4),
    timedelta(seconds=8),
)
"""After a charge call that reported an error (or could not reach the provider), the
queries that decide before anything else: this long after the error, then after each
query that could not tell. When none of them could tell, the payment is reversed."""
ORDER_PRICE_HOLDS = timedelta(minutes=10)
"""An order's amount holds this long; after it the order closes and a new one is priced."""


def codepay_next_step(
    started_at: datetime,
    now: datetime,
    *,
    first: timedelta = CODEPAY_FIRST_QUERY,
    every: timedelta = CODEPAY_QUERY_EVERY,
    give_up: timedelta = CODEPAY_GIVE_UP_AFTER,
) -> tuple[str, datetime | None]:
    """For a code payment still USERPAYING at ``now``: ``("query", when)`` or ``("reverse", None)``.

    Queries at 3 s, 6 s, 12 s, 22 s, 32 s, 42 s and 45 s after ``started_at`` (the
    gap doubles from ``first`` up to ``every``; the last query is at ``give_up``);
    once ``give_up`` has passed, reverse (after a last query has said USERPAYING).
    """
    elapsed = now - started_at
    if elapsed >= give_up:
        return "reverse", None
    if elapsed < first:
        return "query", started_at + min(first, give_up)
    gap = min(max(elapsed, first), every)
    return "query", min(now + gap, started_at + give_up)


def codepay_after_error(
    checks_done: int, now: datetime, *, gaps: tuple[timedelta, ...] = CODEPAY_CHECK_GAPS
) -> tuple[str, datetime | None]:
    """After a charge error and ``checks_done`` queries that could not tell what happened:
    ``("query", when)``, or ``("reverse", None)`` once every query of ``gaps`` was made."""
    if checks_done >= len(gaps):
        return "reverse", None
    return "query", now + gaps[checks_done]


class Verdict(StrEnum):
    """What a provider's confirmed payment does to our order."""

    PAYS = "pays"  # the order becomes paid
    PAYS_LATE = "pays_late"  # money taken for a closed order: paid, and flagged for review
    DUPLICATE = "duplicate"  # already paid by this very transaction: nothing changes
    MISMATCH = "mismatch"  # amount or number not ours: flagged for review, never paid
    UNKNOWN_ORDER = "unknown_order"  # no such order of ours: recorded, nothing else
    NOT_PAID = "not_paid"  # the provider reports a state other than success


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """Our order as the verdict needs it."""

    out_trade_no: str
    amount: int
    state: str
    transaction_id: str


def verdict(
    order: OrderFacts | None,
    *,
    out_trade_no: str,
    amount: int | None,
    success: bool,
    transaction_id: str,
) -> Verdict:
    """Whether a provider's report (notification or query) pays ``order``."""
    if order is None:
        return Verdict.UNKNOWN_ORDER
    if not success:
        return Verdict.NOT_PAID
    if order.state in (order_states.PAID, order_states.REFUNDED):
        if not order.transaction_id or order.transaction_id == transaction_id:
            return Verdict.DUPLICATE
        return Verdict.MISMATCH  # a second, different payment of a paid order
    if out_trade_no != order.out_trade_no or amount != order.amount:
        return Verdict.MISMATCH
    if order.state == order_states.CLOSED:
        return Verdict.PAYS_LATE
    return Verdict.PAYS


def new_out_trade_no(kind: str, now: datetime, nonce: str) -> str:
    """A merchant order number: 6–32 of digits and letters, unique (time + a random ``nonce``)."""
    prefix = {"temp": "T", "monthly": "M", "unplated": "U"}.get(kind, "X")
    tail = "".join(c for c in nonce.upper() if c.isalnum())[:10]
    return f"EP{prefix}{now.strftime('%y%m%d%H%M%S')}{tail}"


# --- monthly renewals -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenewalOption:
    """One way to renew a pass: ``months`` for ``price`` fen."""

    months: int
    price: int


def renewal_options(monthly_price: int, offers: list[dict[str, int]] | None) -> list[RenewalOption]:
    """The lot's renewal options: its own list, else 1, 3, 6 and 12 months at the monthly price."""
    if offers:
        return sorted(
            (RenewalOption(int(o["months"]), int(o["price"])) for o in offers),
            key=lambda o: o.months,
        )
    if monthly_price <= 0:
        return []
    return [RenewalOption(m, monthly_price * m) for m in (1, 3, 6, 12)]


def renewed_until(valid_until: datetime, months: int, zone: tzinfo) -> datetime:
    """A pass's new end after renewing ``months``: counted from its current end.

    A renewal continues the pass where it stopped, whether it is still running or
    expired a few days ago (the car was parked meanwhile; those days are part of
    the renewed period). The day of the month is kept, clamped to the month's last
    day (31 Jan + 1 month = 28/29 Feb), in the lot's time zone.
    """
    local = valid_until.astimezone(zone)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


# --- unplated cars --------------------------------------------------------------------------

TEMP_PLATE_PREFIX = "临"


def temp_plate(sequence: int) -> str:
    """The temporary plate of an unplated car's ticket: 临 and six digits (never a real plate)."""
    return f"{TEMP_PLATE_PREFIX}{sequence % 1_000_000:06d}"


def is_temp_plate(plate: str) -> bool:
    """Whether ``plate`` is an unplated car's temporary plate."""
    return plate.startswith(TEMP_PLATE_PREFIX) and plate[1:].isdigit() and len(plate) == 7
