"""Opening a barrier through the camera's own HTTP API (Hikvision, Dahua), with Digest auth.

Hikvision ISAPI: ``PUT /ISAPI/Parking/channels/1/barrierGate`` with
``<BarrierGate><ctrlMode>open</ctrlMode></BarrierGate>``; success is HTTP 200
with a ``ResponseStatus`` whose ``statusCode`` is 1 (or no body).
Dahua CGI: ``GET /cgi-bin/trafficSnap.cgi?action=openStrobe&channel=1&
info.openType=Normal``; success is HTTP 200 with ``OK``.
Both cameras answer the first request with ``401`` and a ``WWW-Authenticate:
Digest`` challenge (RFC 7616: MD5, MD5-sess, SHA-256, SHA-256-sess; qop
``auth`` or none). Standard library only: ``http.client`` runs in a worker
thread, bounded by ``timeout`` seconds for the whole exchange.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import re
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit
from xml.etree import ElementTree

HIKVISION_PATH: Final = "/ISAPI/Parking/channels/1/barrierGate"
HIKVISION_BODY: Final = b"<BarrierGate><ctrlMode>open</ctrlMode></BarrierGate>"
DAHUA_PATH: Final = "/cgi-bin/trafficSnap.cgi?action=openStrobe&channel=1&info.openType=Normal"

_HASHES: Final = {"MD5": "md5", "SHA-256": "sha256"}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


class BarrierError(RuntimeError):
    """The camera did not confirm the barrier opening (unreachable, refused, failed)."""


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    body: bytes | None
    content_type: str | None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _request_for(vendor: str) -> _Request:
    if vendor == "hikvision":
        return _Request("PUT", HIKVISION_PATH, HIKVISION_BODY, "application/xml")
    if vendor == "dahua":
        return _Request("GET", DAHUA_PATH, None, None)
    raise BarrierError(f"{vendor!r} cameras have no barrier API here (only hikvision, dahua)")


async def async_open_barrier(
    vendor: str,
    base_url: str,
    username: str,
    password: str,
    timeout: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Open the barrier wired to a Hikvision or Dahua camera; BarrierError unless confirmed."""
    request = _request_for(vendor)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BarrierError(f"base_url must be http(s)://host[:port], not {base_url!r}")
    prefix = parts.path.rstrip("/")
    request = _Request(request.method, prefix + request.path, request.body, request.content_type)
    try:
        async with asyncio.timeout(timeout):
            response = await asyncio.to_thread(
                _exchange,
                parts.scheme,
                parts.netloc,
                request,
                username,
                password,
                timeout,
                ssl_context,
            )
    except TimeoutError:
        raise BarrierError(
            f"{vendor} camera at {base_url} did not answer within {timeout} s"
        ) from None
    _check(vendor, base_url, response)


def _exchange(
    scheme: str,
    netloc: str,
    request: _Request,
    username: str,
    password: str,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> _Response:
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(netloc, timeout=timeout, context=ssl_context)
    else:
        connection = http.client.HTTPConnection(netloc, timeout=timeout)
    try:
        first = _send(connection, request, None)
        if first.status != 401:
            return first
        challenge = first.headers.get_all("WWW-Authenticate") or []
        authorization = digest_authorization(
            challenge, request.method, request.path, username, password, os.urandom(8).hex()
        )
        second = _send(connection, request, authorization)
        if second.status == 401:
            raise BarrierError("the camera refused the username or password (401)")
        return second
    except (OSError, http.client.HTTPException) as exc:
        raise BarrierError(f"cannot reach the camera at {scheme}://{netloc}: {exc}") from None
    finally:
        connection.close()


def _send(
    connection: http.client.HTTPConnection, request: _Request, authorization: str | None
) -> _Response:
    headers = {"Connection": "keep-alive"}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    if authorization is not None:
        headers["Authorization"] = authorization
    connection.request(request.method, request.path, body=request.body, headers=headers)
    response = connection.getresponse()
    body = response.read(64 * 1024)
    return _Response(response.status, response.headers, body)


def _check(vendor: str, base_url: str, response: _Response) -> None:
    text = response.body.decode("utf-8", "replace").strip()
    if not 200 <= response.status < 300:
        raise BarrierError(
            f"{vendor} camera at {base_url} answered HTTP {response.status}: {text[:200]}"
        )
    if vendor == "dahua" and text and text.upper() != "OK":
        raise BarrierError(f"dahua camera at {base_url} did not confirm: {text[:200]}")
    if vendor == "hikvision" and text.startswith("<"):
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            return
        code = next(
            (el.text for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "statusCode"), None
        )
        if code is not None and code.strip() != "1":
            raise BarrierError(f"hikvision camera at {base_url} did not confirm: {text[:200]}")


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of the Digest challenge in a WWW-Authenticate header, or None."""
    match = re.search(r"(?:^|,\s*|\s)Digest\s+", header, re.IGNORECASE)
    if match is None:
        return None
    params: dict[str, str] = {}
    rest = header[match.end() :]
    position = 0
    while position < len(rest):
        found = _PARAM.match(rest, position)
        if found is None or found.end() == position:
            break
        key, value = found.group(1).lower(), found.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(key, value)
        position = found.end()
    return params if "nonce" in params else None


def digest_authorization(
    challenges: list[str],
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The ``Authorization: Digest …`` value answering the strongest supported challenge."""
    offers = [params for header in challenges if (params := parse_challenge(header))]
    supported = [
        params
        for params in offers
        if params.get("algorithm", "MD5").upper().removesuffix("-SESS") in _HASHES
    ]
    if not supported:
        shown = "; ".join(challenges) or "no WWW-Authenticate header"
        raise BarrierError(f"the camera offered no supported Digest challenge ({shown})")
    params = max(supported, key=lambda p: p.get("algorithm", "MD5").upper().startswith("SHA"))
    algorithm = params.get("algorithm", "MD5")
    name = _HASHES[algorithm.upper().removesuffix("-SESS")]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode("utf-8")).hexdigest()

    realm, nonce = params.get("realm", ""), params["nonce"]
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
    ]
    if qops:
        if "auth" not in qops:
            raise BarrierError(f"the camera requires an unsupported qop ({', '.join(qops)})")
        count = f"{nc:08x}"
        response = h(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    if "algorithm" in params:
        fields.append(f"algorithm={algorithm}")
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)
