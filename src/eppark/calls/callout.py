"""Outbound calls (manual 2.3.3): an agent's ``呼叫`` dials a robot's SIM through the call
centre; when the call centre reports ``outbound_connected`` the desk opens on that gate.

``dial(gate, user)`` records a DIALING call (``place``) and, once that commits, sends
the request to the call centre on a thread of its own, so the agent's request returns
at once. ``send(call_id)`` is that request, callable directly (tests, scripts):

- generic: ``POST callout_url`` with ``{"seat", "number", "request_id"}``, signed
  ``X-EPPark-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` when the centre has
  a secret;
- TiNet: ``POST {callout_url}/callout`` (``callout_url`` is the OpenAPI's base, e.g.
  ``https://api-bj.clink.cn/cc``) with ``{"cno", "customerNumber", "requestUniqueId"}``
  and the OpenAPI v2 signed query (``AccessKeyId``, ``Expires``, ``Timestamp``,
  ``Signature``: ``eppark.calls.cti.tinet``).

A request that fails (no answer in time, an HTTP error, a refusal in the reply, TiNet's
legacy codes 8 seat does not exist, 9 seat not idle, 12 seat offline) marks the call
FAILED with a readable reason (``Call.failure``) and pushes it to the desk.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from eppark.accounts.scoping import may_act_on_lot
from eppark.calls.cti import generic, tinet
from eppark.calls.models import Call, CallCentre, CallDirection, CallState, Provider
from eppark.lots.models import Gate
from eppark.records.errors import Refused

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
"""A call centre that does not answer a callout this fast has failed it."""
MAX_FAILURE = 200


def centre_for_callouts() -> CallCentre | None:
    """The call centre that places callouts: the first with a callout address."""
    return CallCentre.objects.exclude(callout_url="").order_by("pk").first()


def place(gate: Gate, user: Any, seat: str) -> Call:
    """Record the callout; the request to the call centre is sent after it commits."""
    robot = getattr(gate, "robot", None)
    if robot is None or not robot.phone:
        raise Refused(_("This gate's robot has no SIM number to call."))
    centre = centre_for_callouts()
    if centre is None:
        raise Refused(_("No call centre is set up for callouts."))
    with transaction.atomic():
        call = Call.objects.create(
            centre=centre,
            request_id=uuid.uuid4().hex,
            direction=CallDirection.OUTBOUND,
            state=CallState.DIALING,
            caller=seat,
            callee=robot.phone,
            seat=seat,
            agent=user,
            robot=robot,
            lot_id=gate.lot_id,
            gate=gate,
            started_at=timezone.now(),
        )
    return call


def dial(gate: Gate, user: Any, seat: str = "", *, background: bool = True) -> Call:
    """``呼叫``: record the callout from ``user``'s seat and send it once recorded.

    The desk authorises the agent (``eppark.console.cases``); this refuses a lot the
    user does not serve all the same. ``background=False`` sends on the committing
    thread (tests); otherwise a thread of its own sends it.
    """
    if not may_act_on_lot(user, gate.lot_id):
        raise PermissionDenied
    if not seat:
        bound = getattr(user, "seat", None)
        seat = bound.number if bound is not None else ""
    if not seat:
        raise Refused(_("Bind a seat number first."))
    call = place(gate, user, seat)
    if background:
        transaction.on_commit(lambda: start_sending(call.pk))
    else:
        transaction.on_commit(lambda: send(call.pk))
    return call


def start_sending(call_id: int) -> threading.Thread:
    """Send the callout on a thread of its own (it ends within ``TIMEOUT``)."""
    thread = threading.Thread(
        target=_send_on_thread, args=(call_id,), name=f"callout-{call_id}", daemon=True
    )
    thread.start()
    return thread


def _send_on_thread(call_id: int) -> None:
    try:
        close_old_connections()
        send(call_id)
    except Exception:
        log.exception("callout %s could not be sent", call_id)
    finally:
        connection.close()  # this thread's own connection


@dataclass(frozen=True)
class Outgoing:
    """The HTTP request of one callout."""

    url: str
    params: dict[str, str]
    body: bytes
    headers: dict[str, str]


def request_for(centre: CallCentre, call: Call, now: datetime) -> Outgoing:
    """The request that asks ``centre`` to dial ``call``'s robot from its seat."""
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    if centre.provider == Provider.TINET:
        base = urlsplit(centre.callout_url)
        path = base.path.rstrip("/") + "/callout"
        url = base._replace(path=path, query="", fragment="").geturl()
        body = json.dumps(
            {"cno": call.seat, "customerNumber": call.callee, "requestUniqueId": call.request_id},
            ensure_ascii=False,
        ).encode()
        host = base.netloc.rpartition("@")[2]
        params = tinet.signed_params(centre.access_key_id, centre.secret, "POST", host, path, now)
        return Outgoing(url, params, body, json_type)
    body = generic.callout_body(call.seat, call.callee, call.request_id)
    headers = dict(json_type)
    if centre.secret:
        headers[generic.SIGNATURE_HEADER] = generic.signature(centre.secret, body)
    return Outgoing(centre.callout_url, {}, body, headers)


