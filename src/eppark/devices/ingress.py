"""The device ingress: plate cameras' pushes answered straight from ASGI, beside Django.

A camera waits for its reply before it lifts the barrier, and a busy city
sends hundreds of pushes a second. Django's request cycle (middleware,
sessions, URL resolving, one shared thread for sync views) costs more than
the decision itself, so ``eppark serve`` puts this small ASGI app in front:
``/devices/lpr/…`` is matched here and handed to ``eppark.devices.push`` on a
pool of worker threads (each keeps its own database connection); every other
path goes to Django unchanged. The answers are the Django view's, byte for
byte: both call ``push.receive_in_time``.

Pushes waiting for a thread are bounded (``EPPARK_INGRESS_QUEUE``, 32 per
thread by default): beyond it a push is refused at once (503). A push not
decided within ``EPPARK_PUSH_DEADLINE_S`` of its arrival is refused too, and
nothing of it is acted on later (``eppark.devices.deadline``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from eppark.dbstate import drop_connection
from eppark.devices import push
from eppark.devices.deadline import push_deadline_s
from eppark.devices.lpr.events import Reply

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/devices/lpr/"
PAYMENTS_PREFIX = "/payments/notify/"
_PAYMENTS_PATH = re.compile(r"^/payments/notify/(?P<provider>[a-z]+)/?$")


class _HungUp(Exception):
    """The client disconnected before its request body was complete."""


_PATH = re.compile(
    r"^/devices/lpr/(?P<vendor>[^/]+)/(?P<key>[^/]+)"
    r"(?:/(?P<tail>NotificationInfo/(?:TollgateInfo|KeepAlive|DeviceInfo))/?)?$"
)


def threads() -> int:
    """Worker threads answering pushes (``EPPARK_INGRESS_THREADS``, default 8)."""
    return max(1, int(os.environ.get("EPPARK_INGRESS_THREADS", "8")))


def queue_limit(workers: int) -> int:
    """Pushes in hand at most, running or waiting (``EPPARK_INGRESS_QUEUE``)."""
    return max(workers, int(os.environ.get("EPPARK_INGRESS_QUEUE", str(32 * workers))))


GRACE_S = 1.0
"""After the deadline, how long the answer still waits for a thread (which refuses by itself)."""
BUSY = push.error(503, "too many pushes waiting; nothing was done, send it again")


class DeviceIngress:
    """ASGI app: camera pushes here, everything else to ``app`` (Django)."""

    def __init__(self, app: App, workers: int | None = None) -> None:
        self.app = app
        workers = workers or threads()
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="ingress")
        self.limit = queue_limit(workers)
        self.in_hand = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http" and scope["method"] == "POST":
            provider = _PAYMENTS_PATH.match(scope["path"])
            if provider is not None:
                await self._notification(provider["provider"], scope, receive, send)
                return
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        arrived_at, started = timezone.now(), time.monotonic()
        match = _PATH.match(scope["path"])
        if match is None:
            await _send(send, push.NOT_FOUND)
            return
        if scope["method"] != "POST":
            await _send(send, push.error(405, "only POST"), [(b"allow", b"POST")])
            return
        try:
            body = await self._body(receive)
        except _HungUp:
            return  # the camera hung up mid-upload: a partial push is never acted on
        if body is None:
            await _send(send, push.error(413, "payload too large"))
            return
        content_type = ""
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self.in_hand >= self.limit:
            await _send(send, BUSY)
            return
        deadline = started + push_deadline_s()
        loop = asyncio.get_running_loop()
        self.in_hand += 1
        answer = loop.run_in_executor(
            self.executor,
            _answer,
            match["vendor"],
            match["key"],
            match["tail"] or "",
            content_type,
            body,
            query,
            arrived_at,
            deadline,
        )
        answer.add_done_callback(self._done)
        done, _ = await asyncio.wait({answer}, timeout=deadline + GRACE_S - time.monotonic())
        # not done: stuck outside the database; its statements past the deadline are refused
        await _send(send, answer.result() if done else push.TOO_LATE)

    async def _notification(
        self, provider: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A payment provider's notification, answered on the worker threads like a push.

        Providers, like cameras, are machines waiting for their answer; Django's one
        thread for sync views would queue them behind every page. The answer is the
        Django view's (``eppark.payments.notify.handle``).
        """
        from eppark.payments import notify

        arrived_at = timezone.now()
        try:
            body = await self._body(receive, limit=notify.MAX_BODY)
        except _HungUp:
            return  # the provider hung up: it sends the notification again
        headers = CaseInsensitiveMapping(
            {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope.get("headers", ())
            }
        )
        if self.in_hand >= self.limit:
            await _send(send, BUSY)
            return
        self.in_hand += 1
        answer = asyncio.get_running_loop().run_in_executor(
            self.executor, _notify, provider, headers, body, arrived_at
        )
        answer.add_done_callback(self._done)
        await _send(send, await answer)

    def _done(self, _answer: asyncio.Future[Reply]) -> None:
        self.in_hand -= 1

    async def _body(self, receive: Receive, limit: int | None = None) -> bytes | None:
        """The request body, or None when it exceeds the upload limit; _HungUp if cut off."""
        if limit is None:
            limit = int(getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", 8 * 1024 * 1024))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HungUp
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def close(self) -> None:
        """Stop the worker threads (after the requests in hand)."""
        self.executor.shutdown(wait=True)


def _answer(
    vendor: str,
    key: str,
    tail: str,
    content_type: str,
    body: bytes,
    query: dict[str, str],
    arrived_at: datetime,
    deadline: float,
) -> Reply:
    """Runs in a worker thread, which keeps its database connection between pushes."""
    try:
        return push.receive_in_time(
            vendor, key, tail, content_type, body, query, arrived_at=arrived_at, deadline=deadline
        )
    except Exception:
        log.exception("camera push to %s failed", vendor)
        drop_connection()  # a broken connection is not reused; the next push reconnects
        return push.error(500, "internal error; the read was not recorded, send it again")


def _notify(
    provider: str, headers: Mapping[str, str], body: bytes | None, arrived_at: datetime
) -> Reply:
    """Runs in a worker thread: one payment notification (``eppark.payments.notify.handle``)."""
    from eppark.payments import notify

    try:
        answer = notify.handle(provider, headers, body, arrived_at)
    except Exception:
        log.exception("payment notification from %s failed", provider)
        drop_connection()
        return push.error(500, "internal error; nothing was done, send it again")
    if answer is None:
        return push.NOT_FOUND
    return Reply(answer.status, answer.content_type, answer.body)


async def _send(send: Send, reply: Reply, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(reply.body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
