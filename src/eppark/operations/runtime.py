"""One process running the web server, the MQTT gateway and (by default) an embedded broker.

``MQTT_URL`` unset: an embedded broker listens on 127.0.0.1:``EPPARK_MQTT_PORT``
(11883) and checks robots' passwords against their stored hashes. Set it to
use a real broker (Mosquitto, EMQX) instead; the gateway then connects to it.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from django.db import close_old_connections, connection

from eppark.dbstate import DatabaseState, unreachable
from eppark.devices.credentials import gateway_password, verify_password
from eppark.devices.models import Robot
from eppark.gateway import protocol
from eppark.gateway.broker import EmbeddedBroker
from eppark.gateway.service import Gateway

log = logging.getLogger(__name__)


def check_mqtt_password(username: str, password: str) -> bool:
    """Whether an MQTT client may connect: the gateway, or a robot with its own password."""
    if username == protocol.GATEWAY_USER:
        return hmac.compare_digest(password.encode(), gateway_password().encode())
    close_old_connections()
    try:
        hashed = (
            Robot.objects.filter(code=username).values_list("mqtt_password_hash", flat=True).first()
        )
    finally:
        connection.close()  # runs in a broker worker thread: give the connection back
    return bool(hashed) and verify_password(password, hashed or "")


_passwords_db = DatabaseState("embedded broker", log)


def _robots_checked(username: str, password: str) -> bool:
    """``check_mqtt_password``; a robot that connects while the database is away is refused
    (it retries), with one log line per outage rather than an error per attempt."""
    try:
        allowed = check_mqtt_password(username, password)
    except Exception as error:
        if not unreachable(error):
            raise
        _passwords_db.failed(error, holding="robots connecting now are refused; they retry")
        return False
    if username != protocol.GATEWAY_USER:  # the gateway's own check reads no database
        _passwords_db.succeeded()
    return allowed


def freeze_heap() -> None:
    """Keep the start-up heap (Django, the app's modules) out of the cyclic garbage collector.

    A long-running server allocates steadily; every so often the collector walks
    every object, hundreds of thousands of them after Django has loaded, while
    holding the interpreter: a pause of tens of milliseconds for every request
    in flight. Frozen objects are never walked again.
    """
    gc.collect()
    gc.freeze()


def mqtt_url() -> str:
    """Where the gateway connects: ``MQTT_URL``, else the embedded broker."""
    return protocol.default_mqtt_url(os.environ)


async def async_serve(
    host: str,
    port: int,
    *,
    extra: Sequence[Callable[[], Awaitable[Any]]] = (),
    ready: Callable[[], None] | None = None,
    sock: socket.socket | None = None,
    gateway: bool = True,
    payments: bool | None = None,
) -> None:
    """Serve HTTP, run the gateway (and the embedded broker), plus ``extra`` tasks.

    ``sock``: an already bound listening socket (shared by several worker
    processes); ``gateway=False`` for a web-only worker, whose commands reach
    the gateway process through PostgreSQL ``NOTIFY``. ``payments``: run the
    payments worker (``eppark.payments.worker``) too; by default where the
    gateway runs.
    """
    password = gateway_password() if gateway else ""  # a missing one fails before anything starts
    import uvicorn

    import eppark.asgi  # noqa: F401  (load the application before freezing the heap)

    freeze_heap()
    url = mqtt_url()
    broker: EmbeddedBroker | None = None
    if gateway and not os.environ.get("MQTT_URL"):
        address = protocol.parse_mqtt_url(url)
        broker = EmbeddedBroker(address.host, address.port, check_password=_robots_checked)
        await broker.start()
        log.warning("embedded MQTT broker on %s", broker.url)
    config = uvicorn.Config(
        "eppark.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    tasks = []
    if gateway:
        service = Gateway(url, password=password)
        tasks.append(asyncio.create_task(service.run(), name="gateway"))
    if gateway if payments is None else payments:  # by default where the gateway runs
        from eppark.payments.worker import PaymentsWorker

        tasks.append(asyncio.create_task(PaymentsWorker().run(), name="payments"))
    if ready is not None:
        tasks.append(asyncio.create_task(_when_started(server, ready)))
    tasks += [asyncio.create_task(_after_started(server, task)) for task in extra]
    try:
        # returns on SIGINT/SIGTERM, after open requests finish
        await server.serve(sockets=[sock] if sock is not None else None)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if broker is not None:
            await broker.stop()


async def async_gateway() -> None:
    """Run only the gateway (and the embedded broker when ``MQTT_URL`` is unset)."""
    password = gateway_password()  # a missing one fails before anything starts
    freeze_heap()
    url = mqtt_url()
    broker: EmbeddedBroker | None = None
    if not os.environ.get("MQTT_URL"):
        address = protocol.parse_mqtt_url(url)
        broker = EmbeddedBroker(address.host, address.port, check_password=_robots_checked)
        await broker.start()
        log.warning("embedded MQTT broker on %s", broker.url)
    try:
        await Gateway(url, password=password).run()
    finally:
        if broker is not None:
            await broker.stop()


async def async_payments() -> None:
    """Run only the payments worker (``eppark payments``)."""
    from eppark.payments.worker import PaymentsWorker

    freeze_heap()
    await PaymentsWorker().run()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket that worker processes can share (inherited by file descriptor)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _when_started(server: Any, ready: Callable[[], None]) -> None:
    while not server.started:
        await asyncio.sleep(0.05)
    ready()


async def _after_started(server: Any, task: Callable[[], Awaitable[Any]]) -> None:
    while not server.started:
        await asyncio.sleep(0.05)
    await task()
