"""The gateway: the asyncio side that talks MQTT to robots and empties the command outbox.

It keeps one MQTT session as the ``gateway`` user (reconnecting with backoff
whenever the broker goes away), subscribes to every robot's status, events and
acks, and publishes due commands. A command is written to the database with
the change that caused it (``eppark.devices.outbox``); the gateway is woken
when that transaction commits (in-process listener, or PostgreSQL NOTIFY from
other processes) and also polls, so a missed wake-up only delays. While the
broker is down nothing is published and nothing is lost: commands wait in the
database until they are acked or expire, and an expired one is never sent.
Camera-API opens (Hikvision, Dahua) are carried out here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiomqtt
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.utils import timezone

from eppark.devices import outbox
from eppark.devices.lpr.barrier import BarrierError, async_open_barrier
from eppark.domain.errors import BadInput
from eppark.gateway import protocol, store

log = logging.getLogger(__name__)
RECENT_S = 1.5
"""A command published this recently is not published again (hand-off and poll may meet)."""


def _db(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a sync Django function in a worker thread, handing its connection back after."""

    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()  # back to the pool: worker threads must not hold connections

    return sync_to_async(call, thread_sensitive=False)


class Gateway:
    """One gateway process's MQTT session, outbox dispatcher and camera-API worker."""

    def __init__(
        self,
        mqtt_url: str,
        *,
        username: str = protocol.GATEWAY_USER,
        password: str | None = None,
        poll_interval: float = 0.5,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        address = protocol.parse_mqtt_url(mqtt_url)
        self.address = address
        self.username = address.username or username
        self.password = address.password or password
        self.poll_interval = poll_interval
        self.clock = clock
        self.connected = asyncio.Event()
        self.published = 0
        self._wake = asyncio.Event()
        self._poll_now = True
        self._fresh: list[outbox.Outgoing] = []
        self._recent: dict[int, float] = {}  # pk → when published, not to publish twice
        self._inbox: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aiomqtt.Client | None = None

    # --- waking -----------------------------------------------------------------------------

    def wake(self, batch: Sequence[outbox.Outgoing] = ()) -> None:
        """Hand the dispatcher freshly committed commands, or ask it to poll (any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._take, batch)

    def _take(self, batch: Sequence[outbox.Outgoing]) -> None:
        if not batch:
            self._poll_now = True
        elif self._client is not None:  # while the broker is away, the database has them
            self._fresh.extend(batch)
        self._wake.set()

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled: MQTT session, dispatcher, camera-API opens, NOTIFY listener."""
        self._loop = asyncio.get_running_loop()
        outbox.add_listener(self.wake)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._mqtt_forever(), name="gateway mqtt")
                group.create_task(self._barrier_forever(), name="gateway barriers")
                if connection.vendor == "postgresql":
                    group.create_task(self._listen_forever(), name="gateway notify")
        finally:
            outbox.remove_listener(self.wake)

    async def _mqtt_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._session()
            except Exception as error:  # MqttError, a group of them, a database hiccup
                log.warning("gateway: broker link down (%s); commands wait in the outbox", error)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, 5.0)

    async def _session(self) -> None:
        async with aiomqtt.Client(
            hostname=self.address.host,
            port=self.address.port,
            username=self.username,
            password=self.password,
            identifier=f"eppark-gateway-{random.getrandbits(32):08x}",
            keepalive=15,
            tls_params=aiomqtt.TLSParameters() if self.address.tls else None,
        ) as client:
            for kind in ("status", "events", "acks"):
                await client.subscribe(f"{protocol.PREFIX}/+/{kind}", qos=protocol.QOS)
            self._client = client
            self.connected.set()
            log.info("gateway: connected to %s:%s", self.address.host, self.address.port)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(client))
                group.create_task(self._dispatch(client))
                group.create_task(self._apply_forever())

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                code, kind = protocol.parse_topic(str(message.topic))
            except BadInput:
                continue
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            self._inbox.put_nowait((code, kind, bytes(payload)))

    async def _apply_forever(self) -> None:
        """Apply what robots reported, in batches: one worker-thread call for all that waits."""
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty() and len(batch) < 500:
                batch.append(self._inbox.get_nowait())
            try:
                await _db(store.apply_reports)(batch, self.clock())
            except Exception:  # a database hiccup: the robots re-send what was not acked
                log.exception("gateway: applying %d robot reports failed", len(batch))

    async def _dispatch(self, client: aiomqtt.Client) -> None:
        self._fresh.clear()  # the poll below finds everything committed while disconnected
        self._poll_now = True
        next_poll = 0.0
        while True:
            if self._fresh:
                batch, self._fresh = self._fresh, []
                await self._publish_fresh(client, batch)
            if self._poll_now or time.monotonic() >= next_poll:
                self._poll_now = False
                next_poll = time.monotonic() + self.poll_interval
                due = await _db(store.due_commands)(self.clock())
                sent = [item.pk for item in due if await self._publish(client, item)]
                if sent:
                    await _db(store.mark_sent)(sent, self.clock())
            self._wake.clear()
            if self._fresh or self._poll_now:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_poll - time.monotonic()))

    async def _publish_fresh(self, client: aiomqtt.Client, batch: list[outbox.Outgoing]) -> None:
        """Publish a hand-off; of several prompts to one robot only the newest still counts."""
        newest: dict[str, outbox.Outgoing] = {}
        for item in batch:
            if item.present_to is not None:
                held = newest.get(item.present_to)
                if held is None or (item.expires_at, item.pk) > (held.expires_at, held.pk):
                    newest[item.present_to] = item
        now = self.clock()
        sent = []
        for item in batch:
            if item.present_to is not None and newest[item.present_to] is not item:
                continue  # superseded in the database by the newer prompt
            if item.expires_at < now:
                continue  # the poll marks it expired; it is never sent late
            if await self._publish(client, item):
                sent.append(item.pk)
        if sent:
            await _db(store.mark_first_sent)(sent, now)

    async def _publish(self, client: aiomqtt.Client, item: outbox.Outgoing) -> bool:
        """Publish once per retry period: a command met by both hand-off and poll goes once."""
        now = time.monotonic()
        if now - self._recent.get(item.pk, -RECENT_S) < RECENT_S:
            return False
        await client.publish(item.topic, item.payload, qos=protocol.QOS)
        self._recent[item.pk] = now
        self.published += 1
        if len(self._recent) > 20_000:
            self._recent = {k: t for k, t in self._recent.items() if now - t < RECENT_S}
        return True

    async def _barrier_forever(self) -> None:
        while True:
            try:
                jobs = await _db(store.due_barrier_jobs)(self.clock())
                for job in jobs:
                    error = None
                    try:
                        await async_open_barrier(
                            job.vendor, job.url, job.username, job.password, 3.0
                        )
                    except BarrierError as exc:
                        error = str(exc)
                    await _db(store.finish_barrier_job)(job.pk, self.clock(), error)
            except Exception:
                log.exception("gateway: camera-API opens failed")
            await asyncio.sleep(self.poll_interval)

    async def _listen_forever(self) -> None:
        """Wake on PostgreSQL NOTIFY from other processes' commits."""
        import psycopg

        settings = connection.settings_dict
        params = {
            "dbname": settings["NAME"],
            "user": settings.get("USER") or None,
            "password": settings.get("PASSWORD") or None,
            "host": settings.get("HOST") or None,
            "port": settings.get("PORT") or None,
        }
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    autocommit=True, **{k: v for k, v in params.items() if v}
                )
                async with conn:
                    await conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                    async for _notice in conn.notifies():
                        self._poll_now = True
                        self._wake.set()
            except Exception as error:
                log.warning("gateway: NOTIFY listener down (%s)", error)
                await asyncio.sleep(1.0)
