"""The device ingress (``eppark.asgi.device_ingress``) driven as a raw ASGI app.

Each request is one ASGI ``http`` scope built here and run through ``async_to_sync``
(so what Django runs thread-sensitively stays in the test's thread). The ingress
answers camera pushes on worker threads of its own, hence transactional tests; its
answers are compared with the Django view's, reached through Django's own ASGI handler
with the very same request (the test client sends no content type with an empty body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from eppark.asgi import device_ingress as application
from eppark.asgi import django_application
from eppark.devices.ingress import DeviceIngress
from eppark.devices.lpr.events import HttpPush
from eppark.devices.models import Command, PlateRead
from eppark.sim.cameras import build_push
from eppark.stays.models import GateVisit
from tests.integration.test_gate_loop import Site

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Answer:
    """What the ASGI app sent back."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _exchange(app: Any, scope: dict[str, Any], chunks: Sequence[bytes]) -> Answer:
    """Run one request through ``app``: the body in ``chunks``, then collect the reply."""
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    finished = asyncio.Event()
    start: dict[str, Any] = {}
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await finished.wait()  # the client stays connected until the reply is complete
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            assert not start, "the response was started twice"
            start.update(message)
        elif message["type"] == "http.response.body":
            assert start, "a body before the response start"
            assert not finished.is_set(), "a body after the response was complete"
            body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    assert finished.is_set(), "the app returned without completing its response"
    headers = {
        bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1")
        for name, value in start.get("headers", [])
    }
    return Answer(int(start["status"]), headers, b"".join(body))


def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str = "",
    *,
    chunk_size: int = 0,
    extra_headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request through the ASGI ``app`` (the body in ``chunk_size`` pieces)."""
    headers = [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    for name, value in (extra_headers or {}).items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    size = chunk_size or max(1, len(body))
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    answer: Answer = async_to_sync(_exchange)(app, scope, chunks)
    return answer


def _close_connection() -> None:
    connection.close()  # looked up in the calling thread: connections are per thread


def _own_workers(ingress: DeviceIngress, monkeypatch: pytest.MonkeyPatch) -> ThreadPoolExecutor:
    """Give ``ingress`` one worker thread whose database connection the test can hand back."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="test-ingress")
    monkeypatch.setattr(ingress, "executor", pool)
    return pool


def _release(pool: ThreadPoolExecutor) -> None:
    """Close the worker's database connection (PostgreSQL drops the test database later)."""
    pool.submit(_close_connection).result(30)
    pool.shutdown(wait=True)


@contextlib.contextmanager
def built_ingress() -> Iterator[DeviceIngress]:
    """A new ingress in front of Django, as ``eppark serve`` builds one (one worker thread)."""
    built = DeviceIngress(django_application, workers=1)
    try:
        yield built
    finally:
        _release(built.executor)


