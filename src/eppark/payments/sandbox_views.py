"""The sandbox's cashier page (``/sandbox/cashier/<token>/``), served by the project.

It stands in for WeChat Pay's and Alipay's own payment screens while no real
provider is configured (404 otherwise). The page shows the amount (``¥5.00``),
what it pays for, and two buttons: ``确认支付`` pays the trade (the sandbox
then sends its signed notifications, twice) and ``取消支付`` leaves it unpaid;
both return the phone to our result page (the ``return`` parameter, a path on
this site). A forged token, an unknown, closed or expired trade gets a clear
page, never an error; confirming an already paid trade pays nothing twice.
"""

from __future__ import annotations

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from eppark.payments import providers
from eppark.payments.models import SandboxTrade
from eppark.payments.providers import sandbox
from eppark.payments.providers.base import Refused, TradeState
from eppark.records.display import yuan

CHANNEL_NAMES = {"wechat": _("WeChat Pay"), "alipay": _("Alipay")}


@never_cache
@require_http_methods(["GET", "POST"])
def cashier(request: HttpRequest, token: str) -> HttpResponse:
    """Show the trade and its two buttons (GET), or confirm / cancel it (POST)."""
    if not providers.sandbox_on():
        raise Http404("the sandbox is off")
    try:
        out_trade_no, _channel = sandbox.read_cashier_token(token)
    except signing.BadSignature:
        return _page(request, _("This payment link is not valid."), status=400)
    back = _return_url(request)
    trade = sandbox.cashier_trade(out_trade_no)
    if trade is None:
        return _page(request, _("This payment is not on record."), back=back, status=404)
    now = timezone.now()
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "confirm":
            try:
                trade = sandbox.pay_at_cashier(out_trade_no, payer=trade.payer, now=now)
            except sandbox.CashierClosed:
                trade.refresh_from_db()
                return _closed(request, trade, back, now)
            if back:
                return HttpResponseRedirect(back)
            return _page(request, _("Paid successfully"), trade=trade, paid=True)
        if action == "cancel":
            if back:
                return HttpResponseRedirect(back)
            return _page(request, _("Payment cancelled. You can close this page."), trade=trade)
        return _page(request, _("Please use the buttons on the page."), back=back, status=400)
    if trade.state != TradeState.NOTPAY or _expired(trade, now):
        return _closed(request, trade, back, now)
    context = {
        "trade": trade,
        "amount": yuan(trade.amount),
        "channel": CHANNEL_NAMES.get(trade.channel, trade.channel),
        "back": back,
    }
    return render(request, "payments/sandbox/cashier.html", context)


def _return_url(request: HttpRequest) -> str:
    value = request.POST.get("return") if request.method == "POST" else None
    if value is None:
        value = request.GET.get("return", "")
    try:
        return sandbox.safe_return_url(value)
    except Refused:
        return ""


def _expired(trade: SandboxTrade, now: object) -> bool:
    return trade.expires_at is not None and trade.expires_at <= now  # type: ignore[operator]


def _closed(request: HttpRequest, trade: SandboxTrade, back: str, now: object) -> HttpResponse:
    if trade.state in (TradeState.SUCCESS, TradeState.REFUND):
        return _page(
            request, _("This payment has already been made."), trade=trade, back=back, paid=True
        )
    if trade.state == TradeState.NOTPAY and _expired(trade, now):
        message = _("This payment has expired. Please scan the code again.")
    elif trade.state in (TradeState.USERPAYING, TradeState.PAYERROR):
        message = _("This payment is being made with a payment code, not on this page.")
    else:
        message = _("This payment has been closed. Please scan the code again.")
    return _page(request, message, trade=trade, back=back, status=410)


def _page(
    request: HttpRequest,
    message: object,
    *,
    trade: SandboxTrade | None = None,
    back: str = "",
    paid: bool = False,
    status: int = 200,
) -> HttpResponse:
    context = {
        "message": message,
        "trade": trade,
        "amount": yuan(trade.amount) if trade is not None else "",
        "back": back,
        "paid": paid,
    }
    return render(request, "payments/sandbox/message.html", context, status=status)
