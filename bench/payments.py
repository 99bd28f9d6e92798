"""Payments on the live server: a QR page's time to first byte, a payment's way to the gate.

Sets up a PostgreSQL database of its own (``eppark_bench_pay``): one lot whose
``GATES`` exit gates each have a robot (opening through its relay) and a
Vzenith camera, pass holders and temp cars inside (the temp cars entered three
hours ago and owe a fee, each with its order placed). Runs the server the way
the demo does: ``eppark serve`` in one process (web, gateway, embedded MQTT
broker), with every robot simulated here by ``SimRobot`` over real MQTT,
noting the moment each command reaches it.

Figures (p50/p99, ms):

- **QR page, time to first byte**: ``PAGE_GETS`` GETs of a real ``/q/<token>``
  (the temp quick-exit QR a robot shows for a car owing a fee, taken from the
  robot's screen) over one keep-alive connection, measured from the request's
  last byte sent to the reply's first byte received; interleaved with the
  baseline, the simplest Django answer of the same server (``GET /``: a
  redirect through the same middleware).
- **Payment notification → open at the robot**: at ``RATE`` payments a second
  for ``SECONDS`` s, a car owing a fee is read at an exit (it waits there,
  shown the QR code), then its signed sandbox payment notification is POSTed to
  ``/payments/notify/sandbox/``; measured from the POST until the gate's robot
  receives the ``open`` command over MQTT. Baseline in the same run, same rate:
  a pass holder read at an exit (camera push → the robot's ``open``), the path
  the gate already has.

Timings are printed, never judged: the bench does not fail on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.gate_loop import HttpConnection, free_port, wait_port  # noqa: E402
from bench.serving import PG, eppark, percentile, server_env  # noqa: E402

DB_NAME = "eppark_bench_pay"
GATES = 20
RATE = 20.0
SECONDS = 30.0
PAGE_GETS = 300
WARM_UP = 20
READ_AHEAD_S = 0.5
"""How long before its payment a car is read at the exit (it waits there, shown the QR)."""
GATEWAY_PASSWORD = "bench-gateway"


def _env(http_port: int, mqtt_port: int) -> dict[str, str]:
    return server_env(DB_NAME, "bench-secret-payments", http_port, mqtt_port, GATEWAY_PASSWORD)


SETUP = """
import json
from datetime import timedelta
from django.utils import timezone
from eppark.devices.credentials import hash_password
from eppark.devices.models import Camera, Robot
from eppark.lots.models import Gate, Lot
from eppark.orders.placing import stay_charge
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.stays.models import Stay
now = timezone.now()
lot = Lot.objects.create(code="bench-pay", name="支付压测车场", capacity=100000,
    temp_entry_confirmation=False,
    tariff={"free_minutes": 30, "first": {"minutes": 60, "price": 500},
            "unit": {"minutes": 60, "price": 300}, "cap": {"price": 3000, "per": "24h"}})
entry = Gate.objects.create(lot=lot, code="entry-0", name="入口", direction="entry")
robots, cameras = {}, {}
for n in range(GATES + 1):  # the last gate is the QR page's
    gate = Gate.objects.create(lot=lot, code=f"exit-{n}", name=f"出口{n}", direction="exit",
                               opening_channel="robot")
    code = f"EP-X{n:03d}"
    robots[code] = f"pw-{code}"
    robot = Robot.objects.create(code=code, name=code, lot=lot, gate=gate,
                                 mqtt_password_hash=hash_password(robots[code]))
    camera = Camera(vendor="vzenith", lot=lot, gate=gate, robot=robot, serial=f"sn-x{n}")
    camera.key = f"k-x{n}"
    camera.save()
    cameras[code] = {"key": camera.key, "serial": camera.serial}
monthly = MonthlyPass.objects.create(lot=lot, owner="压测", phone="13800000000",
    valid_from=now - timedelta(days=30), valid_until=now + timedelta(days=300), spaces=CARS)
pass_plates, temp = [], []
for n in range(CARS):
    plate = f"粤B{n:05d}"
    PassPlate.objects.create(monthly_pass=monthly, lot=lot, plate=plate)
    Stay.objects.create(lot=lot, plate=plate, entered_as="pass",
                        entered_at=now - timedelta(hours=5), entry_gate=entry,
                        monthly_pass=monthly)
    pass_plates.append(plate)
