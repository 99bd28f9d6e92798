"""The live gate loop under load: camera push → camera reply, and → the robot's command on the wire.

Sets up its own PostgreSQL database (``eppark_bench``) with one lot of 20 gate
pairs (Vzenith cameras, robots) and a month of history (``HISTORY_STAYS``),
starts a real Mosquitto with the robot ACL on a free port, and runs the
production layout against them: ``eppark serve --no-gateway`` (web,
``--workers`` processes) and ``eppark gateway`` (MQTT and the outbox), plus
every robot simulated by ``eppark sim robot`` in a process of its own (it acks
each command and reports what it showed, as a real robot does). A load
generator posts real Vzenith pushes over keep-alive HTTP at a fixed
(open-loop) rate, spread over the gates: new cars at entries, cars inside at
exits. A listener subscribed as the gateway user notes when each command
first appears on the broker; after each run the commands are matched to their
reads through the database (command → visit → plate).

Figures: reply latency and push→``present``-on-the-wire latency, p50/p99, at
100 reads/s (three runs, each shown, and pooled), with the CPU each process
spent per read; then the rate is raised step by step to find the highest
rate sustained: ≥ 98 % of the offered rate answered with reply p99 ≤ 250 ms, and
≥ 98 % of the reads' prompts on the wire with p99 ≤ 250 ms (the robot must hear in time too).
The named baseline is the camera *heartbeat* on the same server and
connections: parse + at most one UPDATE, the floor of the HTTP stack.

Also the fault figures: the broker is stopped for ``--outage`` seconds (60 by
default with ``python -m bench.gate_loop --outage 60``) in the middle of
traffic; counted afterwards: reads answered, visits recorded, commands
delivered / superseded / expired, and opens run late (must be 0).

And the database fault (``--db-outage 15``; ``python -m bench`` runs it for
15 s as the ``db_outage`` suite): the same layout on a PostgreSQL cluster of
the bench's own (``initdb`` in a temporary folder, a free port), stopped for
that long under 20 reads/s. Counted: reads sent / answered 200 / refused
(503), reads answered 200 later than the push deadline, opens run late (after
their time-to-live, or more than the time-to-live after the read was sent):
must be 0; opens run but not recorded done (acks kept through the outage):
must be 0; the time from PostgreSQL back to the first push answered 200, and
to the first ack applied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # once: a path searched on every import must stay short
    sys.path.insert(0, str(ROOT / "src"))
PG = os.environ.get("EPPARK_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "eppark_bench"
GATES = 20
GATEWAY_PASSWORD = "bench-gateway"
LISTENER = "bench-listener"
"""The bench's own MQTT user, reading every command: Mosquitto gives each client its user name
as client id, so a second ``gateway`` connection would take the real gateway's session."""
LISTENER_PASSWORD = "bench-listener-pw"
REPEATS = 3
"""The 100/s phase is run this many times; each run and all runs pooled are reported."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    """Block until 127.0.0.1:port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{DB_NAME}",
        EPPARK_SECRET_KEY="bench-secret",
        EPPARK_MQTT_GATEWAY_PASSWORD=GATEWAY_PASSWORD,
        EPPARK_LOG_LEVEL="ERROR",
        EPPARK_ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env.update(extra or {})
    return env


def eppark(*args: str, env: dict[str, str] | None = None) -> str:
    """Run an ``eppark`` command against the bench database."""
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"eppark {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


SETUP = """
from datetime import timedelta
from django.utils import timezone
from eppark.devices.credentials import hash_password
from eppark.devices.models import Camera, Robot
from eppark.lots.models import Gate, Lot
passwords = {}
lot = Lot.objects.create(code="bench", name="压测车场", capacity=100000,
    temp_entry_confirmation=False,
    tariff={"free_minutes": 30, "first": {"minutes": 60, "price": 500},
            "unit": {"minutes": 60, "price": 300}, "cap": {"price": 3000, "per": "24h"}})
for n in range(GATES):
    for direction in ("entry", "exit"):
        gate = Gate.objects.create(lot=lot, code=f"{direction}-{n}", name=f"{direction}{n}",
                                   direction=direction)
        code = f"EP-{direction[:2].upper()}{n:03d}"
        passwords[code] = f"pw-{code}"
        robot = Robot.objects.create(code=code, name=code, lot=lot, gate=gate,
                                     mqtt_password_hash=hash_password(passwords[code]))
        if n % 2 == 0:  # half the gates open through the robot's relay, half by the reply
            gate.opening_channel = "robot"
            gate.save()
        Camera.objects.create(vendor="vzenith", lot=lot, gate=gate, robot=robot,
                              key=f"k-{direction}-{n}", serial=f"sn-{direction}-{n}")
import json
print(json.dumps(passwords))
"""


