"""Brokers under test, each on a free port of its own with per-robot passwords and the robot ACL.

``mosquitto`` runs a real Mosquitto (set up by ``write_mosquitto_config``: password file, ACL from
``mosquitto_acl()``); ``embedded_broker`` runs ``EmbeddedBroker`` in a thread of its own. Both
yield a ``TestBroker``: its URL, the users' passwords, and ``stop``/``start``/``restart``.
Import the fixtures into a test module: ``from tests.integration.mqtt_fixtures import …``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eppark.gateway.broker import EmbeddedBroker, write_mosquitto_config
from eppark.gateway.protocol import GATEWAY_USER

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ROBOTS = {"EP-0001": "secret-0001", "EP-0002": "secret-0002"}
GATEWAY_PASSWORD = "gateway-secret"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port}")
        time.sleep(0.02)


async def cancel_tasks(timeout: float = 10.0) -> None:
    """Cancel every other task of the running loop and wait for them (their errors are read).

    One that does not finish within ``timeout`` stays pending: the leak guard names it.
    """
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    done, _pending = await asyncio.wait(tasks, timeout=timeout)
    for task in done:
        if not task.cancelled():
            task.exception()  # read: not "Task exception was never retrieved" at collection


def close_loop_thread(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop a loop running in ``thread`` the way ``asyncio.run`` ends: async generators and
    the default executor (the broker's password checks) shut down, the thread joined, closed."""

    async def shut_down() -> None:
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    asyncio.run_coroutine_threadsafe(shut_down(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    if not thread.is_alive():
        loop.close()


@dataclass
class TestBroker:
    """A running broker: where it is, who may log in, and how to stop or restart it."""

    __test__ = False

    name: str
    port: int
    stop: Callable[[], None]
    start: Callable[[], None]
    passwords: dict[str, str] = field(default_factory=lambda: dict(ROBOTS))
    gateway_password: str = GATEWAY_PASSWORD

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:port``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def restart(self) -> None:
        """Stop, then start again on the same port (nothing retained survives)."""
        self.stop()
        self.start()


def _users() -> dict[str, str]:
    """Every user and password: the robots and the gateway."""
    return {**ROBOTS, GATEWAY_USER: GATEWAY_PASSWORD}


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[TestBroker]:
    """A real Mosquitto with a passwd file, the generated ACL, ``user root``, no persistence."""
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed: run tools/ensure-services")
    port = free_port()
    conf = write_mosquitto_config(
        tmp_path,
        port,
        _users(),
        extra=["user root", f"log_dest file {tmp_path / 'mosquitto.log'}"],
    )
    process: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process.append(subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL))
        wait_listening(port)

    def stop() -> None:
        while process:
            running = process.pop()
            running.terminate()
            try:
                running.wait(10)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait()

    start()
    try:
        yield TestBroker("mosquitto", port, stop, start)
    finally:
        stop()


@pytest.fixture
def embedded_broker() -> Iterator[TestBroker]:
    """``EmbeddedBroker`` (amqtt) in a thread with its own event loop."""
    port = free_port()
    users = _users()
    broker = EmbeddedBroker("127.0.0.1", port, lambda user, password: users.get(user) == password)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="embedded broker", daemon=True)
    thread.start()

    def start() -> None:
        asyncio.run_coroutine_threadsafe(broker.start(), loop).result(10)
        wait_listening(port)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.stop(), loop).result(30)

    start()
    try:
        yield TestBroker("embedded", port, stop, start)
    finally:
        stop()
        close_loop_thread(loop, thread)


@pytest.fixture(params=["mosquitto", "embedded_broker"])
def any_broker(request: pytest.FixtureRequest) -> TestBroker:
    """Each test runs once against Mosquitto and once against the embedded broker."""
    broker: TestBroker = request.getfixturevalue(request.param)
    return broker
