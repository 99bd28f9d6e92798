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

While the database is away the MQTT session stays up: robots' reports (acks,
events, online/offline) are kept in memory (``backlog``) and written in order
when it is back, each database user retries on its own with a short backoff,
no robot is asked to repeat its acks (``resend_acks``) until the kept reports
are written, and the log says "database unreachable" once and "database back"
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import aiomqtt
from django.db import connection
from django.utils import timezone

from eppark.dbstate import DatabaseState, drop_connection, unreachable
from eppark.devices import outbox
from eppark.devices.lpr.barrier import BarrierError, async_open_barrier
from eppark.domain.errors import BadInput
from eppark.gateway import protocol, store
from eppark.gateway.backlog import ReportBacklog

log = logging.getLogger(__name__)
T = TypeVar("T")
RECENT_S = 1.5
"""A command published this recently is not published again (hand-off and poll may meet)."""
RECALL_EVERY_S = 5.0
"""How often the poll looks for commands whose final ack never came (``store.stage_recalls``)."""
REPORT_GATHER_S = 0.05
"""Robots' reports and first-send records gather this long into one batch of statements."""
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 1.0
"""A database user that could not reach the database tries again after this long, doubling."""
KEPT_REPORTS = 100_000
"""Robots' reports kept in memory while the database is away, at most (the oldest go first)."""


