"""What the agent desk's browser tests stand on: the project's ASGI app served for real, a
call centre that posts events as a real one would, and the gate scenes of scenarios.md §2.

- ``DeskServer``: ``eppark.asgi.application`` (Django, the device ingress and the desk's
  WebSocket through Channels) under uvicorn in a thread of the test process, on a free
  port and the test database. pytest-django's live server is WSGI: it cannot carry the
  desk's WebSocket. In one process the in-memory channel layer reaches every consumer.
  Stopped at the end of each test with its event loop closed and its threads joined (the
  leak guard of ``tests/conftest.py`` checks both).
- ``CallCentre``: the generic provider's side (contracts.md): signed JSON events posted
  to ``/cti/generic/<key>``, and a stand-in callout endpoint (a small HTTP server that
  records each callout and, like the provider, then posts ``outbound_connected``).
- ``Gates``: a lot with an entry and an exit gate, each with an EP君 robot (SIM number,
  relay opening) and a Vzenith plate camera; passes valid or expired, shared-space
  groups, stays paid or owing; a car is put at a gate through the real read path (a
  camera push to the running server), so the robot got its automatic decision first.
- ``Robot``: what a robot was sent, read from the outbox (``devices.models.Command``):
  ``present`` (voice, display, light) and ``open``.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.calls.cti import generic
from eppark.calls.models import CallCentre as CallCentreRow
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera, Command
from eppark.devices.models import Robot as RobotRow
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.sim.cameras import build_push
from eppark.sim.standin import QuietHandler, StandInServer
from eppark.stays.models import GateVisit, Stay
from tests.integration.factories import TARIFF, keyed_camera, staff
from tests.integration.mqtt_fixtures import cancel_tasks, free_port, wait_listening

CENTRE_KEY = "k-cc-desk-tests-0001"
CENTRE_SECRET = "cc-secret-desk-tests"
GATEWAY_PASSWORD = "gw-secret-desk-tests"


# --- the server ----------------------------------------------------------------------------------


class DeskServer:
    """``eppark.asgi.application`` under uvicorn in a thread of the test process; with
    ``robots``, also the gateway (``eppark.gateway.service.Gateway``) and an embedded MQTT
    broker on the same event loop, and each robot added run by the simulator
    (``eppark.sim.robot.SimRobot``): commands reach the robots over MQTT, their acks and
    events (screens shown, ID photos) come back the way they do in production."""

    def __init__(self, *, robots: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.with_robots = robots
        self.mqtt_port = free_port()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sims: dict[str, Any] = {}
        self._users: dict[str, str] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._error: BaseException | None = None
        self._ingress: Any = None
        self._own_pool: ThreadPoolExecutor | None = None
        self._their_pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Serve; return once the port answers (and the gateway is connected)."""
        import uvicorn

        import eppark.asgi

        application = eppark.asgi.application
        # The device ingress answers camera pushes on threads of its own: one here, whose
        # database connection is closed when the test ends.
        self._ingress = application.application_mapping["http"]
        self._their_pool = self._ingress.executor
        self._own_pool = ThreadPoolExecutor(1, thread_name_prefix="desk-ingress")
        self._ingress.executor = self._own_pool
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="desk-server", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        deadline = time.monotonic() + 30
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the desk server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("the desk server did not start within 30 s")
            time.sleep(0.01)
        wait_listening(self.port)
        if self.with_robots:
            self._on_loop(self._gateway_connected(), 30)

    def _on_loop(self, coroutine: Any, timeout: float) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        ready.set()
        try:
            loop.run_until_complete(self._main())
        except BaseException as error:  # reported by start() or stop()
            self._error = error
        finally:
            try:
                loop.run_until_complete(cancel_tasks())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _main(self) -> None:
        from eppark.gateway.broker import EmbeddedBroker
        from eppark.gateway.protocol import GATEWAY_USER
        from eppark.gateway.service import Gateway

        broker = None
        if self.with_robots:
            self._users[GATEWAY_USER] = GATEWAY_PASSWORD
            users = self._users
            broker = EmbeddedBroker(
                "127.0.0.1", self.mqtt_port, lambda user, password: users.get(user) == password
            )
            await broker.start()
            self.gateway = Gateway(broker.url, password=GATEWAY_PASSWORD, poll_interval=0.2)
            self._tasks.append(asyncio.create_task(self.gateway.run(), name="desk gateway"))
        try:
            await self._server.serve()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if broker is not None:
                await broker.stop()

    async def _gateway_connected(self) -> None:
        await asyncio.wait_for(self.gateway.connected.wait(), 20)

    def add_robot(self, code: str) -> Any:
        """Run robot ``code`` in the simulator, connected and subscribed; the ``SimRobot``."""
        if not self.with_robots:
            return None
        password = f"pw-{code}"
        self._users[code] = password

        async def online() -> Any:
            from eppark.sim.robot import SimRobot

            robot = SimRobot(
                code,
                password,
                f"mqtt://127.0.0.1:{self.mqtt_port}",
                out=io.StringIO(),
                max_backoff=1.0,
            )
            self._tasks.append(asyncio.create_task(robot.run(), name=f"robot {code}"))
            await robot.wait_online(20)
            return robot

        robot = self._on_loop(online(), 30)
        self.sims[code] = robot
        return robot

    def stop(self) -> None:
        """Stop serving (open connections are closed), join the thread, release the pool."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(10)
        if self._own_pool is not None:
            self._own_pool.submit(close_connection).result(30)
            self._own_pool.shutdown(wait=True)
            self._ingress.executor = self._their_pool
        if self._error is not None:
            raise RuntimeError("the desk server failed") from self._error


def close_connection() -> None:
    """Close the calling thread's database connection."""
    connection.close()


