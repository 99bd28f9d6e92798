"""Device-facing HTTP endpoints through Django (WSGI, tests): plate cameras push here.

``eppark serve`` answers these paths in ``eppark.devices.ingress`` without
Django's request machinery; both hand the push to ``eppark.devices.push``,
so they answer exactly alike.
"""

from __future__ import annotations

import time

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from eppark.devices import push
from eppark.devices.deadline import push_deadline_s
from eppark.devices.lpr.events import Reply


def _response(reply: Reply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)


@csrf_exempt
@require_POST
def lpr_push(request: HttpRequest, vendor: str, key: str, tail: str = "") -> HttpResponse:
    """A plate read or heartbeat from a camera of ``vendor`` configured with ``key``."""
    arrived_at, started = timezone.now(), time.monotonic()
    try:
        body = request.body
    except RequestDataTooBig:
        return _response(push.error(413, "payload too large"))
    return _response(
        push.receive_in_time(
            vendor,
            key,
            tail,
            request.META.get("CONTENT_TYPE", ""),
            body,
            {k: str(request.GET[k]) for k in request.GET},
            arrived_at=arrived_at,
            deadline=started + push_deadline_s(),
        )
    )
