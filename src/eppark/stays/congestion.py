"""The manual's 1-minute rule: cars held up at a gate, for the agents' outbound call list.

A gate visit whose driver was asked to do something (scan a QR code, pay,
drive away, call an agent) and has not done it within a minute appears in the
list, longest-waiting first. It leaves the list when the driver acts, the car
leaves or is replaced by the next car, or an agent resolves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from eppark.accounts.scoping import restrict
from eppark.stays.models import GateVisit, Resolution


def patience() -> timedelta:
    """How long a driver has to act before the gate counts as held up (manual: 1 minute)."""
    return timedelta(seconds=getattr(settings, "EPPARK_CONGESTION_SECONDS", 60))


def held_up(now: datetime, user: Any = None) -> QuerySet[GateVisit]:
    """Visits still waiting on the driver after the patience, longest first (user's lots)."""
    visits = GateVisit.objects.filter(
        resolved_at__isnull=True,
        arrived_at__lte=now - patience(),
    ).exclude(expected_action="")
    if user is not None:
        visits = restrict(visits, user)
    return visits.select_related("gate", "lot").order_by("arrived_at")


def resolve(visit: GateVisit, resolution: str, now: datetime) -> bool:
    """End a waiting visit (driver acted, car left, agent resolved); False if it had ended."""
    updated = GateVisit.objects.filter(pk=visit.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolution=resolution
    )
    return updated == 1


def waiting_at(gate_id: int) -> GateVisit | None:
    """The car waiting at a gate now, if any."""
    return (
        GateVisit.objects.filter(gate_id=gate_id, resolved_at__isnull=True)
        .order_by("-arrived_at")
        .first()
    )


__all__ = ["Resolution", "held_up", "patience", "resolve", "waiting_at"]