HISTORY_STAYS = 150_000
"""Past stays the bench database starts with (a month of a busy lot): each brings two gate
visits, their plate reads, prompts and robot events, about 1.5 million rows in all. A system
in service reads and writes tables of that size, with statistics the planner trusts."""

HISTORY = [
    # closed temp stays over the last 30 days, at the bench's gates
    """INSERT INTO stays_stay (plate, entered_as, state, entered_at, entry_photo, exited_at,
         exit_photo, total, paid, close_note, entry_gate_id, exit_gate_id, lot_id)
       SELECT '粤A' || lpad(mod(g, 100000)::text, 5, '0'), 'temp', 'left', t, '',
              t + (random() * interval '8 hours'), '', 500, 500, '',
              (SELECT id FROM lots_gate WHERE direction = 'entry' ORDER BY id
                 OFFSET mod(g, %(gates)s) LIMIT 1),
              (SELECT id FROM lots_gate WHERE direction = 'exit' ORDER BY id
                 OFFSET mod(g, %(gates)s) LIMIT 1),
              (SELECT id FROM lots_lot LIMIT 1)
       FROM generate_series(1, %(stays)s) g,
            LATERAL (SELECT now() - interval '30 days' + g * (interval '29 days' / %(stays)s))
              AS at(t)""",
    """INSERT INTO stays_gatevisit (plate, arrived_at, photo, scenario, decision, expected_action,
         opened, resolved_at, resolution, gate_id, lot_id, stay_id)
       SELECT plate, entered_at, '', 'entry.temp_allowed', '{}'::jsonb, '', true, entered_at,
              'opened', entry_gate_id, lot_id, id FROM stays_stay WHERE exited_at IS NOT NULL
       UNION ALL
       SELECT plate, exited_at, '', 'exit.temp_paid', '{}'::jsonb, '', true, exited_at,
              'opened', exit_gate_id, lot_id, id FROM stays_stay WHERE exited_at IS NOT NULL""",
    """INSERT INTO devices_plateread (read_id, plate, raw_plate, read_at, received_at, offline,
         photo, opened, camera_id, visit_id)
       SELECT 'h' || v.id, v.plate, v.plate, v.arrived_at, v.arrived_at, false, '', true, c.id, v.id
       FROM stays_gatevisit v JOIN devices_camera c ON c.gate_id = v.gate_id""",
    """INSERT INTO devices_command (cmd_id, channel, cmd, args, created_at, expires_at, state,
         attempts, next_attempt_at, sent_at, acked_at, detail, recalls, robot_id, visit_id)
       SELECT md5('h' || v.id || k.cmd), 'mqtt', k.cmd, '{}', v.arrived_at,
              v.arrived_at + interval '30 seconds', 'done', 1, v.arrived_at, v.arrived_at,
              v.arrived_at, '', 0, r.id, v.id
       FROM stays_gatevisit v JOIN devices_robot r ON r.gate_id = v.gate_id,
            (VALUES ('present'), ('open')) AS k(cmd)""",
    """INSERT INTO devices_robotevent (event_id, type, ts, data, received_at, robot_id)
       SELECT r.code || '-h' || v.id || e.type, e.type, v.arrived_at, '{}', v.arrived_at, r.id
       FROM stays_gatevisit v JOIN devices_robot r ON r.gate_id = v.gate_id,
            (VALUES ('screen_shown'), ('voice_played')) AS e(type)""",
]