for n in range(CARS + 1):
    plate = f"粤A{n:05d}"
    stay = Stay.objects.create(lot=lot, plate=plate, entered_as="temp",
                               entered_at=now - timedelta(hours=3), entry_gate=entry)
    temp.append({"plate": plate, "amount": stay_charge(stay, now).due})
print(json.dumps({"robots": robots, "cameras": cameras, "pass": pass_plates, "temp": temp}))
"""

NOTIFY = """
import copy, json, sys
from urllib.parse import urlsplit
from django.utils import timezone
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout, providers
from eppark.payments.models import SandboxTrade
from eppark.payments.providers import sandbox
from eppark.stays.models import Stay
provider = providers.for_channel("wechat")
out = []
for plate in json.loads(sys.stdin.read()):
    stay = Stay.objects.get(lot__code="bench-pay", plate=plate, exited_at__isnull=True)
    # 立即支付 (a moment before paying, as a driver does): the order is placed and goes to
    # the sandbox (paying); the trade waits at its cashier
    order = order_for_stay(stay, timezone.now())
    checkout.start_page_payment(order, provider, return_url="", now=timezone.now())
    trade = copy.copy(SandboxTrade.objects.get(out_trade_no=order.out_trade_no))
    # 确认支付, as the sandbox would report it (its own books are left unpaid, so that
    # nothing but the notification below can settle the order)
    now = timezone.now()
    trade.state, trade.paid_at, trade.payer = "SUCCESS", now, "sbx_bench"
    trade.transaction_id = "SBXBENCH" + order.out_trade_no[-16:]
    body = sandbox.notification_body(trade)
    headers = sandbox.signed_headers(body, now)
    out.append({"path": urlsplit(trade.notify_url).path, "headers": headers,
                "body": body.decode()})
print(json.dumps(out))
"""


def set_up_database(env: dict[str, str], cars: int) -> dict[str, Any]:
    """A fresh bench database with the lot, its gates, robots, cameras, pass and temp cars."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    eppark(env, "migrate", "--verbosity", "0")
    script = SETUP.replace("GATES", str(GATES)).replace("CARS", str(cars))
    out = eppark(env, "shell", "-c", script)
    return dict(json.loads(out.strip().splitlines()[-1]))


def signed_notifications(env: dict[str, str], orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each car's order, placed and sent to the sandbox now, and its signed payment notification
    (as ``确认支付`` would have the sandbox send it)."""
    done = subprocess.run(
        [sys.executable, "-m", "eppark", "shell", "-c", NOTIFY],
        env=env,
        input=json.dumps([order["plate"] for order in orders]),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"signing notifications: {done.stderr[-3000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the robots ------------------------------------------------------------------------------


def timed_robot_class() -> type:
    """``SimRobot`` noting when each command reached it (``perf_counter``), by kind."""
    from eppark.sim.robot import SimRobot

    class TimedRobot(SimRobot):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.received: list[tuple[float, str]] = []  # (when, cmd)

        async def _handle(self, client: Any, payload: Any) -> None:
            at = time.perf_counter()
            with contextlib.suppress(ValueError, TypeError, KeyError):
                raw = bytes(payload) if isinstance(payload, bytes | bytearray) else payload
                self.received.append((at, str(json.loads(raw)["cmd"])))
            await super()._handle(client, payload)

        def first_after(self, cmd: str, since: float) -> float | None:
            return next((at for at, kind in self.received if kind == cmd and at >= since), None)

    return TimedRobot


# --- HTTP ------------------------------------------------------------------------------------


class Http(HttpConnection):
    """Keep-alive HTTP/1.1 with GET and time to first byte."""

    async def get_ttfb(self, path: str) -> tuple[int, float]:
        """GET ``path``: status and seconds from the request sent to the reply's first byte."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await self.writer.drain()
        sent = time.perf_counter()
        first = await self.reader.read(1)
        ttfb = time.perf_counter() - sent
        status_line = first + await self.reader.readline()
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1]), ttfb

    async def request(
        self, path: str, body: bytes, headers: dict[str, str], content_type: str
    ) -> tuple[int, bytes]:
        """POST with extra headers (a provider's signature headers)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-type")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), data


def _row(case: str, values_s: list[float], **extra: Any) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {
        "bench": "payments",
        "case": case,
        "n": len(ms),
        "p50 ms": round(percentile(ms, 0.50), 2) if ms else "",
        "p99 ms": round(percentile(ms, 0.99), 2) if ms else "",
        **extra,
    }


# --- the measurements ----------------------------------------------------------------------


@dataclass
class World:
    """What the bench set up and runs against."""

    http_port: int
    env: dict[str, str]
    data: dict[str, Any]
    robots: dict[str, Any] = field(default_factory=dict)
    plate_id: int = 1000

    def exit_robot(self, n: int) -> str:
        return f"EP-X{n:03d}"

    async def read(self, http: HttpConnection, robot: str, plate: str) -> int:
        """The robot's exit camera reads ``plate`` (a real Vzenith push)."""
        from eppark.sim.cameras import build_push

        camera = self.data["cameras"][robot]
        self.plate_id += 1
        push = build_push(
            "vzenith",
            camera["serial"],
            plate,
            datetime.now(UTC),
            plate_id=self.plate_id,
            with_image=False,
        )
        status, _ = await http.post(
            f"/devices/lpr/vzenith/{camera['key']}", push.body, push.content_type
        )
        return status


