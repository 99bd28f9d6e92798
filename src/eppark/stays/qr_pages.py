"""What a driver's phone shows on opening a robot's QR code (``/q/<signed token>``).

Payments do not exist yet: the page says which lot and gate the code belongs
to, what it is for, and that paying by phone is coming, so the driver presses
the robot's call button. A later issue replaces this view with the payment
flow; the token format is ``eppark.stays.present.qr_url``'s. A forged,
damaged or expired token, or a visit that no longer exists, gets a friendly
page (400 / 404), never a debug page.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from eppark.domain.scenarios import Qr
from eppark.stays.models import GateVisit

# How long a QR code stays good after the robot showed it (seconds).
QR_MAX_AGE_S = 24 * 3600

PURPOSES = {
    Qr.UNPLATED_ENTRY: _("Register your unplated car's entry"),
    Qr.MONTHLY_RENEWAL: _("Renew your monthly pass"),
    Qr.TEMP_PAYMENT: _("Pay the parking fee"),
    Qr.UNPLATED_EXIT: _("Pay for your unplated car's stay"),
}


@never_cache
def qr_page(request: HttpRequest, token: str) -> HttpResponse:
    """The QR code's landing page (payments pending), or a friendly error page."""
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
    context = {"visit": visit, "purpose": PURPOSES[kind]}
    return render(request, "stays/qr_page.html", context)


def _error(request: HttpRequest, message: object, *, status: int = 400) -> HttpResponse:
    return render(request, "stays/qr_error.html", {"message": message}, status=status)