def set_up_database(history: int = HISTORY_STAYS) -> dict[str, str]:
    """A bench database with the lot, gates, robots and cameras and a month of history.

    Returns the robots' passwords. The history is analysed before any measurement.
    """
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    eppark("migrate", "--verbosity", "0")
    out = eppark("shell", "-c", SETUP.replace("GATES", str(GATES)))
    with psycopg.connect(f"{PG}/{DB_NAME}", autocommit=True) as conn:
        if history:
            for statement in HISTORY:
                conn.execute(statement, {"gates": GATES, "stays": history})
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # the history's pages on disk now, not during the runs
    return dict(json.loads(out.strip().splitlines()[-1]))


@dataclass
class Mosquitto:
    """A Mosquitto of the bench's own, with the robot ACL and everyone's passwords."""

    passwords: dict[str, str]
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eppark-bench-")))
    process: subprocess.Popen[bytes] | None = None

    def configure(self) -> None:
        """Write the password file, the ACL and the config."""
        from eppark.gateway.broker import write_mosquitto_config

        write_mosquitto_config(
            self.folder,
            self.port,
            {**self.passwords, "gateway": GATEWAY_PASSWORD, LISTENER: LISTENER_PASSWORD},
            extra=["user root", "max_queued_messages 100000"],
        )
        with (self.folder / "acl").open("a", encoding="utf-8") as acl:
            acl.write(f"\nuser {LISTENER}\ntopic read ep/robots/+/commands\n")

    def start(self) -> None:
        """Start (again) on the same port."""
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")], stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        """Stop."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def clean(self) -> None:
        """Stop and remove the folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 client connection (POST, Content-Length replies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """Send one POST and read its reply; once more on a fresh connection if it was closed."""
        try:
            return await self._post(path, body, content_type)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.writer = None  # the server closed an idle keep-alive connection
            return await self._post(path, body, content_type)

    async def _post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("the server closed the connection")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), data


@dataclass
class Sample:
    """One push: when it went, when the reply came, when its robot command was seen."""

    gate: str
    sent: float
    plate: str = ""
    replied: float | None = None
    status: int = 0
    on_wire: float | None = None
    sent_at: datetime | None = None  # wall clock, to compare with the robots' clocks


class Load:
    """Open-loop load over a pool of keep-alive connections, and the MQTT wire listener."""

    def __init__(self, http_port: int, mqtt_port: int, connections: int = 32) -> None:
        self.http_port = http_port
        self.mqtt_port = mqtt_port
        self.pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(connections):
            self.pool.put_nowait(HttpConnection(http_port))
        self.seen: dict[str, float] = {}  # cmd_id → when first seen on the broker
        self.inside: list[str] = []  # plates that entered and may leave
        self.plate_id = random.randint(1, 1_000_000)
        self.rng = random.Random(5)

    async def listen(self, ready: asyncio.Event) -> None:
        """Note when each command first shows up on the broker (by ``cmd_id``)."""
        from eppark.gateway.protocol import send_at_once

        async with aiomqtt.Client(
            "127.0.0.1",
            self.mqtt_port,
            username=LISTENER,
            password=LISTENER_PASSWORD,
            identifier=LISTENER,
        ) as client:
            send_at_once(client)  # its PUBACKs must not hold back the broker's next sends
            await client.subscribe("ep/robots/+/commands", qos=1)
            ready.set()
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes):
                    self.seen.setdefault(json.loads(payload)["cmd_id"], time.perf_counter())

    def match_wire(self, samples: list[Sample]) -> None:
        """Give each read the time its robot's ``present`` was seen (commands → visits → plates)."""
        import psycopg

        by_plate = {(s.gate, s.plate): s for s in samples if s.plate}
        with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
            rows = conn.execute(
                "SELECT c.cmd_id, r.code, v.plate FROM devices_command c"
                " JOIN stays_gatevisit v ON v.id = c.visit_id"
                " JOIN devices_robot r ON r.id = c.robot_id"
                " WHERE c.cmd = 'present' AND c.cmd_id = ANY(%s)",
                [list(self.seen)],
            ).fetchall()
        for cmd_id, code, plate in rows:
            sample = by_plate.get((code, plate))
            if sample is not None:
                sample.on_wire = self.seen[cmd_id]

    def _plate(self) -> str:
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        tail = "".join(self.rng.choice("0123456789" + letters) for _ in range(5))
        return f"粤{self.rng.choice(letters)}{tail}"

    async def one(self, gate: int, heartbeat: bool) -> Sample:
        """Send one push (or heartbeat): a new car at an entry, or a car inside at an exit."""
        from eppark.sim.cameras import build_heartbeat, build_push

        direction = "entry"
        plate = ""
        if not heartbeat:
            if self.inside and self.rng.random() < 0.5:
                direction = "exit"
                plate = self.inside.pop(self.rng.randrange(len(self.inside)))
            else:
                plate = self._plate()
                self.inside.append(plate)
        serial = f"sn-{direction}-{gate}"
        code = f"EP-{direction[:2].upper()}{gate:03d}"
        self.plate_id += 1
        if heartbeat:
            push = build_heartbeat("vzenith", serial)
        else:
            push = build_push(
                "vzenith",
                serial,
                plate,
                datetime.now(UTC),
                plate_id=self.plate_id,
                with_image=False,
            )
        sample = Sample(code, time.perf_counter(), plate, sent_at=datetime.now(UTC))
        connection = await self.pool.get()
        try:
            sample.status, _ = await connection.post(
                f"/devices/lpr/vzenith/k-{direction}-{gate}", push.body, push.content_type
            )
            sample.replied = time.perf_counter()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            connection.writer = None
        finally:
            self.pool.put_nowait(connection)
        return sample

    async def run(self, rate: float, seconds: float, heartbeat: bool = False) -> list[Sample]:
        """Offer ``rate`` pushes a second for ``seconds``, round-robin over the gates."""
        tasks = []
        start = time.perf_counter()
        count = int(rate * seconds)
        for index in range(count):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(index % GATES, heartbeat)))
        samples = list(await asyncio.gather(*tasks))
        await asyncio.sleep(3.0)  # let the last commands reach the wire (late ones count late)
        if not heartbeat:
            self.match_wire(samples)
        self.seen.clear()
        return samples


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summarise(samples: list[Sample], rate: float, seconds: float, case: str) -> dict[str, Any]:
    """p50/p99 of reply and on-wire latencies (ms), and the rate actually answered."""
    ok = [s for s in samples if s.replied is not None and s.status == 200]
    reply = [(s.replied - s.sent) * 1000 for s in ok if s.replied is not None]
    wire = [(s.on_wire - s.sent) * 1000 for s in samples if s.on_wire is not None]
    return {
        "bench": "gate_loop",
        "case": case,
        "offered/s": rate,
        "answered/s": round(len(ok) / seconds, 1),
        "reply p50 ms": round(_percentile(reply, 0.50), 2),
        "reply p99 ms": round(_percentile(reply, 0.99), 2),
        "wire p50 ms": round(_percentile(wire, 0.50), 2) if wire else "",
        "wire p99 ms": round(_percentile(wire, 0.99), 2) if wire else "",
        "commands seen": len(wire) if wire else "",
    }