TINET_CODES = {
    8: gettext_lazy("the seat does not exist"),
    9: gettext_lazy("the seat is not idle"),
    12: gettext_lazy("the seat is offline"),
}
"""TiNet's legacy error codes for a callout."""


def _tinet_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def refusal(provider: str, status: int, reply: bytes) -> str:
    """Why the call centre refused the callout, or '' when it accepted it."""
    try:
        data: Any = json.loads(reply.decode("utf-8")) if reply.strip() else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict):
        code = _tinet_code(data.get("code"))
        if provider == Provider.TINET and code in TINET_CODES:
            return _("TiNet refused the call: %(reason)s (code %(code)s).") % {
                "reason": TINET_CODES[code],
                "code": code,
            }
        error = data.get("error")
        if isinstance(error, dict):
            detail = error.get("message") or error.get("code") or ""
            return _("The call centre refused the call: %(detail)s") % {"detail": str(detail)}
        if isinstance(error, str) and error:
            return _("The call centre refused the call: %(detail)s") % {"detail": error}
        if data.get("ok") is False or str(data.get("result", "")).lower() in ("error", "fail"):
            detail = data.get("description") or data.get("message") or ""
            return _("The call centre refused the call: %(detail)s") % {"detail": str(detail)}
    if not 200 <= status < 300:
        return _("The call centre answered HTTP %(status)s.") % {"status": status}
    return ""


def send(call_id: int, *, client: httpx.Client | None = None) -> Call:
    """Ask the call centre to dial the callout ``call_id``; a failure marks the call FAILED."""
    call = Call.objects.select_related("centre").get(pk=call_id)
    if call.state != CallState.DIALING:
        return call
    centre = call.centre
    outgoing = request_for(centre, call, timezone.now())
    reason = ""
    try:
        own = client is None
        http = client or httpx.Client(timeout=TIMEOUT)
        try:
            response = http.post(
                outgoing.url,
                params=outgoing.params or None,
                content=outgoing.body,
                headers=outgoing.headers,
            )
        finally:
            if own:
                http.close()
        reason = refusal(centre.provider, response.status_code, response.content[:4096])
    except httpx.TimeoutException:
        reason = _("The call centre did not answer in time.")
    except httpx.HTTPError as error:
        reason = _("The call centre could not be reached: %(error)s") % {
            "error": type(error).__name__
        }
    if reason:
        log.warning("callout %s failed: %s", call_id, reason)
        return fail(call_id, reason)
    return call


def fail(call_id: int, reason: str) -> Call:
    """Mark a callout still dialling as FAILED (``reason`` kept) and push it to the desk."""
    from eppark.calls.routing import announce

    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.state == CallState.DIALING:
            call.state = CallState.FAILED
            call.failure = reason[:MAX_FAILURE]
            call.ended_at = timezone.now()
            call.save(update_fields=["state", "failure", "ended_at"])
            announce(call)
    return call
