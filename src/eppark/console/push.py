"""Pushing to agents' desks over the channel layer (Django Channels).

Groups: ``agent.<user id>`` (calls popping on that agent's desk), ``lot.<lot id>``
(the calls board and congestion of a lot, for every agent serving it) and
``robot.<robot id>`` (the live mirror of a robot's screen); a lot's pushes also go to
``lot.all``, the group of the desks of users who serve every lot. Messages are sent when
the transaction that caused them commits, never before (a rolled-back change
pushes nothing). From a thread without an event loop (Django's sync views under
uvicorn, the gateway's database thread) the message is handed to the loop the desks'
sockets run on (``bind_loop``, called as a desk connects) or, where no desk has
connected in this process (tests, management commands), sent on the spot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)
_loop: asyncio.AbstractEventLoop | None = None


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The serving process's event loop: pushes from other threads are sent on it."""
    global _loop
    _loop = loop


def agent_group(user_id: int) -> str:
    """The group of one agent's open desks."""
    return f"agent.{user_id}"


def lot_group(lot_id: int) -> str:
    """The group of every desk serving one lot."""
    return f"lot.{lot_id}"


ALL_LOTS_GROUP = "lot.all"
"""Desks of users who serve every lot (admins): every lot's pushes reach them too."""


def robot_group(robot_id: int) -> str:
    """The group of desks mirroring one robot's screen."""
    return f"robot.{robot_id}"


def publish(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` (``{"type": "desk.message", "kind": …, …}``) to ``group`` on commit."""
    event = {"type": "desk.message", **message}
    transaction.on_commit(lambda: send_now(group, event))
    if group.startswith("lot.") and group != ALL_LOTS_GROUP:
        transaction.on_commit(lambda: send_now(ALL_LOTS_GROUP, event))


def send_now(group: str, event: dict[str, Any]) -> None:
    """Send at once, from whichever thread this runs on."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if running is not None:
            running.create_task(layer.group_send(group, event))
        elif _loop is not None and _loop.is_running():
            asyncio.run_coroutine_threadsafe(layer.group_send(group, event), _loop)
        else:
            async_to_sync(layer.group_send)(group, event)
    except Exception:  # a push is a courtesy: the page re-reads its state on reconnect
        log.exception("could not push to %s", group)