def log_in(context: Any, server: DeskServer, user: User) -> None:
    """Give the browser ``user``'s session (as the admin login would)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": server.url}]
    )


# --- the call centre -----------------------------------------------------------------------------


class CallCentre:
    """The generic provider, as seen from the project: its row, its events, its callouts."""

    def __init__(self, server: DeskServer, callout_url: str = "") -> None:
        self.server = server
        self.row = CallCentreRow.objects.create(
            provider="generic",
            name="呼叫中心",
            key_digest=key_digest(CENTRE_KEY),
            key_hint=CENTRE_KEY[-4:],
            secret=CENTRE_SECRET,
            callout_url=callout_url,
        )
        self.http = httpx.Client(base_url=server.url, timeout=15)
        self.calls = 0

    def post(self, event: dict[str, Any]) -> httpx.Response:
        """Post one event exactly as the provider does: JSON, signed."""
        body = json.dumps(event, ensure_ascii=False).encode()
        response = self.http.post(
            f"/cti/generic/{CENTRE_KEY}",
            content=body,
            headers={
                "Content-Type": "application/json",
                generic.SIGNATURE_HEADER: generic.signature(CENTRE_SECRET, body),
            },
        )
        assert response.status_code == 200, response.text
        return response

    def event(
        self,
        kind: str,
        call_id: str,
        *,
        caller: str,
        callee: str,
        seat: str,
        at: datetime | None = None,
        request_id: str = "",
    ) -> httpx.Response:
        """One event of the generic provider's format."""
        event: dict[str, Any] = {
            "event": kind,
            "call_id": call_id,
            "caller": caller,
            "callee": callee,
            "seat": seat,
            "at": (at or timezone.now()).isoformat(),
        }
        if request_id:
            event["request_id"] = request_id
        return self.post(event)

    def ring(self, robot: RobotRow, seat: str, *, answer: bool = True) -> str:
        """A robot's call button: ringing, then answered at ``seat``; the call id."""
        self.calls += 1
        call_id = f"cc-{uuid.uuid4().hex[:12]}"
        self.event("ringing", call_id, caller=robot.phone, callee="4001506888", seat=seat)
        if answer:
            self.event("answered", call_id, caller=robot.phone, callee="4001506888", seat=seat)
        return call_id

    def hang_up(self, call_id: str, robot: RobotRow, seat: str) -> None:
        """The driver hung up."""
        self.event("hangup", call_id, caller=robot.phone, callee="4001506888", seat=seat)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


@dataclass
class Callout:
    """One callout request the project sent to the provider."""

    body: dict[str, Any]
    signature: str
    raw: bytes


