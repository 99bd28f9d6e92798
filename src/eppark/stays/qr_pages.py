"""What a driver's phone shows on opening a robot's QR code (``/q/<signed token>``).

The token (``eppark.stays.present.qr_url``: ``django.core.signing``, salt
``eppark.qr``) names the QR's purpose (``eppark.domain.scenarios.Qr``) and the
gate visit it was shown for; this checks it and hands the visit to its flow
(``eppark.payments.pages.qr``): unplated entry and exit, temp quick-pay,
monthly renewal. A token is good for ``QR_MAX_AGE_S`` after the robot showed
it: as long as a car counts as waiting at a gate
(``eppark.stays.let_through.STILL_WAITING``). A forged, damaged or expired
token, or a visit that no longer exists, gets a friendly page (400 / 404),
never a debug page; so does a token whose car has already left (410).
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from eppark.domain.scenarios import Qr
from eppark.stays.let_through import STILL_WAITING
from eppark.stays.models import GateVisit

QR_MAX_AGE_S = int(STILL_WAITING.total_seconds())
"""How long a QR code stays good after the robot showed it (seconds): 30 minutes."""


@never_cache
def qr_page(request: HttpRequest, token: str) -> HttpResponse:
    """The QR code's page for its visit, or a friendly error page."""
    from eppark.payments.pages import qr as flows

    try:
        claim = signing.loads(token, salt="eppark.qr", max_age=QR_MAX_AGE_S)
        kind, visit_id = Qr(claim["k"]), int(claim["v"])
    except signing.SignatureExpired:
        return _error(request, _("This QR code has expired. Scan the code on the robot again."))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return _error(request, _("This QR code is not valid. Scan the code on the robot again."))
    visit = GateVisit.objects.select_related("gate", "lot").filter(pk=visit_id).first()
    if visit is None:
        return _error(request, _("This visit is no longer on record."), status=404)
    return flows.serve(request, kind, visit)


def _error(request: HttpRequest, message: object, *, status: int = 400) -> HttpResponse:
    context = {"title": _("QR code"), "text": message, "call_hint": True, "tone": "notice"}
    return render(request, "payments/pages/message.html", context, status=status)
