"""Which passes stand where now, as ranges of their end: what a list filter asks a database.

``PassView.status`` classifies one pass at a moment under its lot's expiry
thresholds (the lot's ``expired_grace_days`` / ``expired_payable_days``).
``expiry_window`` turns the same rule around: for a standing, the moment and
the lot's thresholds, the range its ``valid_until`` falls in, so a query can
select every pass in that standing without loading them. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eppark.domain.decide import LotPolicy, PassStatus


@dataclass(frozen=True, slots=True)
class ExpiryWindow:
    """A half-open range of a started pass's ``valid_until``: ``since`` ≤ it < ``before``."""

    since: datetime | None  # None: no lower bound
    before: datetime | None  # None: no upper bound

    def holds(self, valid_until: datetime) -> bool:
        """Whether a pass ending at ``valid_until`` is in the window."""
        return (self.since is None or self.since <= valid_until) and (
            self.before is None or valid_until < self.before
        )


def expiry_window(status: PassStatus, now: datetime, lot: LotPolicy) -> ExpiryWindow:
    """Where ``valid_until`` lies for a pass started by ``now`` to stand at ``status``.

    A pass not started yet (``valid_from`` > ``now``) stands at none whatever
    its end: callers select started passes and ask for a standing other than
    ``PassStatus.NONE``.
    """
    grace = now - timedelta(days=lot.expired_grace_days)
    payable = now - timedelta(days=lot.expired_payable_days)
    if status is PassStatus.VALID:
        return ExpiryWindow(now, None)
    if status is PassStatus.EXPIRED_GRACE:
        return ExpiryWindow(grace, now)
    if status is PassStatus.EXPIRED_PAYABLE:
        return ExpiryWindow(payable, grace)
    if status is PassStatus.LAPSED:
        return ExpiryWindow(None, payable)
    raise ValueError("a pass stands at none before it starts, whatever its end")