class CalloutStandIn(StandInServer):
    """The provider's callout endpoint: records each request and answers 200 (started at
    once; ``url`` is where the project sends its callouts)."""

    NAME = "callout-standin"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Callout] = []
        self.start()
        self.url = f"{self.base_url}/callout"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                signed = self.headers.get(generic.SIGNATURE_HEADER, "")
                owner.received.append(Callout(json.loads(raw or b"{}"), signed, raw))
                self._send(200, json.dumps({"ok": True}).encode(), "application/json")

        return Handler

    def wait_for(self, count: int = 1, timeout: float = 15) -> list[Callout]:
        """Block until ``count`` callouts came in."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} callouts came in, not {count}")
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        """Stop serving."""
        self.stop()


# --- what a robot was sent -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What a robot got since a mark: ``present`` args (voice, display, light), opens, and
    the names of other commands (``capture_id``)."""

    presents: list[dict[str, Any]]
    opens: int
    others: list[str]

    @property
    def last(self) -> dict[str, Any]:
        """The last ``present`` (what the robot shows now)."""
        assert self.presents, "the robot was sent nothing to show"
        return self.presents[-1]

    def shows(self) -> tuple[str | None, str, str]:
        """(voice, display kind, light) of the last ``present``."""
        args = self.last
        return args.get("voice"), args["display"]["kind"], args["light"]


class Robot:
    """A robot of the scene: its row; what the outbox staged for it; and, when the server
    runs robots, what the simulated robot actually received and ran over MQTT."""

    def __init__(self, row: RobotRow, sim: Any = None) -> None:
        self.row = row
        self.sim = sim

    @property
    def phone(self) -> str:
        """Its SIM number."""
        return self.row.phone

    def mark(self) -> int:
        """A mark: commands staged after it are what came next."""
        last = Command.objects.order_by("-pk").values_list("pk", flat=True).first()
        return int(last or 0)

    def staged(self, since: int = 0) -> list[Command]:
        """The outbox's commands for this robot staged after ``since``."""
        return list(Command.objects.filter(robot=self.row, pk__gt=since).order_by("pk"))

    def sent(self, since: int = 0) -> Sent:
        """What the outbox staged for the robot after ``since``."""
        rows = self.staged(since)
        return Sent(
            presents=[dict(c.args) for c in rows if c.cmd == "present"],
            opens=sum(1 for c in rows if c.cmd == "open"),
            others=[c.cmd for c in rows if c.cmd not in ("present", "open")],
        )

    def received(self, since: int = 0, timeout: float = 15) -> Sent:
        """What the robot ran of the commands staged after ``since``, once it ran them all
        (the simulated robot over MQTT; without one, what the outbox holds)."""
        if self.sim is None:
            return self.sent(since)
        wanted = [c.cmd_id for c in self.staged(since)]
        deadline = time.monotonic() + timeout
        while True:
            ran = {c.cmd_id: c for c in list(self.sim.executed)}
            if all(cmd_id in ran for cmd_id in wanted):
                break
            if time.monotonic() > deadline:
                missing = [cmd_id for cmd_id in wanted if cmd_id not in ran]
                raise TimeoutError(f"robot {self.row.code} never ran {missing}")
            time.sleep(0.02)
        commands = [ran[cmd_id] for cmd_id in wanted]
        return Sent(
            presents=[c.args.to_dict() for c in commands if c.cmd == "present"],
            opens=sum(1 for c in commands if c.cmd == "open"),
            others=[c.cmd for c in commands if c.cmd not in ("present", "open")],
        )


# --- the scenes of scenarios.md §2 ---------------------------------------------------------------


