"""Barrier opening through the camera API, against a real local Digest-auth HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from eppark.devices.lpr.barrier import (
    BarrierError,
    async_open_barrier,
    digest_authorization,
)

USER, PASSWORD, REALM, NONCE = "admin", "hik12345", "DS-2CD7A26G0", "4e4455794d7a6b7a4f5459"


@dataclass
class Camera:
    """What the fake camera saw and how it answers."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes = b"OK\r\n"
    algorithm: str = "MD5"


def _h(algorithm: str, text: str) -> str:
    return hashlib.new("sha256" if algorithm == "SHA-256" else "md5", text.encode()).hexdigest()


def _valid(camera: Camera, method: str, header: str) -> bool:
    found = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header)
    params = {key: quoted or bare for key, quoted, bare in found}
    if params.get("username") != USER or params.get("nonce") != NONCE:
        return False
    ha1 = _h(camera.algorithm, f"{USER}:{REALM}:{PASSWORD}")
    ha2 = _h(camera.algorithm, f"{method}:{params['uri']}")
    expected = _h(
        camera.algorithm,
        f"{ha1}:{NONCE}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}",
    )
    return params.get("response") == expected


@pytest.fixture
def camera() -> Iterator[Camera]:
    state = Camera()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization")
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "auth": auth,
                    "content_type": self.headers.get("Content-Type"),
                }
            )
            if not auth or not auth.startswith("Digest ") or not _valid(state, self.command, auth):
                self._reply(
                    401,
                    b"Unauthorized",
                    (
                        "WWW-Authenticate",
                        f'Digest realm="{REALM}", qop="auth", '
                        f'nonce="{NONCE}", algorithm={state.algorithm}, stale="FALSE"',
                    ),
                )
                return
            self._reply(state.status, state.body)

        def _reply(self, status: int, body: bytes, *header: tuple[str, str]) -> None:
            self.send_response(status)
            for name, value in header:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def open_barrier(vendor: str, camera: Camera, password: str = PASSWORD) -> None:
    asyncio.run(async_open_barrier(vendor, camera.base_url, USER, password, timeout=5))


def test_hikvision_put_barrier_gate(camera: Camera) -> None:
    camera.body = (
        b'<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="2.0" '
        b'xmlns="http://www.isapi.org/ver20/XMLSchema"><requestURL>/ISAPI/Parking/channels/1/'
        b"barrierGate</requestURL><statusCode>1</statusCode><statusString>OK</statusString>"
        b"</ResponseStatus>"
    )
    open_barrier("hikvision", camera)
    first, second = camera.requests
    assert first["auth"] is None
    assert second["method"] == "PUT"
    assert second["path"] == "/ISAPI/Parking/channels/1/barrierGate"
    assert second["body"] == b"<BarrierGate><ctrlMode>open</ctrlMode></BarrierGate>"
    assert second["content_type"] == "application/xml"
    assert second["auth"].startswith('Digest username="admin"')


def test_dahua_open_strobe(camera: Camera) -> None:
    open_barrier("dahua", camera)
    assert [r["method"] for r in camera.requests] == ["GET", "GET"]
    assert camera.requests[1]["path"] == (
        "/cgi-bin/trafficSnap.cgi?action=openStrobe&channel=1&info.openType=Normal"
    )
    assert (
        'uri="/cgi-bin/trafficSnap.cgi?action=openStrobe&channel=1&info.openType=Normal"'
        in (camera.requests[1]["auth"])
    )


def test_sha256_challenge(camera: Camera) -> None:
    camera.algorithm = "SHA-256"
    open_barrier("dahua", camera)
    assert "algorithm=SHA-256" in camera.requests[1]["auth"]


def test_wrong_password(camera: Camera) -> None:
    with pytest.raises(BarrierError, match="username or password"):
        open_barrier("hikvision", camera, password="wrong")


def test_camera_reports_failure(camera: Camera) -> None:
    camera.status, camera.body = 400, b"Error\r\nBad Request!\r\n"
    with pytest.raises(BarrierError, match="HTTP 400"):
        open_barrier("dahua", camera)


def test_hikvision_status_code_not_ok(camera: Camera) -> None:
    camera.body = b"<ResponseStatus><statusCode>4</statusCode></ResponseStatus>"
    with pytest.raises(BarrierError, match="did not confirm"):
        open_barrier("hikvision", camera)


def test_dahua_error_text(camera: Camera) -> None:
    camera.body = b"Error"
    with pytest.raises(BarrierError, match="did not confirm"):
        open_barrier("dahua", camera)


def test_unreachable_camera() -> None:
    with pytest.raises(BarrierError, match="cannot reach"):
        asyncio.run(async_open_barrier("dahua", "http://127.0.0.1:9", USER, PASSWORD, timeout=5))


def test_bad_arguments() -> None:
    with pytest.raises(BarrierError, match="no barrier API"):
        asyncio.run(async_open_barrier("vzenith", "http://127.0.0.1", USER, PASSWORD, timeout=1))
    with pytest.raises(BarrierError, match="base_url"):
        asyncio.run(async_open_barrier("dahua", "ftp://camera", USER, PASSWORD, timeout=1))


def test_digest_rfc_2617_example() -> None:
    header = digest_authorization(
        [
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        ],
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_digest_rfc_7616_prefers_sha256() -> None:
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    header = digest_authorization(
        [challenge.format("MD5"), challenge.format("SHA-256")],
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in header


def test_no_digest_offered() -> None:
    with pytest.raises(BarrierError, match="no supported Digest"):
        digest_authorization(['Basic realm="x"'], "GET", "/", "u", "p", "c")