ROLES: dict[str, int] = {}
"""Process ids by role (server, robots, broker) for the CPU accounting."""


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each role: the server, the robots, the broker, PostgreSQL, us."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    def cpu(fields: list[str], children: bool = False) -> float:
        own = int(fields[11]) + int(fields[12])
        # cutime + cstime: what its children used that have ended (PostgreSQL backends and
        # autovacuum workers come and go; the postmaster collects their CPU)
        return (own + (int(fields[13]) + int(fields[14]) if children else 0)) / tick

    def used(pid: int) -> float:
        try:
            return cpu(stat(pid))
        except OSError:
            return 0.0

    out = {role: used(pid) for role, pid in ROLES.items()}
    out["bench client"] = used(os.getpid())
    processes: dict[int, tuple[str, list[str]]] = {}  # pid → (command name, stat fields)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                comm = (entry / "comm").read_text().strip()
                processes[int(entry.name)] = (comm, stat(int(entry.name)))
    postgres = 0.0
    for comm, fields in processes.values():
        parent = int(fields[1])
        if comm == "postgres":
            postmaster = processes.get(parent, ("", []))[0] != "postgres"
            postgres += cpu(fields, children=postmaster)
        if "server" in ROLES and parent == ROLES["server"]:  # a web worker
            out["server"] += cpu(fields)
    out["postgresql"] = postgres
    return out


