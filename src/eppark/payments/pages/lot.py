"""``/lot/<lot code>/``: pay inside the lot before walking to the car (场内预付).

A QR code printed in the lot's lobby encodes this page (public: no token). The
driver types a plate (normalised: ``粤b·12345`` → ``粤B12345``; an unplated car's
temporary plate ``临000001`` works too), sees the time parked and the fee, pays,
and then leaves within the tariff's exit grace (``exit_grace_minutes``, 15 by
default); after it, charging resumes.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache

from eppark.domain import billing
from eppark.domain.plates import classify, normalize
from eppark.lots.models import Lot
from eppark.payments.pages import common


def clean_plate(text: str) -> str | None:
    """The plate as typed, normalised; None when it is not a plate."""
    plate = normalize(text.strip())
    if not plate:
        return None
    if classify(plate) is None and not billing.is_temp_plate(plate):
        return None
    return plate


@never_cache
def lot_page(request: HttpRequest, code: str) -> HttpResponse:
    """The lot's pay page: plate → time parked and fee → ``立即支付``."""
    lot = Lot.objects.filter(code=code).first()
    if lot is None:
        return common.message(
            request,
            pgettext("driver", "Unknown car park"),
            pgettext("driver", "This car park is not on record."),
            status=404,
        )
    context = {"lot": lot, "grace": common.grace_minutes(lot), "tariff_text": lot.tariff_text}
    if request.method != "POST":
        return common.page(request, "lot.html", context)
    typed = str(request.POST.get("plate", ""))
    plate = clean_plate(typed)
    if plate is None:
        context.update(
            error=pgettext("driver", "Please enter a valid plate number, e.g. 粤B12345."),
            plate=typed,
        )
        return common.page(request, "lot.html", context, status=400)
    now = common.now()
    stay = common.open_stay(lot.pk, plate)
    if stay is None:
        context.update(
            error=pgettext(
                "driver", "No car with plate %(plate)s is parked here now: check the plate."
            )
            % {"plate": plate},
            plate=plate,
        )
        return common.page(request, "lot.html", context, status=404)
    if str(request.POST.get("step", "")) == "pay":
        return common.pay_stay(request, stay, now, visit=None, payer="", back=request.path)
    bill = common.bill_context(stay, now, plate)
    bill.update(hidden={"plate": plate}, at_gate=False)
    return common.page(request, "bill.html", bill)
