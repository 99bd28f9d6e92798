"""Agents' callouts (呼叫) sent to the call centre, against local stand-ins over real HTTP.

- generic: the simulated call centre (``eppark.sim.callcentre``) checks the request's
  signature, answers, and posts ``outbound_connected`` back to a live server: the
  DIALING call opens on its gate; a wrong secret, a seat it does not have or an
  address nobody answers mark the call FAILED with the reason;
- TiNet: a stand-in of its OpenAPI checks ``POST …/callout`` and the v2 signed query
  (``eppark.calls.cti.tinet.verify``) and answers as TiNet does: accepted, or a
  legacy error code (8/9/12), or an HTTP error.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib.auth.models import User

from eppark.accounts.models import Role
from eppark.calls import callout
from eppark.calls.cti import tinet
from eppark.calls.cti.events import BadSignature
from eppark.calls.models import Call, CallCentre, CallState
from eppark.records.errors import Refused
from eppark.sim.callcentre import SimCallCentre
from tests.integration.factories import LotWorld, build_lot, call_centre, staff
from tests.integration.mqtt_fixtures import cancel_tasks, close_loop_thread, free_port

KEY = "k-cti-callouts-0123456789"
SECRET = "callout-secret"
ROBOT = "14400000001"


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _lot() -> tuple[LotWorld, User]:
    agent = staff("kf-call", Role.AGENT, [])
    world = build_lot("caike", "彩科", "粤B11111", agent)
    agent.staff.lots.set([world.lot])
    return world, agent


def _seat(agent: User) -> str:
    return str(agent.seat.number)


class SimThread:
    """The simulated call centre on an event loop of its own (no MQTT: callouts only)."""

    def __init__(self, server: str, seats: list[str], secret: str = SECRET) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = SimCallCentre(
            server, KEY, secret=secret, seats=seats, port=free_port(), talk=30.0
        )
        self.task = asyncio.run_coroutine_threadsafe(self.sim.run(), self.loop)
        asyncio.run_coroutine_threadsafe(self._listening(), self.loop).result(10)

    async def _listening(self) -> None:
        await self.sim.listening.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sim.port}/callout"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(cancel_tasks(), self.loop).result(20)
        close_loop_thread(self.loop, self.thread)


@pytest.fixture
def sim_centre(live_server: Any) -> Iterator[Callable[..., SimThread]]:
    made: list[SimThread] = []

    def make(seats: list[str], secret: str = SECRET) -> SimThread:
        made.append(SimThread(live_server.url, seats, secret))
        return made[-1]

    yield make
    for sim in made:
        sim.close()


@pytest.mark.django_db(transaction=True)
def test_a_generic_callout_connects_through_the_simulated_call_centre(
    sim_centre: Callable[..., SimThread],
) -> None:
    world, agent = _lot()
    sim = sim_centre([_seat(agent)])
    call_centre(KEY, secret=SECRET, callout_url=sim.url)
    call = callout.dial(world.exit, agent)  # sent from a thread of its own once committed
    assert call.state == CallState.DIALING
    wait_until(lambda: Call.objects.get(pk=call.pk).state == CallState.ANSWERED)
    call.refresh_from_db()
    assert (call.agent, call.gate, call.callee, call.failure) == (agent, world.exit, ROBOT, "")
    assert call.call_id == f"sim-out-{call.request_id}"
    wait_until(lambda: any(p["event"] == "outbound_connected" for p in sim.sim.posted))
    connected = [p for p in sim.sim.posted if p["event"] == "outbound_connected"]
    assert [(p["callee"], p["seat"], p["status"]) for p in connected] == [
        (ROBOT, _seat(agent), 200)
    ]
    callout.send(call.pk)  # sent again: a call no longer dialling is left alone
    assert Call.objects.get(pk=call.pk).state == CallState.ANSWERED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trouble", ["wrong_secret", "unknown_seat", "nobody_listens"])
def test_a_refused_generic_callout_fails_with_its_reason(
    sim_centre: Callable[..., SimThread], trouble: str
) -> None:
    world, agent = _lot()
    sim = sim_centre(
        ["9999"] if trouble == "unknown_seat" else [_seat(agent)],
        secret="other" if trouble == "wrong_secret" else SECRET,
    )
    url = f"http://127.0.0.1:{free_port()}/callout" if trouble == "nobody_listens" else sim.url
    call_centre(KEY, secret=SECRET, callout_url=url)
    call = callout.dial(world.exit, agent, background=False)
    call.refresh_from_db()
    assert call.state == CallState.FAILED
    assert call.ended_at is not None
    expected = {
        "wrong_secret": "X-EPPark-Signature",
        "unknown_seat": "does not exist",
        "nobody_listens": "ConnectError",
    }[trouble]
    assert expected in call.failure
    assert not [p for p in sim.sim.posted if p["event"] == "outbound_connected"]


# --- TiNet ----------------------------------------------------------------------------------


class TinetStandIn:
    """TiNet's OpenAPI on a local port: checks the signed query, answers as told."""

    def __init__(self, secret: str, reply: tuple[int, dict[str, Any]]) -> None:
        self.secret = secret
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    tinet.verify(
                        stand_in.secret,
                        "POST",
                        self.headers["Host"],
                        parts.path,
                        query,
                        datetime.now(UTC),
                    )
                    status, reply = stand_in.reply
                except BadSignature as error:
                    status, reply = 401, {"error": {"code": "Unauthorized", "message": str(error)}}
                stand_in.requests.append(
                    {"path": parts.path, "query": query, "body": json.loads(body)}
                )
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def tinet_stand_in() -> Iterator[Callable[..., TinetStandIn]]:
    made: list[TinetStandIn] = []

    def make(reply: tuple[int, dict[str, Any]], secret: str = SECRET) -> TinetStandIn:
        made.append(TinetStandIn(secret, reply))
        return made[-1]

    yield make
    for stand_in in made:
        stand_in.close()