def cpu_per_read(before: dict[str, float], after: dict[str, float], reads: int) -> dict[str, Any]:
    """CPU milliseconds per read, by role."""
    return {
        f"cpu ms/read {role}": round((after[role] - before.get(role, 0.0)) * 1000 / reads, 2)
        for role in after
    }


async def measure(
    http_port: int, mqtt_port: int, seconds: float, steps: list[int]
) -> list[dict[str, Any]]:
    """The latency figures at 100/s, the baseline, and the sustained-rate search."""
    load = Load(http_port, mqtt_port)
    ready = asyncio.Event()
    listener = asyncio.create_task(load.listen(ready))
    await asyncio.wait_for(ready.wait(), 10)
    await load.run(50, 2)  # warm-up: connections, caches
    rows = []
    pooled: list[Sample] = []
    for run_no in range(1, REPEATS + 1):  # this machine is noisy: every run is shown
        before = cpu_seconds()
        samples = await load.run(100, seconds)
        pooled += samples
        rows.append(
            {
                **summarise(samples, 100, seconds, f"plate read, 100/s (run {run_no})"),
                **cpu_per_read(before, cpu_seconds(), len(samples)),
            }
        )
        await asyncio.sleep(3)  # drain what the run queued
    rows.append(
        summarise(pooled, 100, seconds * REPEATS, f"plate read, 100/s ({REPEATS} runs pooled)")
    )
    rows.append(
        summarise(
            await load.run(100, seconds, heartbeat=True), 100, seconds, "baseline: heartbeat, 100/s"
        )
    )
    await asyncio.sleep(5)
    best = 0
    for rate in steps:
        row = summarise(
            await load.run(rate, max(5.0, seconds / 2)),
            rate,
            max(5.0, seconds / 2),
            f"plate read, {rate}/s",
        )
        rows.append(row)
        # sustained: the cameras are answered and the robots told, nearly all and in time
        reads = rate * max(5.0, seconds / 2)
        on_wire = row["commands seen"] or 0
        if (
            row["answered/s"] >= 0.98 * rate
            and row["reply p99 ms"] <= 250
            and on_wire >= 0.98 * reads
            and row["wire p99 ms"] <= 250
        ):
            best = rate
        else:
            break
    rows.append({"bench": "gate_loop", "case": "highest sustained rate", "offered/s": best})
    listener.cancel()
    return rows


async def outage(http_port: int, mqtt: Mosquitto, seconds: float) -> dict[str, Any]:
    """Stop the broker mid-traffic for ``seconds``; count what happened to every command."""
    from eppark.sim.robot import SimRobot

    eppark(
        "shell", "-c", "from eppark.devices.models import Command; Command.objects.all().delete()"
    )
    robots = [
        SimRobot(code, pw, f"mqtt://127.0.0.1:{mqtt.port}", out=io.StringIO(), max_backoff=2.0)
        for code, pw in mqtt.passwords.items()
    ]
    running = [asyncio.create_task(robot.run()) for robot in robots]
    await asyncio.sleep(3)
    load = Load(http_port, mqtt.port)
    before = time.perf_counter()
    since = datetime.now(UTC)
    traffic = asyncio.create_task(load.run(20, seconds + 20))
    await asyncio.sleep(10)
    mqtt.stop()
    await asyncio.sleep(seconds)
    mqtt.start()
    samples = await traffic
    await asyncio.sleep(20)  # reconnects and retries after the outage
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    counts = outage_counts(since)
    ran = {cmd_id: at for robot in robots for cmd_id, at in robot.opened}
    return {
        "bench": "gate_loop",
        "case": f"broker stopped {seconds:.0f} s mid-traffic",
        "robot opens run": sum(robot.opens for robot in robots),
        "opens run after their expiry": late_opens(ran),
        "opens run but not recorded done": unrecorded_opens(ran),
        "reads sent": len(samples),
        "reads answered 200": sum(1 for s in samples if s.status == 200),
        **counts,
        "wall s": round(time.perf_counter() - before, 1),
    }


