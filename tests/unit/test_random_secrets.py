"""Secrets handed to people never start with "-" (a command line would read an option)."""

from __future__ import annotations

import secrets

import pytest

from eppark.devices import credentials, keys


def test_a_secret_drawn_with_a_leading_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-starts-with-a-dash", "_fine-one"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(drawn))
    assert keys.random_secret() == "_fine-one"


@pytest.mark.parametrize("make", [keys.new_key, credentials.new_password])
def test_keys_and_robot_passwords_never_start_with_a_dash(make) -> None:
    values = [make() for _ in range(2000)]  # about 31 would start with "-" if unchecked
    assert not [v for v in values if v.startswith("-")]
    assert all(len(v) >= 32 for v in values)
