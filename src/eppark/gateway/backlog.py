"""Robots' reports kept in memory while the database cannot take them (bounded, in order).

An ack that cannot be written is not lost: it waits here, with the time it
arrived, until the database is back, and is then applied like any other (an
open the robot ran during the outage ends ``done``). Reports that arrived
within the same second form one batch, applied with that second's time.
Past ``limit`` reports the oldest are dropped (and counted): a robot asked
later with ``resend_acks`` repeats its acks anyway.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

Report = tuple[str, str, bytes]
"""(robot code, topic kind, payload)"""
BATCH = 1000
SAME_BATCH = timedelta(seconds=1)


class ReportBacklog:
    """Batches of reports waiting to be applied, oldest first."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.dropped = 0
        self._batches: deque[tuple[datetime, list[Report]]] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, reports: list[Report], now: datetime) -> None:
        """Keep ``reports``, received at ``now``, after those already kept."""
        for report in reports:
            last = self._batches[-1] if self._batches else None
            if last is not None and len(last[1]) < BATCH and now - last[0] < SAME_BATCH:
                last[1].append(report)
            else:
                self._batches.append((now, [report]))
            self._size += 1
        while self._size > self.limit:
            oldest = self._batches[0][1]
            oldest.pop(0)
            self._size -= 1
            self.dropped += 1
            if not oldest:
                self._batches.popleft()

    def take(self) -> tuple[datetime, list[Report]]:
        """The oldest batch, out of the backlog (``put_back`` if it could not be applied)."""
        now, batch = self._batches.popleft()
        self._size -= len(batch)
        return now, batch

    def put_back(self, now: datetime, batch: list[Report]) -> None:
        """Return a batch taken with ``take`` to the front."""
        self._batches.appendleft((now, batch))
        self._size += len(batch)