@dataclass
class Gates:
    """A lot with an entry and an exit gate, each with a robot and a plate camera, and an agent
    with a seat who serves it."""

    server: DeskServer
    confirm: bool = True
    code: str = "caike"
    name: str = "彩科彩悦大厦"
    lot: Lot = field(init=False)
    gates: dict[str, Gate] = field(init=False, default_factory=dict)
    robots: dict[str, Robot] = field(init=False, default_factory=dict)
    cameras: dict[str, Camera] = field(init=False, default_factory=dict)
    agent: User = field(init=False)
    seat: str = field(init=False)
    plate_id: int = 5000

    def __post_init__(self) -> None:
        sync_role_groups()  # transactional tests flush the groups the migrations made
        self.lot = Lot.objects.create(
            code=self.code,
            name=self.name,
            capacity=100,
            tariff=TARIFF,
            temp_entry_confirmation=self.confirm,
        )
        for n, (direction, words) in enumerate((("entry", "入口"), ("exit", "出口")), start=1):
            gate = Gate.objects.create(
                lot=self.lot,
                code=f"{direction}-1",
                name=f"{self.name}{words}",
                direction=direction,
                opening_channel="robot",  # opens reach the barrier through the robot's relay
            )
            robot = RobotRow.objects.create(
                code=f"EP-{self.code}-{direction}",
                name=f"{self.name}{words}",
                lot=self.lot,
                gate=gate,
                phone=f"1440000{n:04d}",
                online=True,
                last_seen_at=timezone.now(),
            )
            camera = keyed_camera(
                f"k-{self.code}-{direction}",
                vendor="vzenith",
                lot=self.lot,
                gate=gate,
                robot=robot,
                serial=f"sn-{self.code}-{direction}",
            )
            sim = self.server.add_robot(robot.code)
            self.gates[direction], self.robots[direction] = gate, Robot(robot, sim)
            self.cameras[direction] = camera
        self.agent = staff("kf-001", Role.AGENT, [self.lot], first_name="客服一号")
        self.seat = self.agent.seat.number
        self.http = httpx.Client(base_url=self.server.url, timeout=15)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    # the records a scene starts from

    def give_pass(
        self, *plates: str, expired_days: float | None = None, spaces: int = 1
    ) -> MonthlyPass:
        """A monthly pass for ``plates``: valid 30 more days, or expired ``expired_days`` ago."""
        now = timezone.now()
        until = (
            now + timedelta(days=30) if expired_days is None else now - timedelta(days=expired_days)
        )
        monthly = MonthlyPass.objects.create(
            lot=self.lot,
            owner="李四",
            phone="13800000000",
            valid_from=until - timedelta(days=90),
            valid_until=until,
            spaces=spaces,
        )
        for plate in plates:
            PassPlate.objects.create(monthly_pass=monthly, lot=self.lot, plate=plate)
        return monthly

    def inside(self, plate: str, *, hours: float = 3, entered_as: str = "temp") -> Stay:
        """A car that entered ``hours`` ago and is still inside."""
        entered = timezone.now() - timedelta(hours=hours)
        stay = Stay.objects.create(
            lot=self.lot,
            plate=plate,
            entered_as=entered_as,
            entered_at=entered,
            entry_gate=self.gates["entry"],
        )
        GateVisit.objects.create(
            gate=self.gates["entry"],
            lot=self.lot,
            plate=plate,
            arrived_at=entered,
            resolved_at=entered,
            resolution="opened",
            scenario="entry.temp_allowed" if entered_as == "temp" else "entry.monthly_valid",
            opened=True,
            stay=stay,
        )
        return stay

    def pay(self, stay: Stay, amount: int = 3000) -> Order:
        """The stay paid in full just now (its order, paid)."""
        now = timezone.now()
        return Order.objects.create(
            kind="temp",
            lot=self.lot,
            plate=stay.plate,
            stay=stay,
            amount=amount,
            state="paid",
            paid_at=now,
            out_trade_no=f"T{uuid.uuid4().hex[:20]}",
        )

    # a car at a gate

    def arrive(self, direction: str, plate: str | None) -> GateVisit:
        """The gate's camera reads ``plate`` (None: no plate) and pushes it to the server; the
        robot gets the gate's automatic decision. The visit it made."""
        camera = self.cameras[direction]
        self.plate_id += 1
        message = build_push(
            "vzenith", camera.serial, plate, timezone.now(), plate_id=self.plate_id
        )
        url = f"/devices/lpr/{camera.vendor}/{camera.key}"
        if message.path:
            url += "/" + message.path
        response = self.http.post(
            url, content=message.body, headers={"Content-Type": message.content_type}
        )
        assert response.status_code == 200, response.text
        visit = GateVisit.objects.filter(gate=self.gates[direction]).order_by("-pk").first()
        assert visit is not None
        return visit


def wait_until(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check()`` (a database read) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
