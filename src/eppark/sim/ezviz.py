"""A stand-in for the Ezviz (萤石) Open Platform: tokens, the device list and snapshots.

Speaks the endpoints EP Park uses (protocols.md "Ezviz") over real HTTP on 127.0.0.1:
``/api/lapp/token/get``, ``/api/lapp/device/list`` and ``/api/lapp/device/capture``,
whose ``picUrl`` points back at this server (``/pics/<n>.jpg``, a real JPEG). Tests and
``eppark demo`` use it in place of ``https://open.ys7.com``; knobs let a test take a
device offline, expire the tokens or make a code come back.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from eppark.sim.picture import CAR_JPEG
from eppark.sim.standin import QuietHandler, StandInServer

TOKEN_LIFETIME_S = 7 * 24 * 3600


class EzvizStandIn(StandInServer):
    """The stand-in platform: ``start()`` serves it on 127.0.0.1 (port 0: a free one).

    ``serials`` are the account's devices (None: any serial is one, online); ``offline``
    the serials that answer 20007.
    """

    NAME = "ezviz-standin"

    def __init__(
        self,
        *,
        app_key: str = "sim-app-key",
        app_secret: str = "sim-app-secret",
        serials: Iterable[str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.app_key = app_key
        self.app_secret = app_secret
        self.serials: set[str] | None = None if serials is None else set(serials)
        self.offline: set[str] = set()
        self.fail_with: str | None = None  # a code every capture answers with (e.g. "10028")
        self.picture = CAR_JPEG
        self.tokens: dict[str, float] = {}  # token → expires at (Unix seconds)
        self.token_requests = 0
        self.captures: list[str] = []  # serials captured, in order
        self._pictures: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (the next call answers 10002)."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    # -- the endpoints --

    def answer(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        """The platform's JSON answer to a form POSTed to ``path``."""
        if path == "/api/lapp/token/get":
            return self._token(form)
        token = form.get("accessToken", "")
        with self._lock:
            expires = self.tokens.get(token)
        if expires is None:
            return _error("10002", "accessToken异常或过期")
        if expires <= time.time():
            return _error("10002", "accessToken过期")
        if path == "/api/lapp/device/list":
            return self._list(form)
        if path == "/api/lapp/device/capture":
            return self._capture(form)
        return _error("10001", "参数错误: unknown API")

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.token_requests += 1
            if form.get("appKey") != self.app_key or not form.get("appSecret"):
                return _error("10001", "参数错误")
            if form.get("appSecret") != self.app_secret:
                return _error("10030", "appKey和appSecret不匹配")
            token = "at." + secrets.token_hex(16)
            expires = time.time() + TOKEN_LIFETIME_S
            self.tokens[token] = expires
        return _ok({"accessToken": token, "expireTime": int(expires * 1000)})

    def _known(self, serial: str) -> bool:
        return self.serials is None or serial in self.serials

    def _list(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            start, size = int(form.get("pageStart", "0")), int(form.get("pageSize", "10"))
        except ValueError:
            return _error("10001", "参数错误")
        serials = sorted(self.serials or set())
        page = serials[start * size : (start + 1) * size]
        devices = [
            {
                "deviceSerial": serial,
                "deviceName": f"机器人环境摄像头{serial}",
                "status": 0 if serial in self.offline else 1,
            }
            for serial in page
        ]
        return _ok(devices, page={"total": len(serials), "page": start, "size": size})

    def _capture(self, form: dict[str, str]) -> dict[str, Any]:
        serial = form.get("deviceSerial", "")
        if not serial or not form.get("channelNo", "").isdigit():
            return _error("10001", "参数错误")
        if not self._known(serial):
            return _error("20002", "设备不存在")
        if serial in self.offline:
            return _error("20007", "设备不在线")
        if self.fail_with is not None:
            return _error(self.fail_with, "simulated failure")
        with self._lock:
            self.captures.append(serial)
            name = f"{len(self.captures)}-{secrets.token_hex(4)}"
            self._pictures[name] = self.picture
        return _ok({"picUrl": f"{self.base_url}/pics/{name}.jpg"})

    def picture_at(self, path: str) -> bytes | None:
        """The picture a ``picUrl`` path names, or None."""
        if not (path.startswith("/pics/") and path.endswith(".jpg")):
            return None
        with self._lock:
            return self._pictures.get(path[len("/pics/") : -len(".jpg")])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                except (UnicodeDecodeError, ValueError):
                    self._send(400, b"bad form", "text/plain")
                    return
                answer = standin.answer(self.path.partition("?")[0], form)
                text = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self._send(200, text, "application/json;charset=UTF-8")

            def do_GET(self) -> None:
                picture = standin.picture_at(self.path.partition("?")[0])
                if picture is None:
                    self._send(404, b"not found", "text/plain")
                    return
                self._send(200, picture, "image/jpeg")

        return Handler


def _ok(data: Any, **extra: Any) -> dict[str, Any]:
    return {"code": "200", "msg": "操作成功!", "data": data, **extra}


def _error(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


ENVIRONMENT = ("EPPARK_EZVIZ_URL", "EPPARK_EZVIZ_APP_KEY", "EPPARK_EZVIZ_APP_SECRET")


@contextlib.contextmanager
def demo_platform() -> Iterator[EzvizStandIn | None]:
    """For ``eppark demo``: the stand-in serving every serial, unless an app key is set.

    Its address and credentials go into the environment (the demo's web workers and the
    settings' fallbacks read them there); both are put back afterwards.
    """
    if os.environ.get("EPPARK_EZVIZ_APP_KEY"):
        yield None  # a real Ezviz account is configured: use it
        return
    before = {name: os.environ.get(name) for name in ENVIRONMENT}
    with EzvizStandIn() as standin:
        os.environ.update(
            EPPARK_EZVIZ_URL=standin.base_url,
            EPPARK_EZVIZ_APP_KEY=standin.app_key,
            EPPARK_EZVIZ_APP_SECRET=standin.app_secret,
        )
        try:
            yield standin
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
