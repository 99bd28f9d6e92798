"""Device-facing HTTP endpoints: plate cameras push reads and heartbeats here.

Paths are fixed by contracts.md (cameras are configured with them). The
secret key in the path names the camera; a wrong key is 404 and changes
nothing. A malformed payload is a 4xx with a JSON error, changes nothing, and
never tells the camera to open.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from eppark.devices import outbox
from eppark.devices.lpr import ADAPTERS, BadPayload, Heartbeat, HttpPush
from eppark.devices.models import Camera
from eppark.stays.gate_loop import GateNotLinked, handle_plate_read

log = logging.getLogger(__name__)
ONLINE_REFRESH = timedelta(seconds=10)
"""A camera's last-heard time is written at most this often (not on every push)."""


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse(
        {"error": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )


@csrf_exempt
@require_POST
def lpr_push(request: HttpRequest, vendor: str, key: str, tail: str = "") -> HttpResponse:
    """A plate read or heartbeat from a camera of ``vendor`` configured with ``key``."""
    if vendor not in ADAPTERS or (vendor == "dahua") != bool(tail):
        raise Http404
    camera = (
        Camera.objects.select_related("gate__lot", "gate__robot", "lot")
        .filter(vendor=vendor, key=key)
        .first()
    )
    if camera is None:
        raise Http404
    adapter = ADAPTERS[vendor]  # type: ignore[index]
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "payload too large")
    push = HttpPush(
        content_type=request.META.get("CONTENT_TYPE", ""),
        body=body,
        query={k: str(request.GET[k]) for k in request.GET},
        path=tail,
    )
    try:
        event = adapter.parse(push, tz=ZoneInfo(camera.lot.timezone))
    except BadPayload as exc:
        log.info("camera %s sent a bad payload: %s", camera.pk, exc)
        return _error(400, str(exc))
    if camera.serial and event.serial and event.serial != camera.serial:
        return _error(400, f"serial {event.serial!r} is not this key's camera")
    now = timezone.now()
    seen = camera.last_heartbeat_at
    if not camera.online or seen is None or now - seen > ONLINE_REFRESH:
        Camera.objects.filter(pk=camera.pk).update(online=True, last_heartbeat_at=now)
    opens = False
    if isinstance(event, Heartbeat):
        if vendor == "vzenith":  # comet: a queued open rides on the heartbeat reply
            opens = outbox.take_reply_open(camera, now) is not None
    else:
        try:
            outcome = handle_plate_read(camera, event, now)
        except GateNotLinked:
            return _error(409, "this camera is not linked to a gate yet")
        opens = outcome.open
        if not opens and adapter.opens_by_reply and not event.offline:
            opens = outbox.take_reply_open(camera, now) is not None
    reply = adapter.reply(event, open=opens)
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