def late_opens(ran: dict[str, Any]) -> int:
    """Opens a robot carried out after the command's expiry (by the robot's clock): must be 0."""
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        rows = conn.execute(
            "SELECT cmd_id, expires_at FROM devices_command WHERE cmd_id = ANY(%s)", [list(ran)]
        ).fetchall()
    return sum(1 for cmd_id, expires_at in rows if ran[cmd_id] > expires_at)


def unrecorded_opens(ran: dict[str, Any]) -> int:
    """Opens a robot carried out that the database does not show as done: must be 0."""
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        row = conn.execute(
            "SELECT count(*) FROM devices_command WHERE cmd_id = ANY(%s) AND state <> 'done'",
            [list(ran)],
        ).fetchone()
    return int(row[0]) if row else 0


def outage_counts(since: Any) -> dict[str, int]:
    """Visits recorded since ``since``, and every command by kind and final state."""
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        visits = conn.execute(
            "SELECT count(*) FROM stays_gatevisit WHERE arrived_at >= %s", [since]
        ).fetchone()
        by = conn.execute(
            "SELECT cmd, state, count(*) FROM devices_command GROUP BY cmd, state ORDER BY 1, 2"
        ).fetchall()
    return {"visits recorded": visits[0] if visits else 0} | {f"{c} {st}": n for c, st, n in by}


