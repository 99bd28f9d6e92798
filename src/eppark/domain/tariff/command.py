"""The JSON bodies of ``eppark fee`` and ``eppark fee describe``."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from eppark.domain.errors import BadInput
from eppark.domain.fields import join, obj, require, timestamp
from eppark.domain.tariff.fee import Payment, compute_fee
from eppark.domain.tariff.rule import TariffRule, money, parse_rule

_FEE_KEYS = ("rule", "entered_at", "at", "payments")


def fee_from_json(value: Any) -> dict[str, Any]:
    """``{"rule", "entered_at", "at", "payments"?}`` → ``{"total", "paid", "due", ...}``."""
    data = obj(value, "")
    for key in data:
        if key not in _FEE_KEYS:
            raise BadInput(str(key), f"is not a known field (known: {', '.join(_FEE_KEYS)})")
    rule = parse_rule_cached(require(data, "rule"))
    entered_at = timestamp(require(data, "entered_at"), "entered_at")
    at = timestamp(require(data, "at"), "at")
    payments = _payments(data.get("payments"), "payments")
    return compute_fee(rule, entered_at, at, payments).as_json()


def describe_from_json(value: Any) -> dict[str, Any]:
    """A RULE → ``{"text": ...}``."""
    return {"text": parse_rule_cached(value).plan.text}


def parse_rule_cached(value: Any) -> TariffRule:
    """``parse_rule`` memoised on the rule's canonical JSON: a stream reuses a lot's few rules."""
    try:
        key = json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return parse_rule(value, "rule")
    return _parse_canonical(key)


@lru_cache(maxsize=256)
def _parse_canonical(key: str) -> TariffRule:
    return parse_rule(json.loads(key), "rule")


def _payments(value: Any, path: str) -> list[Payment]:
    """The optional list of ``{"paid_at", "amount"}`` (absent or null: none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(path, "must be a list of payments")
    payments = []
    for k, item in enumerate(value):
        where = join(path, k)
        data = obj(item, where)
        for key in data:
            if key not in ("paid_at", "amount"):
                raise BadInput(join(where, str(key)), "is not a known field (paid_at, amount)")
        paid_at = timestamp(require(data, "paid_at", where), join(where, "paid_at"))
        amount = money(require(data, "amount", where), join(where, "amount"))
        payments.append(Payment(paid_at, amount))
    return payments
