"""``POST /cti/{provider}/{key}``: call-centre events (contracts.md).

A wrong provider or key: 404 and nothing changes. A missing or wrong signature
(when the integration has a secret): 401. A bad payload: 400 naming the field.
Otherwise 200 ``{"ok": true}``; an event sent again changes nothing, and a genuine
push about nothing EP Park follows (TiNet: a callout's ringing) is answered 200
``{"ok": true, "ignored": …}`` and changes nothing.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from eppark.calls import routing
from eppark.calls.cti import READERS
from eppark.calls.cti.events import BadEvent, BadSignature, Ignored
from eppark.calls.models import CallCentre
from eppark.devices.keys import key_digest

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


def request_headers(request: HttpRequest) -> CaseInsensitiveMapping[str]:
    """The request's headers (any case), plus its request line as HTTP/2-style pseudo-headers
    (``:method``, ``:authority``, ``:path``) for providers that sign it (TiNet); a client
    cannot send those names (``:`` is not allowed in a header name)."""
    return CaseInsensitiveMapping(
        {
            **dict(request.headers.items()),
            ":method": request.method or "",
            ":authority": request.get_host(),
            ":path": request.path,
        }
    )


def _refuse(status: int, error: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": error}, status=status)


@csrf_exempt
@require_POST
def cti_event(request: HttpRequest, provider: str, key: str) -> HttpResponse:
    """One event from a call centre."""
    reader = READERS.get(provider)
    centre = (
        CallCentre.objects.filter(provider=provider, key_digest=key_digest(key)).first()
        if reader is not None
        else None
    )
    if reader is None or centre is None:
        return _refuse(404, "unknown call centre")
    body = request.body
    if len(body) > MAX_BODY:
        return _refuse(413, "body too large")
    query = {name: request.GET.get(name, "") for name in request.GET}
    headers = request_headers(request)  # case-insensitive, with the request line
    try:
        event = reader(body, headers, query, centre.secret)
    except BadSignature as error:
        return _refuse(401, str(error))
    except BadEvent as error:
        return _refuse(400, str(error))
    except Ignored as error:  # genuine, but about nothing we follow: nothing changes
        return JsonResponse({"ok": True, "ignored": str(error)})
    payload = {"query": query, "body": body.decode("utf-8", "replace")[:4000]}
    routing.receive(centre, event, payload, timezone.now())
    return JsonResponse({"ok": True})