@pytest.fixture
def ingress(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[DeviceIngress]:
    """``eppark.asgi.device_ingress`` (media files in a temporary folder), on a worker of ours."""
    pool = _own_workers(application, monkeypatch)
    try:
        yield application
    finally:
        _release(pool)


def read(site: Site, direction: str, plate: str | None, vendor: str = "vzenith") -> HttpPush:
    """A fresh vendor-shaped read of ``plate`` by the ``direction`` gate's camera."""
    site.plate_id += 1
    camera = site.cameras[direction]
    return build_push(
        vendor,  # type: ignore[arg-type]
        camera.serial,
        plate,
        timezone.now(),
        plate_id=site.plate_id,
    )


def url(site: Site, direction: str, message: HttpPush | None = None, key: str = "") -> str:
    camera = site.cameras[direction]
    path = f"/devices/lpr/{camera.vendor}/{key or camera.key}"
    if message is not None and message.path:
        path += "/" + message.path
    return path


def post(ingress: Any, path: str, message: HttpPush, **kwargs: Any) -> Answer:
    return call(ingress, "POST", path, message.body, message.content_type, **kwargs)


def nothing_recorded() -> bool:
    return not (
        PlateRead.objects.exists() or GateVisit.objects.exists() or Command.objects.exists()
    )


@pytest.mark.parametrize(("confirm", "info"), [(False, "ok"), (True, "no")])
def test_a_read_is_answered_as_the_django_view_answers_it(
    ingress: DeviceIngress, confirm: bool, info: str
) -> None:
    site = Site(confirm=confirm)  # a visitor enters (no confirmation) or is refused
    by_view = post(django_application, url(site, "entry"), read(site, "entry", "粤B11111"))
    message = read(site, "entry", "粤B22222")
    answer = post(ingress, url(site, "entry"), message)

    assert answer.status == by_view.status == 200
    assert answer.headers["content-type"] == by_view.headers["content-type"]
    assert int(answer.headers["content-length"]) == len(answer.body)
    ours, theirs = answer.json(), by_view.json()
    assert ours.keys() == theirs.keys() == {"Response_AlarmInfoPlate"}
    ours, theirs = ours["Response_AlarmInfoPlate"], theirs["Response_AlarmInfoPlate"]
    assert ours.keys() == theirs.keys()
    assert ours["info"] == theirs["info"] == info
    assert ours["plateid"] == site.plate_id  # each reply names its own read
    assert theirs["plateid"] == site.plate_id - 1
    by_ingress = GateVisit.objects.get(plate="粤B22222")
    assert by_ingress.gate_id == site.gates["entry"].pk
    assert by_ingress.scenario == GateVisit.objects.get(plate="粤B11111").scenario
    assert by_ingress.opened is (info == "ok")
    assert PlateRead.objects.filter(plate="粤B22222").count() == 1


def test_a_wrong_key_is_404_and_records_nothing(ingress: DeviceIngress) -> None:
    site = Site()
    message = read(site, "entry", "粤B12345")
    for path in (
        url(site, "entry", key="not-the-key"),
        "/devices/lpr/hikvision/k-entry",  # the right key under another vendor
        "/devices/lpr/acme/k-entry",  # no such vendor
        "/devices/lpr/vzenith/k-entry/extra",  # not an endpoint's shape
        "/devices/lpr/vzenith/k-entry/NotificationInfo/TollgateInfo",  # Dahua's tail only
    ):
        answer = post(ingress, path, message)
        assert answer.status == 404, path
        assert answer.json() == {"error": "not found"}
    assert nothing_recorded()


def test_get_is_405_and_allows_post(ingress: DeviceIngress) -> None:
    site = Site()
    answer = call(ingress, "GET", url(site, "entry"))
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert "error" in answer.json()
    by_view = call(django_application, "GET", url(site, "entry"))
    assert (by_view.status, by_view.headers["allow"]) == (405, "POST")
    assert nothing_recorded()


def test_a_body_over_the_upload_limit_is_413_and_records_nothing(settings: Any) -> None:
    site = Site()
    message = read(site, "entry", "粤B12345")
    # the limit is read per request, as the Django view reads it
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(message.body) - 1
    with built_ingress() as ingress:
        answer = post(ingress, url(site, "entry"), message, chunk_size=1000)
    assert answer.status == 413
    assert "error" in answer.json()
    assert b'"ok"' not in answer.body
    by_view = post(django_application, url(site, "entry"), message, chunk_size=1000)
    assert by_view.status == 413
    assert by_view.body == answer.body
    assert nothing_recorded()

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(message.body)  # exactly at the limit: accepted
    with built_ingress() as ingress:
        answer = post(ingress, url(site, "entry"), message, chunk_size=1000)
    assert answer.status == 200, answer.body
    assert GateVisit.objects.filter(plate="粤B12345").count() == 1


def test_the_served_ingress_refuses_a_body_over_its_limit(ingress: DeviceIngress) -> None:
    site = Site()
    limit = int(getattr(django_settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", 0))
    body = b"{" + b" " * limit + b"}"  # one byte more than the limit
    answer = call(
        ingress, "POST", url(site, "entry"), body, "application/json", chunk_size=64 * 1024
    )
    assert answer.status == 413
    assert b'"ok"' not in answer.body
    assert nothing_recorded()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"AlarmInfoPlate": ',
        b'{"AlarmInfoPlate": 5}',
        b"[]",
        b'{"AlarmInfoPlate":{"result":{"PlateResult":{}}}}',
    ],
)
def test_a_malformed_push_is_400_records_nothing_and_never_opens(
    ingress: DeviceIngress, body: bytes
) -> None:
    site = Site(confirm=False)  # a well-formed read here would open
    answer = call(ingress, "POST", url(site, "entry"), body, "application/json")
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("application/json")
    reply = answer.json()
    assert set(reply) == {"error"}
    assert isinstance(reply["error"], str)
    assert reply["error"]
    assert b'"ok"' not in answer.body
    by_view = call(django_application, "POST", url(site, "entry"), body, "application/json")
    assert (by_view.status, by_view.body) == (answer.status, answer.body)
    assert nothing_recorded()


def test_a_dahua_push_needs_its_notification_tail(ingress: DeviceIngress) -> None:
    site = Site(vendor="dahua")
    message = read(site, "entry", "粤B12345", vendor="dahua")
    assert message.path == "NotificationInfo/TollgateInfo"
    answer = post(ingress, url(site, "entry"), message)  # the tail left off
    assert answer.status == 404
    assert nothing_recorded()
    answer = post(ingress, url(site, "entry", message), message)
    assert answer.status == 200, answer.body
    assert GateVisit.objects.filter(plate="粤B12345").count() == 1


def test_other_paths_go_to_django(ingress: DeviceIngress) -> None:
    answer = call(ingress, "GET", "/admin/login/")
    assert answer.status in (200, 302)
    assert answer.headers["content-type"].startswith("text/html")
    if answer.status == 200:
        assert b"<form" in answer.body
    assert nothing_recorded()


def test_a_new_key_takes_effect_at_once(ingress: DeviceIngress) -> None:
    site = Site()
    camera = site.cameras["entry"]
    old = url(site, "entry")
    first = post(ingress, old, read(site, "entry", "粤B11111"))
    assert first.status == 200  # the camera is now remembered under its old key
    camera.key = "k-entry-rotated"
    camera.save()

    assert post(ingress, old, read(site, "entry", "粤B22222")).status == 404
    assert not GateVisit.objects.filter(plate="粤B22222").exists()
    answer = post(ingress, url(site, "entry"), read(site, "entry", "粤B33333"))
    assert answer.status == 200
    assert answer.json()["Response_AlarmInfoPlate"]["plateid"] == site.plate_id
    assert GateVisit.objects.filter(plate="粤B33333").count() == 1


def test_a_push_cut_off_by_the_camera_is_never_acted_on(ingress: DeviceIngress) -> None:
    site = Site(vendor="hxzx")
    message = read(site, "entry", "粤B12345", vendor="hxzx")
    scope_answer: list[Any] = []

    async def cut_off() -> None:
        chunks = [{"type": "http.request", "body": message.body[:321], "more_body": True}]

        async def receive() -> dict[str, Any]:
            if chunks:
                return chunks.pop(0)
            return {"type": "http.disconnect"}  # the camera hung up mid-upload

        async def send(sent: Any) -> None:
            scope_answer.append(sent)

        headers = [
            (b"content-type", message.content_type.encode("latin-1")),
            (b"content-length", str(len(message.body)).encode()),
        ]
        scope = {"type": "http", "method": "POST", "path": url(site, "entry"), "headers": headers}
        await ingress(scope, receive, send)

    async_to_sync(cut_off)()
    assert scope_answer == []  # nobody to answer
    assert nothing_recorded()


def test_a_payment_notification_is_answered_on_the_workers_and_pays_once(
    ingress: DeviceIngress,
) -> None:
    from datetime import timedelta

    from eppark.orders.models import Order
    from eppark.orders.placing import order_for_stay
    from eppark.payments import checkout, providers
    from eppark.payments.models import Notification, SandboxTrade
    from eppark.payments.providers import sandbox
    from eppark.stays.models import Stay

    site = Site(confirm=False)
    stay = Stay.objects.create(
        lot=site.lot,
        plate="粤B88888",
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=2, minutes=30),
        entry_gate=site.gates["entry"],
    )
    message = read(site, "exit", "粤B88888")
    assert post(ingress, url(site, "exit", message), message).status == 200  # waits, owing
    now = timezone.now()
    order = order_for_stay(stay, now)
    assert order is not None
    checkout.start_page_payment(order, providers.for_channel("wechat"), return_url="", now=now)
    trade = SandboxTrade.objects.get(out_trade_no=order.out_trade_no)
    trade.state, trade.paid_at, trade.transaction_id = "SUCCESS", now, "SBX-INGRESS-1"
    trade.save()
    body = sandbox.notification_body(trade)
    path = "/payments/notify/sandbox/"

    tampered = body.replace(b"SBX-INGRESS-1", b"SBX-INGRESS-2")
    assert tampered != body
    refused = call(
        ingress,
        "POST",
        path,
        tampered,
        "application/json",
        extra_headers=sandbox.signed_headers(body, now),
    )
    assert refused.status == 400
    assert Order.objects.get(pk=order.pk).state == "paying"

    for _ in range(2):  # the provider sends it again: nothing more happens
        answer = call(
            ingress,
            "POST",
            path,
            body,
            "application/json",
            extra_headers=sandbox.signed_headers(body, timezone.now()),
        )
        assert answer.status == 204
    order.refresh_from_db()
    assert (order.state, order.paid_amount) == ("paid", 1100)
    opens = Command.objects.filter(cmd="open")  # through the camera's reply (Vzenith)
    assert opens.count() == 1
    verdicts = list(Notification.objects.order_by("pk").values_list("verdict", flat=True))
    assert verdicts == ["rejected", "pays", "duplicate"]
    assert call(ingress, "POST", "/payments/notify/nosuch/", body).status == 404
