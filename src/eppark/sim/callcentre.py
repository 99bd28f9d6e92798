"""``eppark sim call``: a simulated call centre that speaks the generic provider's protocol.

It does what a real call centre does around EP Park, over the same wires:

- A driver presses a robot's call button: the robot dials the hotline. The
  simulator sees the robot's ``call_button`` event on the MQTT broker (it logs in
  as the gateway user, which may read every robot's events) and plays the call:
  ``ringing`` (caller the robot's SIM, ``robot.phone``; callee the hotline; seat
  the next of its seats, round robin), ``answered`` about 1.5 s later (the agent
  picks up on the softphone) and ``hangup`` when the talk is over, each POSTed to
  ``/cti/generic/<key>`` as contracts.md writes it, signed when it has a secret.
  A press while that robot's call is still up, or an event delivered twice (QoS 1),
  makes no second call.
- An agent's ``呼叫``: EP Park POSTs ``{"seat", "number", "request_id"}`` to the
  simulator's HTTP port (the centre's ``callout_url``); it checks the signature,
  answers 200 ``{"ok": true}`` (409 for a seat it does not have, 401 for a bad
  signature, 400 for a bad body) and about 1 s later posts ``outbound_connected``
  for that number and seat (the robot picked up), then ``hangup``. A callout sent
  twice (same ``request_id``) dials once.

Seats: the ones given (``--seats``), else those of agents who signed in lately
(the call centre's logged-in seats), else every bound seat, read from the
database each call. Robots' phone numbers are read from the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import aiomqtt
import httpx
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connection

from eppark.calls.cti import generic
from eppark.domain.errors import BadInput
from eppark.gateway import protocol

log = logging.getLogger(__name__)

HOTLINE = "4008001234"
ANSWER_AFTER = 1.5
CONNECT_AFTER = 1.0
TALK = 45.0
SIGNED_IN_WITHIN = timedelta(hours=12)
MAX_REQUEST = 64 * 1024
SEEN = 10_000


def robot_phones() -> dict[str, str]:
    """Every robot's SIM number by robot code (from the database)."""
    from eppark.devices.models import Robot

    close_old_connections()
    try:
        return dict(Robot.objects.exclude(phone="").values_list("code", "phone"))
    finally:
        connection.close()


def signed_in_seats() -> list[str]:
    """Seats a call centre would route to: agents who signed in lately, else every bound seat."""
    from django.utils import timezone

    from eppark.console.models import Seat

    close_old_connections()
    try:
        bound = Seat.objects.filter(agent__isnull=False, agent__is_active=True)
        recent = bound.filter(agent__last_login__gte=timezone.now() - SIGNED_IN_WITHIN)
        seats = list(recent.order_by("number").values_list("number", flat=True))
        return seats or list(bound.order_by("number").values_list("number", flat=True))
    finally:
        connection.close()


