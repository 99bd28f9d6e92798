"""Selecting passes by standing (valid, expired within grace, renewable, lapsed) in a query.

The rule is the domain's (``PassView.status`` under the pass's own lot's
``expired_grace_days`` / ``expired_payable_days``); ``eppark.domain.standing``
turns it into ranges of ``valid_until``. Lots may set different thresholds,
so the condition has one branch per distinct setting among the lots.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from eppark.domain.decide import LotPolicy, PassStatus
from eppark.domain.standing import expiry_window
from eppark.lots.models import Lot


def thresholds(lots: QuerySet[Lot] | None = None) -> list[tuple[int, int]]:
    """The distinct (grace days, payable days) settings of ``lots`` (default: every lot)."""
    chosen = Lot.objects.all() if lots is None else lots
    pairs = chosen.order_by().values_list("expired_grace_days", "expired_payable_days")
    return sorted(set(pairs))


def standing_q(
    status: PassStatus, now: datetime, settings: Iterable[tuple[int, int]], lot_path: str = "lot"
) -> Q:
    """Passes (started by ``now``) standing at ``status`` under their own lot's thresholds."""
    if status is PassStatus.NONE:
        return Q(valid_from__gt=now)
    condition = Q(pk__in=[])  # no lot: no pass
    for grace, payable in settings:
        window = expiry_window(status, now, LotPolicy(False, grace, payable))
        branch = Q(
            **{
                f"{lot_path}__expired_grace_days": grace,
                f"{lot_path}__expired_payable_days": payable,
            },
            valid_from__lte=now,
        )
        if window.since is not None:
            branch &= Q(valid_until__gte=window.since)
        if window.before is not None:
            branch &= Q(valid_until__lt=window.before)
        condition |= branch
    return condition


def in_standing(queryset: QuerySet[Any], status: PassStatus, now: datetime) -> QuerySet[Any]:
    """The passes of ``queryset`` standing at ``status`` at ``now`` (NONE: not started)."""
    lots = Lot.objects.filter(pk__in=queryset.order_by().values("lot_id"))
    return queryset.filter(standing_q(status, now, thresholds(lots)))