def start_robots(mqtt: Mosquitto) -> subprocess.Popen[bytes]:
    """Every gate's robot, simulated in a process of its own: it acks each command as it runs."""
    passwords = mqtt.folder / "robots.json"
    passwords.write_text(json.dumps(mqtt.passwords), encoding="utf-8")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eppark",
            "sim",
            "robot",
            "--url",
            f"mqtt://127.0.0.1:{mqtt.port}",
            "--passwords",
            str(passwords),
            *mqtt.passwords,
        ],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- the database fault ---------------------------------------------------------------------


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of the bench's own, to stop and start (never the shared server)."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eppark-bench-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        """The server's URL, without a database (``PG``'s form)."""
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def _bin(self, name: str) -> str:
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: p.parent)
        if not found:
            raise RuntimeError(f"the database fault needs PostgreSQL's {name}: none installed")
        return str(found[-1])

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_postgres, *command], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")

    def create(self) -> None:
        """``initdb`` and start."""
        self.folder.chmod(0o755)
        (self.folder / "pg").mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.folder / "pg", "postgres")
        self._run(
            self._bin("initdb"), "-D", str(self.folder / "pg"), "-U", "postgres", "-A", "trust"
        )
        self.start()

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        pg = str(self.folder / "pg")
        self._run(self._bin("pg_ctl"), "-D", pg, "-o", options, "-l", f"{pg}.log", "-w", "start")

    def stop(self) -> None:
        """Stop at once (``-m fast``: sessions are cut, as in a crash of the server)."""
        self._run(self._bin("pg_ctl"), "-D", str(self.folder / "pg"), "-w", "stop", "-m", "fast")

    def clean(self) -> None:
        """Stop (if running) and remove the folder."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


async def _first_ack_after(since: datetime, back: float, timeout: float = 60) -> float | None:
    """Seconds from ``back`` until an ack received after ``since`` is in the database."""
    import psycopg

    while time.perf_counter() - back < timeout:
        with contextlib.suppress(psycopg.OperationalError):
            async with await psycopg.AsyncConnection.connect(
                f"{PG}/{DB_NAME}", connect_timeout=2
            ) as conn:
                cursor = await conn.execute(
                    "SELECT 1 FROM devices_command WHERE acked_at >= %s LIMIT 1", [since]
                )
                if await cursor.fetchone():
                    return round(time.perf_counter() - back, 2)
        await asyncio.sleep(0.1)
    return None


async def db_outage(
    http_port: int, mqtt: Mosquitto, cluster: OwnPostgres, seconds: float
) -> dict[str, Any]:
    """Stop PostgreSQL mid-traffic (20 reads/s) for ``seconds``; what became of every read."""
    from eppark.sim.robot import SimRobot

    robots = [
        SimRobot(code, pw, f"mqtt://127.0.0.1:{mqtt.port}", out=io.StringIO(), max_backoff=2.0)
        for code, pw in mqtt.passwords.items()
    ]
    running = [asyncio.create_task(robot.run()) for robot in robots]
    await asyncio.sleep(3)
    # connections enough that no read waits on our side while the server holds some (4 s)
    load = Load(http_port, mqtt.port, connections=200)
    before = time.perf_counter()
    traffic = asyncio.create_task(load.run(20, seconds + 30))
    await asyncio.sleep(10)
    await asyncio.to_thread(cluster.stop)
    stopped_at = datetime.now(UTC)  # every ack after this was written after the restart
    await asyncio.sleep(seconds)
    await asyncio.to_thread(cluster.start)
    back, back_at = time.perf_counter(), datetime.now(UTC)
    first_ack = await _first_ack_after(stopped_at, back)
    samples = await traffic
    await asyncio.sleep(15)  # retries, recalls
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    ran = {cmd_id: at for robot in robots for cmd_id, at in robot.opened}
    deadline = float(_env().get("EPPARK_PUSH_DEADLINE_S", "3"))
    ok_after = [
        s.replied
        for s in samples
        if s.status == 200 and s.replied is not None and s.replied >= back
    ]
    return {
        "bench": "gate_loop",
        "case": f"PostgreSQL stopped {seconds:.0f} s mid-traffic (20 reads/s)",
        "reads sent": len(samples),
        "reads answered 200": sum(1 for s in samples if s.status == 200),
        "reads refused 503": sum(1 for s in samples if s.status == 503),
        "reads otherwise": sum(1 for s in samples if s.status not in (200, 503)),
        "answered 200 after the deadline": sum(
            1
            for s in samples
            if s.status == 200 and s.replied is not None and s.replied - s.sent > deadline
        ),
        "slowest answer s": round(
            max((s.replied - s.sent for s in samples if s.replied is not None), default=0), 2
        ),
        "slowest 200 s": round(
            max(
                (s.replied - s.sent for s in samples if s.replied is not None and s.status == 200),
                default=0,
            ),
            2,
        ),
        "robot opens run": len(ran),
        "late opens": late_db_opens(ran, samples),
        "opens run but not recorded done": unrecorded_opens(ran),
        "acks kept through the outage": acks_between(stopped_at, back_at),
        "resend_acks staged": resend_asks(),
        "s from PG back to first 200": round(min(ok_after) - back, 2) if ok_after else "never",
        "s from PG back to first applied ack": first_ack if first_ack is not None else "never",
        "wall s": round(time.perf_counter() - before, 1),
    }


def late_db_opens(ran: dict[str, Any], samples: list[Sample]) -> int:
    """Opens run after their expiry, or more than their time-to-live after the read was sent."""
    import psycopg

    sent = {(s.gate, s.plate): s.sent_at for s in samples if s.plate and s.sent_at}
    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        rows = conn.execute(
            "SELECT c.cmd_id, c.created_at, c.expires_at, r.code, v.plate FROM devices_command c"
            " JOIN devices_robot r ON r.id = c.robot_id"
            " LEFT JOIN stays_gatevisit v ON v.id = c.visit_id WHERE c.cmd_id = ANY(%s)",
            [list(ran)],
        ).fetchall()
    late = 0
    for cmd_id, created_at, expires_at, code, plate in rows:
        read_sent = sent.get((code, plate))
        ttl = expires_at - created_at
        if ran[cmd_id] > expires_at or (read_sent is not None and ran[cmd_id] - read_sent > ttl):
            late += 1
    return late


def acks_between(start: datetime, end: datetime) -> int:
    """Commands whose ack arrived between ``start`` and ``end`` (kept, written afterwards)."""
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        row = conn.execute(
            "SELECT count(*) FROM devices_command WHERE acked_at BETWEEN %s AND %s", [start, end]
        ).fetchone()
    return int(row[0]) if row else 0


def resend_asks() -> int:
    """``resend_acks`` commands staged (robots asked again for acks)."""
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        row = conn.execute(
            "SELECT count(*) FROM devices_command WHERE cmd = 'resend_acks'"
        ).fetchone()
    return int(row[0]) if row else 0


def run_db_outage(seconds: float = 15, workers: int = 1, emit: Any = None) -> list[dict[str, Any]]:
    """The database fault on a cluster of the bench's own (a small database: no history)."""
    global PG
    shared = PG
    cluster = OwnPostgres()
    cluster.create()
    PG = cluster.url
    mqtt: Mosquitto | None = None
    processes: list[subprocess.Popen[bytes]] = []
    logs = {name: cluster.folder / f"{name}.log" for name in ("gateway", "web")}
    try:
        mqtt = Mosquitto(set_up_database(history=0))
        mqtt.configure()
        mqtt.start()
        http_port = free_port()
        env = _env({"MQTT_URL": f"mqtt://127.0.0.1:{mqtt.port}", "EPPARK_LOG_LEVEL": "WARNING"})
        serve = ["serve", "--port", str(http_port), "--workers", str(workers), "--no-gateway"]
        for name, args in (("gateway", ["gateway"]), ("web", serve)):
            with logs[name].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "eppark", *args],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        wait_port(http_port)
        row = asyncio.run(db_outage(http_port, mqtt, cluster, seconds))
        row["gateway log bytes"] = logs["gateway"].stat().st_size
        if emit:
            emit(row)
        return [row]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        if mqtt is not None:
            mqtt.clean()
        cluster.clean()
        PG = shared