class SimCallCentre:
    """The simulated call centre: MQTT watcher, HTTP callout endpoint, event poster."""

    def __init__(
        self,
        server: str,
        key: str,
        *,
        secret: str = "",
        seats: Sequence[str] | Callable[[], Sequence[str]] = ("1001",),
        phones: Callable[[], dict[str, str]] = robot_phones,
        mqtt_url: str | None = None,
        mqtt_password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        hotline: str = HOTLINE,
        answer_after: float = ANSWER_AFTER,
        connect_after: float = CONNECT_AFTER,
        talk: float = TALK,
        out: TextIO | None = None,
    ) -> None:
        self.url = f"{server.rstrip('/')}/cti/generic/{key}"
        self.secret = secret
        self._seats = seats
        self._phones = phones
        self.mqtt_url = mqtt_url
        self.mqtt_password = mqtt_password
        self.host = host
        self.port = port
        self.hotline = hotline
        self.answer_after = answer_after
        self.connect_after = connect_after
        self.talk = talk
        self.out = out
        self.listening = asyncio.Event()
        self.watching = asyncio.Event()
        self.posted: list[dict[str, Any]] = []  # every event sent, with the server's status
        self._turn = itertools.count()
        self._seen: OrderedDict[str, None] = OrderedDict()  # event ids and request ids
        self._live: set[str] = set()  # robots whose call is still up
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve callouts and watch call buttons (when a broker is given) until cancelled."""
        server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0))
        self.listening.set()
        self._say({"sim": "call", "listening": f"http://{self.host}:{self.port}/"})
        try:
            async with server:
                if self.mqtt_url:
                    await self._watch_forever()
                else:
                    await asyncio.Event().wait()
        finally:
            self.listening.clear()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.aclose()

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(coroutine: Any) -> None:
        try:
            await coroutine
        except Exception:  # one call's trouble never stops the call centre
            log.exception("sim call centre: a call failed")

    def _once(self, key: str) -> bool:
        """True the first time ``key`` is seen (a redelivery or a repeated callout: False)."""
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        return True

    def _say(self, record: dict[str, Any]) -> None:
        if self.out is not None:
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")

    async def seat(self) -> str:
        """The seat the next call rings at (round robin)."""
        seats = self._seats
        listed = list(
            await sync_to_async(seats, thread_sensitive=False)() if callable(seats) else seats
        )
        if not listed:
            return ""
        return listed[next(self._turn) % len(listed)]

    # --- the robots' call buttons ----------------------------------------------------------

    async def _watch_forever(self) -> None:
        assert self.mqtt_url is not None
        address = protocol.parse_mqtt_url(self.mqtt_url)
        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    hostname=address.host,
                    port=address.port,
                    username=address.username or protocol.GATEWAY_USER,
                    password=address.password or self.mqtt_password,
                    identifier=f"eppark-sim-call-{random.getrandbits(32):08x}",
                    keepalive=15,
                    tls_params=aiomqtt.TLSParameters() if address.tls else None,
                ) as client:
                    await client.subscribe(f"{protocol.PREFIX}/+/events", qos=protocol.QOS)
                    self.watching.set()
                    backoff = 0.2
                    async for message in client.messages:
                        self._on_message(str(message.topic), message.payload)
            except aiomqtt.MqttError as error:
                log.info("sim call centre: broker link down (%s)", error)
            finally:
                self.watching.clear()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, 5.0)

    def _on_message(self, name: str, payload: Any) -> None:
        try:
            code, _kind = protocol.parse_topic(name)
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            event = protocol.Event.from_dict(json.loads(bytes(raw)))
        except (BadInput, ValueError):
            return
        if event.type != "call_button" or not self._once(f"event:{event.event_id}"):
            return
        if code in self._live:
            return  # the driver pressed again during the call
        self._live.add(code)
        self._spawn(self._inbound(code))

    async def _inbound(self, code: str) -> None:
        """One driver's call: ringing, answered, then hung up."""
        try:
            phones = await sync_to_async(self._phones, thread_sensitive=False)()
            number = phones.get(code, "")
            if not number:
                self._say({"sim": "call", "robot": code, "skipped": "robot has no SIM number"})
                return
            seat = await self.seat()
            call_id = f"sim-{uuid.uuid4().hex[:16]}"
            call = {"call_id": call_id, "caller": number, "callee": self.hotline, "seat": seat}
            await self.post("ringing", call)
            await asyncio.sleep(self.answer_after)
            await self.post("answered", call)
            await asyncio.sleep(self.talk)
            await self.post("hangup", call)
        finally:
            self._live.discard(code)

    # --- posting events --------------------------------------------------------------------

    async def post(self, event: str, call: dict[str, str]) -> int:
        """POST one event (signed when there is a secret); the server's status, 0 if unreached."""
        body_dict = {"event": event, **call, "at": datetime.now(UTC).isoformat()}
        body = json.dumps(body_dict, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[generic.SIGNATURE_HEADER] = generic.signature(self.secret, body)
        client = self._client
        assert client is not None
        status = 0
        for attempt in range(3):
            try:
                response = await client.post(self.url, content=body, headers=headers)
                status = response.status_code
                break
            except httpx.HTTPError as error:
                log.info("sim call centre: posting %s failed (%s)", event, error)
                await asyncio.sleep(0.5 * (attempt + 1))
        record = {**body_dict, "status": status}
        self.posted.append(record)
        self._say({"sim": "call", **record})
        return status

    # --- callouts --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                status, reply = await self._request(reader)
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, ConnectionError):
            status, reply = 400, {"ok": False, "error": "bad request"}
        body = json.dumps(reply, ensure_ascii=False).encode()
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        line = (await reader.readline()).decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            raw = (await reader.readline()).decode("latin-1")
            if raw in ("\r\n", "\n", ""):
                break
            name, _sep, value = raw.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        if length > MAX_REQUEST:
            return 413, {"ok": False, "error": "too large"}
        body = await reader.readexactly(length) if length else b""
        if len(line) < 2 or line[0] != "POST":
            return 405, {"ok": False, "error": "POST a callout"}
        return await self.callout(body, headers.get(generic.SIGNATURE_HEADER.lower()))

    async def callout(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        """A callout request from EP Park: check it, then dial (status and reply)."""
        try:
            generic.verify(self.secret, body, signature)
        except Exception:
            return 401, {"ok": False, "error": "missing or wrong X-EPPark-Signature"}
        try:
            data = json.loads(body.decode("utf-8"))
            seat, number, request_id = data["seat"], data["number"], data["request_id"]
            if not all(isinstance(v, str) and v for v in (seat, number, request_id)):
                raise ValueError
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return 400, {"ok": False, "error": "body: {seat, number, request_id} expected"}
        seats = self._seats
        if not callable(seats) and seat not in seats:
            return 409, {"ok": False, "error": f"seat {seat} does not exist"}
        if self._once(f"request:{request_id}"):
            self._say({"sim": "call", "callout": request_id, "seat": seat, "number": number})
            self._spawn(self._outbound(seat, number, request_id))
        return 200, {"ok": True}

    async def _outbound(self, seat: str, number: str, request_id: str) -> None:
        """The robot's SIM rings and picks up; the talk; the agent hangs up."""
        await asyncio.sleep(self.connect_after)
        call = {
            "call_id": f"sim-out-{request_id[:32]}",
            "caller": self.hotline,
            "callee": number,
            "seat": seat,
            "request_id": request_id,
        }
        await self.post("outbound_connected", call)
        await asyncio.sleep(self.talk)
        await self.post("hangup", call)


# --- the command ----------------------------------------------------------------------------


def main_sim_call(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``eppark sim call``: run the simulated call centre until interrupted."""
    parser = argparse.ArgumentParser(
        prog="eppark sim call",
        description="A simulated call centre: robots' call buttons become calls to EP Park "
        "(generic provider); EP Park's callouts are answered.",
    )
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="EP Park's address")
    parser.add_argument("--key", required=True, help="the call centre's endpoint key")
    parser.add_argument(
        "--secret",
        default=os.environ.get("EPPARK_CTI_SECRET", ""),
        help="signs events and checks callouts (default: EPPARK_CTI_SECRET, else unsigned)",
    )
    parser.add_argument(
        "--seats", help="comma-separated seat numbers (default: signed-in agents' seats)"
    )
    parser.add_argument("--port", type=int, default=8010, help="port for callout requests")
    parser.add_argument("--host", default="127.0.0.1", help="address for callout requests")
    parser.add_argument("--mqtt", help="broker URL (default: MQTT_URL, else the embedded broker)")
    parser.add_argument("--hotline", default=HOTLINE, help="the number robots dial")
    parser.add_argument("--talk", type=float, default=TALK, help="seconds before hanging up")
    parser.add_argument("--no-mqtt", action="store_true", help="answer callouts only")
    args = parser.parse_args(argv)
    try:
        mqtt_url = None if args.no_mqtt else (args.mqtt or protocol.default_mqtt_url(os.environ))
        password = None
        if mqtt_url is not None:
            protocol.parse_mqtt_url(mqtt_url)
            from eppark.devices.credentials import gateway_password

            password = gateway_password()
        seats: Sequence[str] | Callable[[], Sequence[str]] = signed_in_seats
        if args.seats:
            seats = [seat.strip() for seat in args.seats.split(",") if seat.strip()]
        if not 0 <= args.port < 65536 or args.talk < 0:
            raise BadInput("--port/--talk", "out of range")
    except (BadInput, ValueError, ImproperlyConfigured) as error:
        print(f"eppark sim call: {error}", file=sys.stderr)
        return 2
    centre = SimCallCentre(
        args.server,
        args.key,
        secret=args.secret,
        seats=seats,
        mqtt_url=mqtt_url,
        mqtt_password=password,
        host=args.host,
        port=args.port,
        hotline=args.hotline,
        talk=args.talk,
        out=out or sys.stdout,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(centre.run())
    return 0
