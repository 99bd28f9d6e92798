"""The sandbox sending its payment notifications, the way the real providers do.

``deliver_due`` POSTs the notifications that are due (``SandboxDelivery``) to
their URL over real HTTP, each signed when it is sent
(``sandbox.signed_headers``). A 2xx answer marks it delivered; anything else
(an error status, a refused connection, a timeout) sends it again later, on
WeChat Pay's schedule: 15 s, 15 s, 30 s, 3 min, 10 min, 20 min, 30 min, 30 min,
30 min, 60 min, 3 h, 3 h, 3 h, 6 h, 6 h — then it gives up (about a day).

The payments worker calls it in its loop; several processes may: a delivery is
claimed (its next try pushed ``CLAIM_FOR`` ahead) before it is sent, so two
workers never send the same try. Trades of payment codes that waited for the
driver (USERPAYING) are confirmed here too, so their notification goes out
although nobody queried them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx
from django.db import transaction

from eppark.payments.models import SandboxDelivery
from eppark.payments.providers import sandbox

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
"""How long one POST may take (the real providers wait about 5 s)."""
CLAIM_FOR = timedelta(seconds=30)
BACKOFF: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s)
    for s in (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
)
MAX_ATTEMPTS = len(BACKOFF) + 1


def next_try(attempts: int, now: datetime) -> datetime | None:
    """When a delivery that failed ``attempts`` times is sent again; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + BACKOFF[max(0, attempts - 1)]


def deliver_due(now: datetime, limit: int = 50) -> int:
    """Send the notifications due by ``now`` (at most ``limit``); how many were accepted."""
    sandbox.confirm_due(now)
    claimed = _claim(now, limit)
    if not claimed:
        return 0
    delivered = 0
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        for delivery in claimed:
            body = delivery.body.encode("utf-8")
            headers = sandbox.signed_headers(body, now)
            error = ""
            try:
                answer = client.post(delivery.url, content=body, headers=headers)
                if not 200 <= answer.status_code < 300:
                    error = f"HTTP {answer.status_code}: {answer.text[:120]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            _finish(delivery, headers, error, now)
            if not error:
                delivered += 1
    return delivered


def _claim(now: datetime, limit: int) -> list[SandboxDelivery]:
    with transaction.atomic():
        rows = list(
            SandboxDelivery.objects.select_for_update(skip_locked=True)
            .filter(delivered_at__isnull=True, due_at__lte=now, attempts__lt=MAX_ATTEMPTS)
            .order_by("due_at", "pk")[:limit]
        )
        for row in rows:
            row.attempts += 1
            row.due_at = now + CLAIM_FOR
            row.save(update_fields=["attempts", "due_at"])
    return rows


def _finish(delivery: SandboxDelivery, headers: dict[str, str], error: str, now: datetime) -> None:
    delivery.headers = headers
    if not error:
        delivery.delivered_at = now
        delivery.last_error = ""
        delivery.save(update_fields=["headers", "delivered_at", "last_error"])
        return
    log.info("sandbox notification %s to %s failed: %s", delivery.pk, delivery.url, error)
    again = next_try(delivery.attempts, now)
    delivery.last_error = (error if again else f"gave up: {error}")[:256]
    if again is not None:
        delivery.due_at = again
    delivery.save(update_fields=["headers", "due_at", "last_error"])