def _tinet_centre(base: str, secret: str = SECRET) -> CallCentre:
    centre: CallCentre = call_centre(
        "k-tinet-callouts-0123",
        name="天润",
        provider="tinet",
        secret=secret,
        access_key_id="AK-test",
        callout_url=base,
    )
    return centre


@pytest.mark.django_db
def test_a_tinet_callout_is_a_signed_post_to_callout(
    tinet_stand_in: Callable[..., TinetStandIn],
) -> None:
    world, agent = _lot()
    stand_in = tinet_stand_in((200, {"requestId": "r-1", "result": "success"}))
    _tinet_centre(stand_in.base)
    call = callout.place(world.exit, agent, _seat(agent))
    callout.send(call.pk)
    call.refresh_from_db()
    assert (call.state, call.failure) == (CallState.DIALING, "")  # connected later, by event
    [request] = stand_in.requests
    assert request["path"] == "/cc/callout"
    assert request["body"] == {
        "cno": _seat(agent),
        "customerNumber": ROBOT,
        "requestUniqueId": call.request_id,
    }
    assert request["query"]["AccessKeyId"] == "AK-test"
    assert set(tinet.SIGNING_PARAMETERS) <= set(request["query"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reply", "secret", "expected"),
    [
        ((200, {"result": "error", "code": 8}), SECRET, "the seat does not exist (code 8)"),
        ((200, {"result": "error", "code": "9"}), SECRET, "the seat is not idle (code 9)"),
        ((400, {"code": 12, "description": "座席不在线"}), SECRET, "the seat is offline"),
        ((500, {}), SECRET, "HTTP 500"),
        ((200, {"requestId": "r"}), "another-secret", "wrong Signature"),  # ours, refused
    ],
)
def test_a_refused_tinet_callout_fails_with_a_readable_reason(
    tinet_stand_in: Callable[..., TinetStandIn],
    settings: Any,
    reply: tuple[int, dict[str, Any]],
    secret: str,
    expected: str,
) -> None:
    settings.LANGUAGE_CODE = "en"
    world, agent = _lot()
    stand_in = tinet_stand_in(reply, secret)
    _tinet_centre(stand_in.base)
    call = callout.place(world.exit, agent, _seat(agent))
    failed = callout.send(call.pk)
    assert failed.state == CallState.FAILED
    assert expected in failed.failure


@pytest.mark.django_db
def test_dial_needs_a_seat_a_served_lot_and_a_call_centre(
    tinet_stand_in: Callable[..., TinetStandIn],
) -> None:
    from django.core.exceptions import PermissionDenied

    world, agent = _lot()
    with pytest.raises(Refused):  # no call centre with a callout address yet
        callout.dial(world.exit, agent, background=False)
    _tinet_centre(tinet_stand_in((200, {})).base)
    stranger = staff("kf-other", Role.AGENT, [])
    with pytest.raises(PermissionDenied):
        callout.dial(world.exit, stranger, background=False)
    seatless = staff("op-x", Role.OPERATOR, [world.lot])
    with pytest.raises(Refused):
        callout.dial(world.exit, seatless, background=False)
    assert not Call.objects.exists()