def main() -> int:
    """Run the bench; print the table (and JSON rows with --json)."""
    parser = argparse.ArgumentParser(prog="python -m bench.gate_loop")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--steps", default="100,150,200,250,300,400,500")
    parser.add_argument("--outage", type=float, default=0, help="also run the fault test")
    parser.add_argument("--workers", type=int, default=1, help="eppark serve --workers")
    parser.add_argument(
        "--db-outage",
        type=float,
        default=0,
        metavar="S",
        help="only the database fault: PostgreSQL (a cluster of the bench's own) stopped S s",
    )
    args = parser.parse_args()
    if args.db_outage:
        run_db_outage(
            args.db_outage,
            workers=args.workers,
            emit=lambda row: print(json.dumps(row, ensure_ascii=False), flush=True),
        )
        return 0
    run(
        args.seconds,
        [int(s) for s in args.steps.split(",")],
        args.outage,
        emit=lambda row: print(json.dumps(row, ensure_ascii=False), flush=True),
        workers=args.workers,
    )
    return 0


def run(
    seconds: float = 20,
    steps: list[int] | None = None,
    outage_s: float = 0,
    emit: Any = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Set everything up, measure, tear down."""
    passwords = set_up_database()
    mqtt = Mosquitto(passwords)
    mqtt.configure()
    mqtt.start()
    http_port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "eppark", "gateway"],
        env=_env({"MQTT_URL": f"mqtt://127.0.0.1:{mqtt.port}"}),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    serve = ["serve", "--port", str(http_port), "--workers", str(workers), "--no-gateway"]
    server = subprocess.Popen(
        [sys.executable, "-m", "eppark", *serve],
        env=_env({"MQTT_URL": f"mqtt://127.0.0.1:{mqtt.port}"}),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    robots = start_robots(mqtt)
    broker = mqtt.process.pid if mqtt.process else 0
    ROLES.update(server=server.pid, gateway=gateway.pid, robots=robots.pid, broker=broker)
    try:
        wait_port(http_port)
        rows = asyncio.run(
            measure(http_port, mqtt.port, seconds, steps or [100, 150, 200, 250, 300, 400, 500])
        )
        for row in rows:
            if emit:
                emit(row)
        robots.terminate()  # the fault test runs robots of its own, under the same names
        robots.wait(10)
        if outage_s:
            rows.append(asyncio.run(outage(http_port, mqtt, outage_s)))
            if emit:
                emit(rows[-1])
        return rows
    finally:
        robots.kill()
        gateway.terminate()
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        mqtt.clean()


if __name__ == "__main__":
    sys.exit(main())
