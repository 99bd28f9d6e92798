"""A camera push is decided within its deadline or refused, and never acted on late.

The ingress's worker thread is kept busy by the test (as a database outage keeps
every worker waiting for a connection): a push behind it waits. Past
``EPPARK_PUSH_DEADLINE_S`` the camera is answered 503, and when the thread is
free again the push is not acted on; within it, the commands the read causes
count their time-to-live from the read's arrival. Beyond the queue's bound a
push is refused at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from eppark.asgi import django_application
from eppark.devices import push
from eppark.devices.ingress import DeviceIngress
from eppark.devices.models import Command
from eppark.stays.models import GateVisit
from tests.integration.test_device_ingress import (
    _exchange,
    _release,
    call,
    nothing_recorded,
    read,
    url,
)
from tests.integration.test_gate_loop import Site

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingress() -> Iterator[DeviceIngress]:
    """An ingress with one worker thread, as ``eppark serve`` builds it."""
    built = DeviceIngress(django_application, workers=1)
    try:
        yield built
    finally:
        _release(built.executor)


def _busy(ingress: DeviceIngress, seconds: float) -> threading.Event:
    """Keep the worker thread busy for ``seconds`` (or until the event is set)."""
    free = threading.Event()
    ingress.executor.submit(free.wait, seconds)
    return free


def _drain(ingress: DeviceIngress) -> None:
    """Wait until everything handed to the worker thread has run."""
    ingress.executor.submit(lambda: None).result(30)


def test_a_push_not_decided_by_its_deadline_is_refused_and_never_acted_on(
    ingress: DeviceIngress, settings: Any
) -> None:
    settings.EPPARK_PUSH_DEADLINE_S = 0.5
    site = Site(confirm=False)  # a visitor would be let in: the reply would open
    _busy(ingress, 2.5)  # longer than the deadline and the answer's grace
    answer = call(ingress, "POST", url(site, "entry"), *_body(site, "粤B12345"))
    assert answer.status == 503
    assert b'"ok"' not in answer.body
    _drain(ingress)  # the push's turn comes, after its deadline
    assert nothing_recorded()
    body, content_type = _body(site, "粤B12346")  # by the Django view's path too
    late = push.receive_in_time(
        "vzenith",
        site.cameras["entry"].key or "",
        "",
        content_type,
        body,
        {},
        arrived_at=timezone.now(),
        deadline=time.monotonic() - 0.01,
    )
    assert late == push.TOO_LATE
    assert nothing_recorded()


def test_an_opens_time_to_live_counts_from_the_read(ingress: DeviceIngress, settings: Any) -> None:
    settings.EPPARK_PUSH_DEADLINE_S = 5
    site = Site(confirm=False)
    gate = site.gates["entry"]
    gate.opening_channel = "robot"  # the robot's relay opens: an ``open`` command
    gate.save()
    arrived = timezone.now()
    _busy(ingress, 1.0)  # the read waits a second for a thread
    answer = call(ingress, "POST", url(site, "entry"), *_body(site, "粤B12345"))
    assert answer.status == 200
    opened = Command.objects.get(cmd="open", visit__plate="粤B12345")
    assert arrived <= opened.created_at < arrived + timedelta(milliseconds=500)
    assert opened.expires_at - opened.created_at == timedelta(seconds=settings.EPPARK_OPEN_TTL_S)
    visit = GateVisit.objects.get(plate="粤B12345")
    assert visit.arrived_at == opened.created_at  # the read's time, not the thread's


def test_pushes_beyond_the_queue_are_refused_at_once(
    ingress: DeviceIngress, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(confirm=False)
    ingress.limit = 1
    free = _busy(ingress, 5.0)

    async def two_at_once() -> list[Any]:
        first = asyncio.ensure_future(_post(ingress, site, "粤B11111"))
        await asyncio.sleep(0.1)
        second = await _post(ingress, site, "粤B22222")  # the first holds the only place
        free.set()
        return [await first, second]

    first, second = async_to_sync(two_at_once)()
    assert (first.status, second.status) == (200, 503)
    assert second.json() == {"error": "too many pushes waiting; nothing was done, send it again"}
    assert list(GateVisit.objects.values_list("plate", flat=True)) == ["粤B11111"]


def _body(site: Site, plate: str) -> tuple[bytes, str]:
    message = read(site, "entry", plate)
    return message.body, message.content_type


async def _post(ingress: DeviceIngress, site: Site, plate: str) -> Any:
    body, content_type = _body(site, plate)
    path = url(site, "entry")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type.encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    return await _exchange(ingress, scope, [body])
