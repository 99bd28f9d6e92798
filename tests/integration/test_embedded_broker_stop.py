"""Stopping the embedded broker leaves nothing running behind it (the demo, ``eppark serve``)."""

from __future__ import annotations

import asyncio

from eppark.gateway.broker import EmbeddedBroker
from tests.integration.mqtt_fixtures import free_port


def _others() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def test_stopping_the_broker_ends_a_connection_that_never_logged_in() -> None:
    async def scenario() -> None:
        port = free_port()
        broker = EmbeddedBroker("127.0.0.1", port, lambda _user, _password: True)
        await broker.start()
        running = _others()
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)  # no CONNECT yet
        async with asyncio.timeout(10):
            while len(_others()) <= len(running):  # the broker took the connection
                await asyncio.sleep(0.01)
        await broker.stop()
        left = _others()
        writer.close()
        assert left == set()  # no connection task outlives the broker

    asyncio.run(scenario())
