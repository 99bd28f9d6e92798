"""``POST /payments/notify/<provider>/``: a provider's payment notification.

The provider verifies and reads it (``parse_notification``: signature,
freshness, shape), ``eppark.payments.settle.settle`` applies it to our order
once, and a ``Notification`` row records every one that arrives, believed or
not. The answer is the provider's own convention (``notification_reply``):

- a refused notification (bad or missing signature, stale or future timestamp,
  malformed, body over 64 KB) changes nothing but its log row and gets the
  provider's "failed, send again" answer (the sandbox: 400 ``FAIL``; 413 for an
  oversized body);
- a believed one is answered "received" whatever it did — paid, duplicate,
  unknown order, or a mismatch (flagged for review by ``settle``; resending
  would not change it, and it is ours to review);
- an unexpected failure of ours answers "send again" too, so nothing is lost.

Nothing here waits on anything slow: the provider's 5 s are spent on one
signature check and one locked update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from eppark.orders.models import Order
from eppark.payments import providers
from eppark.payments.models import Notification, Verdict
from eppark.payments.providers.base import NotificationRejected, Provider, Reply, TradeResult
from eppark.payments.settle import Settled, settle

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""The largest notification read (a real one is about 1 KB)."""


def provider_named(name: str) -> Provider | None:
    """The configured provider called ``name`` (either channel's, for the sandbox)."""
    for provider in providers.configured().values():
        if provider.name == name:
            return provider
    return None


@csrf_exempt
@require_POST
def notification(request: HttpRequest, provider: str) -> HttpResponse:
    """Verify, settle, record, answer (the Django view; ``eppark serve`` answers on the ingress)."""
    reply = handle(provider, request.headers, _body(request), timezone.now())
    if reply is None:
        raise Http404("no such payment provider")
    return _response(reply)


def handle(
    provider: str, headers: Mapping[str, str], body: bytes | None, now: datetime
) -> Reply | None:
    """One notification, start to finish; None for an unknown provider (404).

    ``body`` is None when it was larger than ``MAX_BODY``. Shared by the Django
    view and the device ingress (``eppark.devices.ingress``), which answers
    notifications on its worker threads as it answers camera pushes.
    """
    found = provider_named(provider)
    if found is None:
        return None
    if body is None:
        _record(found.name, now, Verdict.REJECTED, detail="body larger than 64 KB")
        reply = found.notification_reply(False)
        return Reply(413, reply.body, reply.content_type)
    try:
        result = found.parse_notification(headers, body, now)
    except NotificationRejected as exc:
        log.warning("%s notification refused: %s", found.name, exc)
        _record(found.name, now, Verdict.REJECTED, detail=str(exc))
        return found.notification_reply(False)
    try:
        settled = settle(result, provider=found.name, channel=_channel(result, found), now=now)
    except Exception:  # ours failed: the provider must send it again
        log.exception("%s notification of %s not settled", found.name, result.out_trade_no)
        return found.notification_reply(False)
    _record_settled(found.name, now, result, settled)
    return found.notification_reply(True)


def _body(request: HttpRequest) -> bytes | None:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        return None
    body = request.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _channel(result: TradeResult, provider: Provider) -> str:
    """The app the order was paid in: the one it was sent to, else the provider's."""
    sent = (
        Order.objects.filter(out_trade_no=result.out_trade_no)
        .values_list("channel", flat=True)
        .first()
    )
    return sent if sent in providers.CHANNELS else provider.channel


def _record_settled(name: str, now: datetime, result: TradeResult, settled: Settled) -> None:
    order = settled.order
    detail = ""
    if settled.verdict.value == Verdict.MISMATCH and order is not None:
        detail = order.review_note
    elif result.detail:
        detail = result.detail
    Notification.objects.create(
        provider=name,
        received_at=now,
        out_trade_no=result.out_trade_no[:64],
        transaction_id=result.transaction_id[:64],
        amount=result.amount,
        order=order,
        lot_id=order.lot_id if order is not None else None,
        verdict=Verdict(settled.verdict.value),
        detail=f"{result.state}: {detail}"[:256] if detail else str(result.state),
    )


def _record(name: str, now: datetime, verdict: Verdict, *, detail: str) -> None:
    Notification.objects.create(
        provider=name, received_at=now, verdict=verdict, detail=detail[:256]
    )


def _response(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
    response["Cache-Control"] = "no-store"
    return response
