"""Checkout: sending an order to a provider, confirming it by query, closing it.

The phone pages (``立即支付``), the result page and the payments worker use
these; the provider is any ``Provider`` (the sandbox, WeChat Pay, Alipay).

- ``start_page_payment``: the order (created or paying, not expired) becomes a
  ``Charge`` (a description like ``彩科彩悦大厦 停车费 粤B12345``, the order's
  expiry, our notification URL) and goes to the provider's page payment; the
  order is then ``paying`` with the provider and channel recorded. A provider
  that cannot be reached leaves the order as it was and raises
  ``PaymentUnavailable`` (a ``Refused`` whose message the page shows).
- ``confirm_by_query``: an order in ``paying`` whose provider says SUCCESS is
  settled (``eppark.payments.settle``) without waiting for the notification —
  the result page when the phone comes back from the cashier, and the job that
  looks at orders stuck in paying.
- ``close_order``: closes the trade at the provider (if it was sent), then ours.
  A trade the provider reports paid is settled instead of closed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from eppark.domain import order_states
from eppark.evidence.links import public_url
from eppark.orders.models import Order, OrderKind, OrderState
from eppark.payments import providers
from eppark.payments.providers import base
from eppark.payments.providers.base import Charge, PagePayment, Provider, TradeState
from eppark.payments.settle import Settled, settle
from eppark.records.errors import Refused

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 127


class PaymentUnavailable(Refused):
    """The provider could not be reached or failed: nothing changed; try again later."""


def notify_url(provider_name: str) -> str:
    """Where ``provider_name`` sends its payment notifications (absolute, no query)."""
    return public_url() + reverse("payments:notify", args=[provider_name])


def description(order: Order) -> str:
    """What the payer's app shows for the order (≤ 127 characters)."""
    lot = order.lot.name
    if order.kind == OrderKind.MONTHLY:
        months = order.months or 1
        text = f"{lot} 月卡续费 {months}个月"
        if order.plate:
            text += f" {order.plate}"
    else:
        text = f"{lot} 停车费"
        if order.plate:
            text += f" {order.plate}"
    return text[:DESCRIPTION_MAX]


def charge_for(order: Order, provider: Provider) -> Charge:
    """The ``Charge`` that asks ``provider`` for ``order``'s amount."""
    if order.expires_at is None:
        raise Refused(_("This order can no longer be paid. Please scan the code again."))
    return Charge(
        out_trade_no=order.out_trade_no,
        amount=order.amount,
        description=description(order),
        expires_at=order.expires_at,
        notify_url=notify_url(provider.name),
        attach=order.kind,
    )


def start_page_payment(
    order: Order, provider: Provider, *, payer: str = "", return_url: str, now: datetime
) -> PagePayment:
    """Send ``order`` to ``provider``'s page payment; the order is then ``paying``."""
    order_in = order
    order = Order.objects.select_related("lot").get(pk=order.pk)
    _check_payable(order, now)
    charge = charge_for(order, provider)
    try:
        page = provider.page_payment(charge, payer=payer, return_url=return_url)
    except base.ProviderError as exc:
        log.warning("%s page payment of %s failed: %s", provider.name, order.out_trade_no, exc)
        raise PaymentUnavailable(
            _("The payment service is unavailable right now. Please try again later.")
        ) from exc
    except base.Refused as exc:
        log.warning("%s refused page payment of %s: %s", provider.name, order.out_trade_no, exc)
        raise Refused(
            _("This order cannot be paid now. Please scan the code on the robot again.")
        ) from exc
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state in order_states.OPEN:
            locked.state = OrderState.PAYING
            locked.provider = provider.name
            locked.channel = provider.channel
            fields = ["state", "provider", "channel"]
            if payer and not locked.payer:
                locked.payer = payer[:128]
                fields.append("payer")
            locked.save(update_fields=fields)
            for name in fields:  # the caller's copy shows it too
                setattr(order_in, name, getattr(locked, name))
    return page


def _check_payable(order: Order, now: datetime) -> None:
    if order.state == OrderState.PAID:
        raise Refused(_("This order has already been paid."))
    if order.state not in order_states.OPEN:
        raise Refused(_("This order can no longer be paid. Please scan the code again."))
    if order.expires_at is None or order.expires_at <= now:
        raise Refused(_("This order has expired. Please scan the code again."))


def confirm_by_query(order: Order, now: datetime) -> Settled | None:
    """Ask the provider of an order in ``paying``; settle it if paid. None otherwise."""
    order = Order.objects.get(pk=order.pk)
    if order.state != OrderState.PAYING or not order.provider:
        return None
    provider = _provider_of(order)
    if provider is None:
        return None
    try:
        result = provider.query(order.out_trade_no)
    except (base.ProviderError, base.Refused) as exc:
        log.info("query of %s at %s failed: %s", order.out_trade_no, provider.name, exc)
        return None
    if result.state != TradeState.SUCCESS:
        return None
    return settle(result, provider=provider.name, channel=provider.channel, now=now)


def close_order(order: Order, now: datetime) -> bool:
    """Close ``order`` at its provider (if it was sent there), then ours.

    True when the order is closed. False when it could not be: the provider is
    unreachable (try again later), or the trade turned out to be paid (it is
    settled instead).
    """
    order = Order.objects.get(pk=order.pk)
    if order.state not in order_states.OPEN:
        return order.state == OrderState.CLOSED
    if order.state == OrderState.PAYING and order.provider:
        provider = _provider_of(order)
        if provider is not None:
            try:
                provider.close(order.out_trade_no)
            except base.ProviderError as exc:
                log.info("closing %s at %s failed: %s", order.out_trade_no, provider.name, exc)
                return False
            except base.Refused:
                # paid after all (or the provider will not close it): settle by its word
                confirm_by_query(order, now)
                order.refresh_from_db()
                if order.state not in order_states.OPEN:
                    return order.state == OrderState.CLOSED
                return False
    with transaction.atomic():
        closed = Order.objects.filter(pk=order.pk, state__in=order_states.OPEN).update(
            state=OrderState.CLOSED, closed_at=now
        )
    return bool(closed)


def _provider_of(order: Order) -> Provider | None:
    try:
        return providers.by_name(order.provider, order.channel)
    except providers.NoProvider:
        log.warning(
            "order %s was sent to %s/%s, which is not configured",
            order.out_trade_no,
            order.provider,
            order.channel,
        )
        return None