async def qr_page(world: World) -> list[dict[str, Any]]:
    """A real temp quick-exit QR page's time to first byte, beside ``GET /``."""
    qr_robot = world.exit_robot(GATES)
    robot = world.robots[qr_robot]
    car = world.data["temp"][-1]
    http = Http(world.http_port)
    status = await world.read(http, qr_robot, car["plate"])
    if status != 200:
        raise RuntimeError(f"the QR car's read was answered {status}")
    deadline = time.monotonic() + 20
    while not (robot.screen.display and robot.screen.display.kind == "qr"):
        if time.monotonic() > deadline:
            raise RuntimeError("the robot never showed the QR code")
        await asyncio.sleep(0.05)
    url = robot.screen.display.qr or ""
    path = urlsplit(url).path
    statuses: dict[str, set[int]] = {"page": set(), "base": set()}
    page: list[float] = []
    base: list[float] = []
    for index in range(WARM_UP + PAGE_GETS):
        code, ttfb = await http.get_ttfb(path)
        base_code, base_ttfb = await http.get_ttfb("/")
        if index >= WARM_UP:
            page.append(ttfb)
            base.append(base_ttfb)
            statuses["page"].add(code)
            statuses["base"].add(base_code)
    if http.writer is not None:
        http.writer.close()
    return [
        _row(
            f"QR page time to first byte (temp exit owing ¥{car['amount'] / 100:.2f})",
            page,
            status=",".join(map(str, sorted(statuses["page"]))),
        ),
        _row(
            "baseline: GET / (simplest Django answer), same server",
            base,
            status=",".join(map(str, sorted(statuses["base"]))),
        ),
    ]


async def paced(count: int, rate: float, one: Any) -> list[Any]:
    """Start ``one(index)`` ``count`` times at ``rate`` a second (open loop); their results."""
    tasks = []
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    return list(await asyncio.gather(*tasks))


async def plate_read_opens(world: World, count: int) -> list[dict[str, Any]]:
    """Baseline: a pass holder read at an exit → its robot receives ``open``."""
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(HttpConnection(world.http_port))
    plates = list(world.data["pass"])

    async def one(index: int) -> tuple[float | None, int]:
        code = world.exit_robot(index % GATES)
        http = await pool.get()
        try:
            sent = time.perf_counter()
            status = await world.read(http, code, plates[index])
        finally:
            pool.put_nowait(http)
        opened = await _wait_open(world.robots[code], sent)
        return (opened - sent if opened is not None else None), status

    results = (await paced(WARM_UP + count, RATE, one))[WARM_UP:]
    times = [t for t, _ in results if t is not None]
    return [
        _row(
            f"baseline: plate read → open at the robot, {RATE:.0f}/s",
            times,
            **{"not opened": sum(1 for t, _ in results if t is None)},
        )
    ]


