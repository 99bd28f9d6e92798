"""Named actions on orders: each asks for a reason and leaves an audit entry.

An order's amount and state change only here or through payments (a provider's payment
settles it: ``eppark.payments.settle``; a refund goes through the provider first:
``eppark.payments.refunds``); the back office's change form shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from eppark.domain.order_states import may_move
from eppark.orders.models import Order, OrderState
from eppark.records.errors import Refused, required_reason
from eppark.records.history import record_baseline, stamp

PEOPLE_MAY = frozenset({OrderState.CLOSED, OrderState.REFUNDED})
"""A person closes an unpaid order or refunds a paid one; only a provider's payment pays."""


def move(order: Order, target: str, user: Any, reason: str) -> Order:
    """Put ``order`` into state ``target`` if the state machine allows; refused otherwise."""
    reason = required_reason(reason)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if target not in PEOPLE_MAY or not may_move(locked.state, target):
            raise Refused(
                _("An order that is “%(current)s” cannot become “%(target)s”.")
                % {"current": locked.get_state_display(), "target": OrderState(target).label}
            )
        record_baseline(locked, timezone.now())
        locked.state = target
        stamp(locked, user, reason)
        locked.save(update_fields=["state"])
    return locked


def refund(order: Order, user: Any, reason: str) -> Order:
    """Refund a paid order through its provider (``eppark.payments.refunds.refund``).

    The order as it stands afterwards: refunded, or still paid while the provider
    processes the refund. ``Refused`` (nothing changed but a failed refund's record)
    when it is not paid, the user may not, or the provider refuses.
    """
    from eppark.payments.refunds import refund as refund_through_provider

    refund_through_provider(order, user, reason)
    return Order.objects.get(pk=order.pk)