class _DatabaseThread:
    """The gateway's database work, on one thread of its own that keeps its connection.

    Everything the gateway reads and writes is small and batched, so one thread
    keeps up; a call that fails drops the connection and the next one reconnects.
    """

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="gateway-db")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _guarded, fn, *args)

    async def aclose(self) -> None:
        """Give the connection back and stop the thread."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self.executor, _close_connection)
        self.executor.shutdown(wait=False)


def _close_connection() -> None:
    connection.close()  # looked up in the calling thread: connections are per thread


def _guarded(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except Exception:
        drop_connection()  # it may be broken: the next call opens a fresh one
        raise


def _broker_trouble(error: BaseException) -> bool:
    """Whether ``error`` (or every error of a group) is the MQTT link's."""
    if isinstance(error, BaseExceptionGroup):
        return all(_broker_trouble(inner) for inner in error.exceptions)
    return isinstance(error, aiomqtt.MqttError | OSError | TimeoutError)


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
        self._poll_wake = asyncio.Event()
        self._fresh: list[outbox.Outgoing] = []
        self._recent: dict[int, float] = {}  # pk → when published, not to publish twice
        self._to_mark: list[tuple[int, datetime]] = []  # first sends to record, and when
        self._marking: asyncio.Task[None] | None = None
        self._db = _DatabaseThread()  # the dispatcher's: never waits behind robots' reports
        self._db_reports = _DatabaseThread()
        self._inbox: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
        self.backlog = ReportBacklog(KEPT_REPORTS)
        self._applying = False
        self.database = DatabaseState("gateway", log)
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
            self._poll_wake.set()
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
                # robots' reports are written whether the broker is up or not
                group.create_task(self._apply_forever(), name="gateway reports")
                if connection.vendor == "postgresql":
                    group.create_task(self._listen_forever(), name="gateway notify")
        finally:
            outbox.remove_listener(self.wake)
            await self._stop_marking()
            await self._db.aclose()
            await self._db_reports.aclose()

    async def _stop_marking(self) -> None:
        """Stop recording first sends (a task of its own): unrecorded sends are only re-sent."""
        marking, self._marking = self._marking, None
        if marking is not None and not marking.done():
            marking.cancel()
            await asyncio.gather(marking, return_exceptions=True)

    async def _mqtt_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._session()
            except Exception as error:  # MqttError, or a group of them
                if _broker_trouble(error):
                    log.warning(
                        "gateway: broker link down (%s); commands wait in the outbox", error
                    )
                else:  # a bug, not the broker (the database's outages are handled where met)
                    log.exception("gateway: an error ended the MQTT session; reconnecting")
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
            max_inflight_messages=1000,  # publishes go out together, not one PUBACK at a time
            tls_params=aiomqtt.TLSParameters() if self.address.tls else None,
        ) as client:
            protocol.send_at_once(client)
            for kind in ("status", "events", "acks"):
                await client.subscribe(f"{protocol.PREFIX}/+/{kind}", qos=protocol.QOS)
            self._client = client
            self.connected.set()
            log.info("gateway: connected to %s:%s", self.address.host, self.address.port)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(client))
                group.create_task(self._dispatch(client, group))
                group.create_task(self._poll_forever(client))

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
        """Apply what robots reported, in batches: one worker-thread call for all that waits.

        After the first report a batch gathers for ``REPORT_GATHER_S``: a few statements
        then cover dozens of acks and events (the console's mirror lags by that much).
        While the database cannot be reached, reports are kept (in order, with the time
        each arrived) and the oldest batch is tried again every second or so.
        """
        backoff = RETRY_FIRST_S
        while True:
            if not len(self.backlog):
                first = await self._inbox.get()
                await asyncio.sleep(REPORT_GATHER_S)
                self.backlog.add([first, *self._drain_inbox()], self.clock())
            else:
                self.backlog.add(self._drain_inbox(), self.clock())
            now, batch = self.backlog.take()
            self._applying = True
            try:
                await self._db_reports(store.apply_reports, batch, now)
            except asyncio.CancelledError:
                self.backlog.put_back(now, batch)  # stopping: kept, not lost (idempotent)
                raise
            except Exception as error:
                if not unreachable(error):  # not an outage: as before, robots re-send
                    log.exception("gateway: applying %d robot reports failed", len(batch))
                    continue
                self.backlog.put_back(now, batch)
                self.database.failed(
                    error, holding="robots' reports are kept and written when it is back"
                )
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            finally:
                self._applying = False
            backoff = RETRY_FIRST_S
            self._reached(f"writing {len(self.backlog)} kept robot reports")

    def _drain_inbox(self) -> list[tuple[str, str, bytes]]:
        reports = []
        while not self._inbox.empty():
            reports.append(self._inbox.get_nowait())
        return reports

    def _reached(self, note: str = "") -> None:
        """A database call succeeded: say so once if the database was away."""
        if not self.database.up:
            dropped = self.backlog.dropped
            if dropped:
                note = f"{note}; {dropped} reports were dropped (over {KEPT_REPORTS})"
                self.backlog.dropped = 0
            self.database.succeeded(note=note)

    def _reports_waiting(self) -> bool:
        """Whether robots' reports wait to be written (acks not yet applied)."""
        return self._applying or len(self.backlog) > 0 or not self._inbox.empty()

    async def _dispatch(self, client: aiomqtt.Client, group: asyncio.TaskGroup) -> None:
        """Publish hand-offs the moment they arrive; never wait for the broker or the database.

        The broker's acknowledgements are awaited by a task of the session's group (a
        failure ends the session), so a busy moment never holds up the next hand-off.
        """
        self._fresh.clear()  # the poll finds everything committed while disconnected
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._fresh:
                batch, self._fresh = self._fresh, []
                pending = self._send(client, self._newest(batch))
                if pending:
                    group.create_task(self._confirm_fresh(pending))

    async def _poll_forever(self, client: aiomqtt.Client) -> None:
        """Re-send what is due (retries, anything a hand-off missed) and expire what is late.

        A database that cannot be reached leaves the MQTT session alone: the poll tries
        again shortly. Robots are asked for missing acks (``stage_recalls``) only when
        the database is up and every report kept meanwhile is written: the acks asked
        for may be in that backlog.
        """
        next_recall = 0.0
        backoff = RETRY_FIRST_S
        while True:
            self._poll_wake.clear()
            try:
                if (
                    time.monotonic() >= next_recall
                    and self.database.up
                    and not self._reports_waiting()
                ):
                    next_recall = time.monotonic() + RECALL_EVERY_S
                    await self._db(store.stage_recalls, self.clock())
                due = await self._db(store.due_commands, self.clock())
                pending = self._send(client, due)
                if pending:
                    sent = await self._confirmed(pending)
                    if sent:
                        await self._db(store.mark_sent, sent, self.clock())
            except Exception as error:
                if not unreachable(error):
                    raise
                self.database.failed(error, holding="commands wait in the outbox")
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            backoff = RETRY_FIRST_S
            if not self._reports_waiting():
                self._reached()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_wake.wait(), self.poll_interval)

    def _newest(self, batch: list[outbox.Outgoing]) -> list[outbox.Outgoing]:
        """Of several prompts to one robot only the newest still counts; nothing expired."""
        newest: dict[str, outbox.Outgoing] = {}
        for item in batch:
            if item.present_to is not None:
                held = newest.get(item.present_to)
                if held is None or (item.expires_at, item.pk) > (held.expires_at, held.pk):
                    newest[item.present_to] = item
        now = self.clock()
        return [
            item
            for item in batch
            # superseded in the database by a newer prompt; or expired (the poll marks it)
            if (item.present_to is None or newest[item.present_to] is item)
            and item.expires_at >= now
        ]

    def _send(
        self, client: aiomqtt.Client, items: list[outbox.Outgoing]
    ) -> list[tuple[outbox.Outgoing, asyncio.Task[None]]]:
        """Start publishing (QoS 1) each item not published in the last ``RECENT_S``.

        Hand-off and poll may both meet a command; it goes out once. The broker's
        acknowledgements come back through the returned tasks.
        """
        now = time.monotonic()
        pending = []
        for item in items:
            if now - self._recent.get(item.pk, -RECENT_S) < RECENT_S:
                continue
            self._recent[item.pk] = now
            publish = client.publish(item.topic, item.payload, qos=protocol.QOS)
            pending.append((item, asyncio.ensure_future(publish)))
        if len(self._recent) > 20_000:
            self._recent = {k: t for k, t in self._recent.items() if now - t < RECENT_S}
        return pending

    async def _confirmed(
        self, pending: list[tuple[outbox.Outgoing, asyncio.Task[None]]]
    ) -> list[int]:
        """Await the broker's acknowledgements; the ids that went out.

        A broker error ends the session, after the rest are recorded as sent.
        """
        results = await asyncio.gather(*(task for _item, task in pending), return_exceptions=True)
        sent = []
        failure: BaseException | None = None
        for (item, _task), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                self._recent.pop(item.pk, None)  # not out: the next session's poll sends it
                continue
            sent.append(item.pk)
        self.published += len(sent)
        if failure is not None:
            if sent:
                # unrecorded sends are only sent again: robots drop duplicates
                with contextlib.suppress(Exception):
                    await self._db(store.mark_sent, sent, self.clock())
            raise failure
        return sent

    async def _confirm_fresh(
        self, pending: list[tuple[outbox.Outgoing, asyncio.Task[None]]]
    ) -> None:
        sent = await self._confirmed(pending)
        if sent:
            now = self.clock()
            self._to_mark.extend((pk, now) for pk in sent)
            if self._marking is None or self._marking.done():
                self._marking = asyncio.create_task(self._mark_first_sent())

    async def _mark_first_sent(self) -> None:
        """Record first sends in batches (the publish does not wait for it).

        While the database is away they are kept (up to ``KEPT_REPORTS``) and recorded
        with the time each went out once it is back.
        """
        await asyncio.sleep(REPORT_GATHER_S)
        backoff = RETRY_FIRST_S
        while self._to_mark:
            marks, self._to_mark = self._to_mark, []
            by_time: dict[datetime, list[int]] = {}
            for pk, at in marks:
                by_time.setdefault(at, []).append(pk)
            try:
                for at, pks in sorted(by_time.items()):
                    await self._db(store.mark_first_sent, pks, at)
            except Exception as error:
                if not unreachable(error):  # unmarked commands are re-sent: robots drop dupes
                    log.exception("gateway: recording %d sends failed", len(marks))
                    continue
                self._to_mark = [*marks, *self._to_mark][-KEPT_REPORTS:]
                self.database.failed(error, holding="commands wait in the outbox")
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, RETRY_MAX_S)

    async def _barrier_forever(self) -> None:
        while True:
            try:
                jobs = await self._db(store.due_barrier_jobs, self.clock())
                for job in jobs:
                    error = None
                    try:
                        await async_open_barrier(
                            job.vendor, job.url, job.username, job.password, 3.0
                        )
                    except BarrierError as exc:
                        error = str(exc)
                    await self._db(store.finish_barrier_job, job.pk, self.clock(), error)
            except Exception as error:
                if unreachable(error):
                    self.database.failed(error, holding="camera-API opens wait in the outbox")
                else:
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
        listening = DatabaseState("gateway: NOTIFY listener", log)
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    autocommit=True, **{k: v for k, v in params.items() if v}
                )
                async with conn:
                    await conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                    listening.succeeded(note="polling for what was missed")
                    self._take([])  # commands committed while it was down: the poll finds them
                    async for notice in conn.notifies():
                        try:
                            item = outbox.from_notice(notice.payload)
                        except (ValueError, TypeError, KeyError):
                            item = None
                        self._take([item] if item is not None else [])
            except Exception as error:
                if unreachable(error):
                    listening.failed(error, holding="the poll still finds new commands")
                else:
                    log.warning("gateway: NOTIFY listener down (%s)", error)
                await asyncio.sleep(RETRY_MAX_S)
