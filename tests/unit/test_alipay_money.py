"""Alipay's yuan amounts and our fen: exact both ways (no floating point anywhere)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from eppark.payments.providers.alipay import sign_content, to_fen, to_yuan


@given(st.integers(min_value=0, max_value=10**13 - 1))
def test_fen_to_yuan_and_back_is_exact(fen: int) -> None:
    yuan = to_yuan(fen)
    assert to_fen(yuan) == fen
    assert Decimal(yuan) * 100 == fen
    assert len(yuan.partition(".")[2]) == 2


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["", ".0", ".5", ".05", ".50"]))
def test_short_yuan_amounts_read_exactly(whole: int, cents: str) -> None:
    assert to_fen(f"{whole}{cents}") == int(Decimal(f"{whole}{cents or '.0'}") * 100)


def test_request_sign_content_sorts_and_skips_empty_values_and_sign() -> None:
    params = {"sign": "x", "b": "2", "a": "1", "notify_url": "", "sign_type": "RSA2"}
    assert sign_content(params) == "a=1&b=2&sign_type=RSA2"
