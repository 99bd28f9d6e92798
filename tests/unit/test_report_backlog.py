"""Robots' reports kept through a database outage: in order, by the second, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eppark.gateway.backlog import ReportBacklog

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _acks(*names: str) -> list[tuple[str, str, bytes]]:
    return [("EP-0001", "acks", name.encode()) for name in names]


def test_reports_come_back_in_order_grouped_by_the_second_they_arrived() -> None:
    kept = ReportBacklog()
    kept.add(_acks("a", "b"), T0)
    kept.add(_acks("c"), T0 + timedelta(milliseconds=900))
    kept.add(_acks("d"), T0 + timedelta(seconds=1))
    assert len(kept) == 4
    assert kept.take() == (T0, _acks("a", "b", "c"))
    assert kept.take() == (T0 + timedelta(seconds=1), _acks("d"))
    assert len(kept) == 0


def test_a_batch_that_could_not_be_written_goes_back_to_the_front() -> None:
    kept = ReportBacklog()
    kept.add(_acks("a"), T0)
    kept.add(_acks("b"), T0 + timedelta(seconds=2))
    when, batch = kept.take()
    kept.add(_acks("c"), T0 + timedelta(seconds=2, milliseconds=1))  # while it was out
    kept.put_back(when, batch)
    assert [kept.take()[1] for _ in range(2)] == [_acks("a"), _acks("b", "c")]


def test_past_the_limit_the_oldest_reports_go_and_are_counted() -> None:
    kept = ReportBacklog(limit=3)
    kept.add(_acks("a", "b"), T0)
    kept.add(_acks("c", "d"), T0 + timedelta(seconds=5))
    assert (len(kept), kept.dropped) == (3, 1)
    assert kept.take() == (T0, _acks("b"))
    assert kept.take() == (T0 + timedelta(seconds=5), _acks("c", "d"))
