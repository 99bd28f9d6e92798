"""Refunds asked from the back office: the provider gives the money back, the order follows.

``refund(order, user, reason)``: a paid order, a person who may act on its lot
(an operator of the lot or an admin; agents may not), a reason. A ``Refund``
row is written first (its own ``out_refund_no``, the person, the reason), then

- an order paid through a provider: ``provider.refund`` for the order's
  provider and channel;
- an order paid in cash or waived by an agent (or with no provider on record):
  no provider call, the money is handed back outside the system;

and then

- the refund succeeded → the order becomes refunded through the audited path
  (``orders.actions.move``: its history says who and why);
- the provider is still processing it → the refund stays REQUESTED and the
  order paid; it is settled by asking the provider again under the same
  refund number (``recheck``: the refunds list's 查询退款结果, and every day's
  reconciliation run, ``recheck_pending``), or when the provider's bill shows
  the trade refunded (``confirm_pending``);
- the provider refused or could not be reached → the refund is FAILED with
  the provider's words, the order is unchanged, and the person is told why
  (``Refused``). A refund whose call errored but went through after all shows
  up in the reconciliation as "states differ".

Only full refunds: the whole paid amount goes back at once (the back office
asks for no amount; ``amount`` other than the paid amount is refused).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from eppark.accounts.scoping import may_act_on_lot
from eppark.orders import actions
from eppark.orders.models import Channel, Order, OrderState
from eppark.payments.models import Refund, RefundState
from eppark.payments.providers.base import ProviderError
from eppark.payments.providers.base import Refused as ProviderRefused
from eppark.records.errors import Refused, required_reason

log = logging.getLogger(__name__)

OFFLINE_CHANNELS = frozenset({Channel.CASH, Channel.AGENT, ""})
"""Orders whose money no provider holds: a refund calls no provider."""
RECHECK_AFTER = timedelta(minutes=5)
"""A refund still processing this long is asked about again (``recheck_pending``)."""


def may_refund(user: Any, order: Order) -> bool:
    """Whether ``user`` may refund ``order``: changes orders, and serves its lot."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user.has_perm("orders.change_order")
        and may_act_on_lot(user, order.lot_id)
    )


def refund(
    order: Order, user: Any, reason: str, amount: int | None = None, *, now: datetime | None = None
) -> Refund:
    """Give back what ``order`` was paid (see the module's note); the ``Refund`` row."""
    reason = required_reason(reason)
    now = now or timezone.now()
    if not may_refund(user, order):
        raise Refused(_("You may not refund orders of this lot."))
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state != OrderState.PAID:
            raise Refused(
                _("An order that is “%(current)s” cannot become “%(target)s”.")
                % {"current": locked.get_state_display(), "target": OrderState.REFUNDED.label}
            )
        paid = locked.paid_amount if locked.paid_amount is not None else locked.amount
        if amount is not None and amount != paid:
            raise Refused(
                _("Only the whole paid amount (%(paid)s) can be refunded.") % {"paid": _yuan(paid)}
            )
        if locked.refunds.filter(state=RefundState.REQUESTED).exists():
            raise Refused(_("A refund of this order is already being processed."))
        row = Refund.objects.create(
            order=locked,
            lot_id=locked.lot_id,
            out_refund_no=_refund_number(locked),
            amount=paid,
            reason=reason,
            requested_by=user,
        )
    if locked.channel in OFFLINE_CHANNELS or not locked.provider:
        return _succeeded(row, locked, now, refund_id="", detail=_offline_detail(locked))
    return _ask_provider(row, locked, paid, now)


