"""The agent desk's WebSocket: calls, the robot's screen and the congestion list, pushed.

One consumer per open desk page. Only a logged-in agent is accepted (anyone else
is closed with code 4403). It joins the agent's own group, the group of every
lot the agent serves (``lot.all`` for one who serves every lot) and the group of
each robot whose call is on the desk. On connect it sends the whole desk
(``hello``); then each push names what changed and the consumer sends that
call's new state, but only to an agent who may see it (``cases.may_see``): a
call of a lot the agent does not serve never reaches their page. The congestion
list is re-sent by the server when it changes (checked every few seconds), so the
page never polls. Actions do not travel over the socket: they are HTTP POSTs
with CSRF (``desk_views``); the socket takes only ``{"type": "ping"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone, translation

from eppark.accounts.scoping import lot_ids
from eppark.console import cases, desk_state, push

FORBIDDEN = 4403
log = logging.getLogger(__name__)


def board_every() -> float:
    """Seconds between the server's checks of the congestion list."""
    return float(getattr(settings, "EPPARK_DESK_BOARD_S", 5.0))


class DeskConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One open desk page of one agent."""

    groups_joined: list[str]
    robots: set[int]
    shown: dict[int, str]  # the calls on the page: id → the state last sent
    board_task: asyncio.Task[None] | None = None
    last_board: Any = None
    language: str = ""

    async def connect(self) -> None:
        """A logged-in agent only: joins their groups and gets the whole desk."""
        user = self.scope.get("user")
        self.groups_joined, self.robots, self.shown = [], set(), {}
        # pushes made on other threads (the gateway's database thread) reach this loop
        push.bind_loop(asyncio.get_running_loop())
        await self.accept()
        if user is None or not await database_sync_to_async(cases.is_agent)(user):
            await self.close(code=FORBIDDEN)
            return
        self.language = _language(self.scope)
        served = await database_sync_to_async(lot_ids)(user)
        groups = [push.agent_group(user.pk)]
        if served is None:
            groups.append(push.ALL_LOTS_GROUP)
        else:
            groups.extend(push.lot_group(lot) for lot in sorted(served))
        for group in groups:
            await self._join(group)
        hello = await self._run(desk_state.desk_hello, user)
        for call in hello["calls"]:
            self.shown[call["id"]] = _fingerprint(call)
            await self._watch(call)
        self.last_board = _board_key(hello["board"])
        await self.send_json(hello)
        self.board_task = asyncio.get_running_loop().create_task(self._board_loop())

    async def disconnect(self, code: int) -> None:
        """Leave the groups; stop watching the congestion list."""
        if self.board_task is not None:
            self.board_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.board_task
            self.board_task = None
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Only ``ping`` (answered ``pong``): actions go over HTTP with CSRF."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def desk_message(self, event: dict[str, Any]) -> None:
        """A push: send the new state of what it names, if this agent may see it."""
        try:
            await self._pushed(event)
        except Exception:  # one bad push must not close the desk; the next one updates it
            log.exception("desk push %s could not be sent", event.get("kind"))

    async def _pushed(self, event: dict[str, Any]) -> None:
        user = self.scope["user"]
        kind = event.get("kind")
        if kind in ("call", "photo") and isinstance(event.get("call"), int):
            state = await self._run(_visible_state, user, event["call"])
            if state is not None:
                await self._send_call(state)
            return
        if kind == "screen" and isinstance(event.get("robot"), int):
            states = await self._run(_robot_states, user, event["robot"])
            for state in states:
                await self._send_call(state)
            return
        if kind == "board":
            await self._send_board(force=True)

    # --- helpers ---

    async def _send_call(self, state: dict[str, Any]) -> None:
        """Send a call's state, unless it is news of no concern to this desk or no news.

        A call another agent holds shows here only if this desk already had it (it rang
        for anyone, then was taken); one this desk never showed stays off it. The same
        change pushed to several of this desk's groups is sent once.
        """
        pk = state["id"]
        overview = state["overview"]
        unknown = pk not in self.shown
        if unknown and (not state["open"] or (not overview["mine"] and overview["taken_by"])):
            return
        text = _fingerprint(state)
        if self.shown.get(pk) == text:
            return
        if state["open"]:
            self.shown[pk] = text
        else:
            self.shown.pop(pk, None)
        await self._watch(state)
        await self.send_json({"type": "call", "call": state})

    async def _join(self, group: str) -> None:
        if group in self.groups_joined:
            return
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def _watch(self, state: dict[str, Any]) -> None:
        robot = (state.get("overview") or {}).get("robot")
        if robot and robot["id"] not in self.robots:
            self.robots.add(robot["id"])
            await self._join(push.robot_group(robot["id"]))

    async def _run(self, func: Any, *args: Any) -> Any:
        language = self.language

        def work() -> Any:
            with translation.override(language or settings.LANGUAGE_CODE):
                return func(*args)

        return await database_sync_to_async(work)()

    async def _send_board(self, *, force: bool = False) -> None:
        items = await self._run(desk_state.board, self.scope["user"])
        key = _board_key(items)
        if force or key != self.last_board:
            self.last_board = key
            await self.send_json({"type": "board", "board": items})

    async def _board_loop(self) -> None:
        while True:
            await asyncio.sleep(board_every())
            try:
                await self._send_board()
            except asyncio.CancelledError:
                raise
            except Exception:  # the page still has the last list; try again next time
                continue


def _fingerprint(state: dict[str, Any]) -> str:
    """A call's state without its read time: equal when nothing the page shows changed."""
    return json.dumps({k: v for k, v in state.items() if k != "stamp"}, sort_keys=True)


def _board_key(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(item["visit"], item["gate"]["id"], item["plate"], item["title"]) for item in items]


def _visible_state(user: Any, call_id: int) -> dict[str, Any] | None:
    call = desk_state.load(call_id)
    if call is None or not cases.may_see(user, call):
        return None
    return desk_state.call_state(call, user, timezone.now())


def _robot_states(user: Any, robot_id: int) -> list[dict[str, Any]]:
    now = timezone.now()
    return [
        desk_state.call_state(call, user, now) for call in desk_state.robot_calls(user, robot_id)
    ]


def _language(scope: dict[str, Any]) -> str:
    """The page's language: the language cookie, else the site's default (zh-hans)."""
    cookies = scope.get("cookies") or {}
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME, "")
    codes = {code for code, _name in settings.LANGUAGES}
    return chosen if chosen in codes else settings.LANGUAGE_CODE