async def notification_opens(
    world: World, notices: list[dict[str, Any]], count: int
) -> list[dict[str, Any]]:
    """A car waits at an exit; its payment notification arrives → its robot receives ``open``."""
    pool: asyncio.Queue[Http] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(Http(world.http_port))
    cars = world.data["temp"]

    async def one(index: int) -> tuple[float | None, int, float]:
        code = world.exit_robot(index % GATES)
        http = await pool.get()
        try:
            await world.read(http, code, cars[index]["plate"])  # the car waits, shown the QR
        finally:
            pool.put_nowait(http)
        await asyncio.sleep(READ_AHEAD_S)
        notice = notices[index]
        headers = dict(notice["headers"])
        content_type = str(headers.get("Content-Type") or "application/json")
        http = await pool.get()
        try:
            sent = time.perf_counter()
            status, _ = await http.request(
                notice["path"], notice["body"].encode(), headers, content_type
            )
            replied = time.perf_counter() - sent
        finally:
            pool.put_nowait(http)
        opened = await _wait_open(world.robots[code], sent)
        return (opened - sent if opened is not None else None), status, replied

    results = (await paced(WARM_UP + count, RATE, one))[WARM_UP:]
    times = [t for t, _, _ in results if t is not None]
    replies = [r for _, _, r in results]
    statuses: dict[int, int] = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return [
        _row(
            f"payment notification → open at the robot, {RATE:.0f}/s",
            times,
            **{
                "not opened": sum(1 for t, _, _ in results if t is None),
                "replies": " ".join(f"{k}×{v}" for k, v in sorted(statuses.items())),
            },
        ),
        _row("payment notification answered (reply time)", replies),
    ]


async def _wait_open(robot: Any, since: float, timeout: float = 10.0) -> float | None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        at = robot.first_after("open", since)
        if at is not None:
            return float(at)
        await asyncio.sleep(0.005)
    return None


async def measure(world: World, seconds: float) -> list[dict[str, Any]]:
    """Start the robots, then every figure."""
    from eppark.gateway.protocol import default_mqtt_url

    robot_class = timed_robot_class()
    url = default_mqtt_url(world.env)
    world.robots = {
        code: robot_class(code, password, url, out=io.StringIO(), max_backoff=1.0)
        for code, password in world.data["robots"].items()
    }
    running = [asyncio.create_task(robot.run()) for robot in world.robots.values()]
    try:
        async with asyncio.timeout(30):
            for robot in world.robots.values():
                await robot.online.wait()
        count = int(RATE * seconds)
        rows = await qr_page(world)
        rows += await plate_read_opens(world, count)
        await asyncio.sleep(2)
        notices = signed_notifications(world.env, world.data["temp"][: WARM_UP + count])
        rows += await notification_opens(world, notices, count)
        return rows
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


LAYOUTS: dict[str, list[list[str]]] = {
    "eppark serve (as the demo)": [["serve"]],
    "production (serve --no-gateway --workers 2, gateway, payments)": [
        ["gateway"],
        ["payments"],
        ["serve", "--no-gateway", "--workers", "2"],
    ],
}
"""The server layouts measured: the demo's single process, and the production layout
(docs/deploy.md): web processes sharing the port, the gateway and the payments worker in
processes of their own (commands reach the gateway by PostgreSQL ``NOTIFY``)."""


def run(seconds: float = SECONDS, layouts: list[str] | None = None) -> list[dict[str, Any]]:
    """Set up, serve, measure, tear down, for each layout; the rows of the table."""
    rows: list[dict[str, Any]] = []
    for name in layouts or list(LAYOUTS):
        for row in run_layout(LAYOUTS[name], seconds):
            rows.append({"bench": row.pop("bench"), "layout": name, **row})
    return rows


def run_layout(commands: list[list[str]], seconds: float) -> list[dict[str, Any]]:
    """One layout: a fresh database, its processes, the figures."""
    http_port, mqtt_port = free_port(), free_port()
    env = _env(http_port, mqtt_port)
    cars = WARM_UP + int(RATE * seconds) + 1
    data = set_up_database(env, cars)
    log = Path(f"/tmp/eppark-bench-payments-{os.getpid()}.log")
    processes: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as out:
        for command in commands:
            if command[0] == "serve":
                command = [*command, "--port", str(http_port)]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "eppark", *command],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        wait_port(http_port)
        wait_port(mqtt_port)
        return asyncio.run(measure(World(http_port, env, data), seconds))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            if process.poll() is None:
                process.kill()
        with contextlib.suppress(OSError):
            log.unlink()


def main() -> int:
    """``python -m bench.payments [--seconds S] [--rate R]``: print the rows as JSON lines."""
    import argparse

    global RATE

    parser = argparse.ArgumentParser(prog="python -m bench.payments")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rate", type=float, default=20.0, help="payments (and reads) a second")
    parser.add_argument(
        "--layout", choices=["demo", "production"], help="one layout only (default: both)"
    )
    args = parser.parse_args()
    RATE = args.rate
    chosen = [
        name
        for name in LAYOUTS
        if args.layout is None
        or name.startswith("eppark serve" if args.layout == "demo" else "production")
    ]
    for row in run(args.seconds, chosen):
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