def _ask_provider(
    row: Refund, order: Order, paid: int, now: datetime, *, again: bool = False
) -> Refund:
    """Ask the order's provider for ``row`` (``again``: a refund already asked, re-asked
    under the same number, which the providers answer idempotently)."""
    from eppark.payments.providers import NoProvider, by_name

    try:
        provider = by_name(order.provider, order.channel)
        result = provider.refund(order.out_trade_no, row.out_refund_no, paid, paid, row.reason)
    except NoProvider:
        why = _("No payment provider is configured for %(channel)s.") % {
            "channel": order.get_channel_display()
        }
        if again:
            raise Refused(why) from None
        raise _failed(row, now, why) from None
    except ProviderRefused as refused:
        why = _("The provider refused the refund: %(why)s") % {"why": refused}
        raise _failed(row, now, why) from None
    except ProviderError as error:
        why = _("The provider could not be reached: %(why)s") % {"why": error}
        if again:  # still unknown: the refund stays requested
            raise Refused(why) from None
        raise _failed(row, now, why) from None
    except Exception:
        log.exception("refund %s of %s: unexpected error", row.out_refund_no, order.out_trade_no)
        why = _("The provider could not be reached: %(why)s") % {"why": "unexpected error"}
        if again:
            raise Refused(why) from None
        raise _failed(row, now, why) from None
    if result.succeeded:
        return _succeeded(row, order, now, refund_id=result.refund_id, detail=result.detail)
    row.provider_refund_id = result.refund_id[:64]
    row.detail = (result.detail or _("the provider is processing the refund"))[:256]
    row.save(update_fields=["provider_refund_id", "detail"])
    log.info("refund %s of %s is processing", row.out_refund_no, order.out_trade_no)
    return row


def recheck(row: Refund, now: datetime | None = None) -> Refund:
    """Ask the provider again about a refund still processing (the same refund number:
    the providers answer with its state and never refund twice). ``Refused`` when the
    provider cannot tell yet; a refusal fails the refund."""
    now = now or timezone.now()
    row = Refund.objects.select_related("order", "requested_by").get(pk=row.pk)
    if row.state != RefundState.REQUESTED:
        return row
    order = row.order
    if order.channel in OFFLINE_CHANNELS or not order.provider:
        return row
    return _ask_provider(row, order, row.amount, now, again=True)


def recheck_pending(now: datetime, older_than: timedelta = RECHECK_AFTER) -> int:
    """Re-ask the provider about every refund processing for longer than ``older_than``;
    the number now settled (succeeded or failed)."""
    settled = 0
    for row in Refund.objects.filter(
        state=RefundState.REQUESTED, created_at__lte=now - older_than
    ).order_by("pk"):
        try:
            done = recheck(row, now)
        except Refused:
            done = Refund.objects.get(pk=row.pk)
        if done.state != RefundState.REQUESTED:
            settled += 1
    return settled


def _succeeded(row: Refund, order: Order, now: datetime, *, refund_id: str, detail: str) -> Refund:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state == OrderState.PAID:
            actions.move(locked, OrderState.REFUNDED, row.requested_by, row.reason)
        row.state = RefundState.SUCCEEDED
        row.finished_at = now
        row.provider_refund_id = refund_id[:64]
        row.detail = detail[:256]
        row.save(update_fields=["state", "finished_at", "provider_refund_id", "detail"])
    log.info("refund %s of %s succeeded", row.out_refund_no, order.out_trade_no)
    return row


def _failed(row: Refund, now: datetime, why: str) -> Refused:
    row.state = RefundState.FAILED
    row.finished_at = now
    row.detail = why[:256]
    row.save(update_fields=["state", "finished_at", "detail"])
    log.warning("refund %s failed: %s", row.out_refund_no, why)
    return Refused(why)


def confirm_pending(out_trade_nos: Iterable[str], now: datetime, *, source: str) -> int:
    """Refunds still processing of these trades, which the provider reports refunded: done.

    The order becomes refunded in the name of the person who asked, with their
    reason and where the confirmation came from. The number confirmed.
    """
    confirmed = 0
    pending = Refund.objects.filter(
        order__out_trade_no__in=list(out_trade_nos), state=RefundState.REQUESTED
    ).select_related("order", "requested_by")
    for row in pending:
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=row.order_id)
            if order.state == OrderState.PAID:
                reason = f"{row.reason} ({source})"[:256]
                actions.move(order, OrderState.REFUNDED, row.requested_by, reason)
            row.state = RefundState.SUCCEEDED
            row.finished_at = now
            row.detail = (_("confirmed by %(source)s") % {"source": source})[:256]
            row.save(update_fields=["state", "finished_at", "detail"])
        confirmed += 1
    return confirmed


def _refund_number(order: Order) -> str:
    """``R`` + the trade number + a sequence: unique, and the same trade's refunds sort together."""
    sequence = order.refunds.count() + 1
    return f"R{order.out_trade_no}-{sequence:02d}"


def _offline_detail(order: Order) -> str:
    how = order.get_channel_display() if order.channel else _("no payment channel on record")
    return _("handed back outside the payment providers (%(how)s)") % {"how": how}


def _yuan(fen: int) -> str:
    from eppark.records.display import yuan

    return yuan(fen)
