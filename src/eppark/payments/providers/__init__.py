"""The configured payment providers, by name and by the app a driver pays in.

A real provider is configured from the environment (``EPPARK_WECHATPAY_*``,
``EPPARK_ALIPAY_*``; docs/payments.md). With none configured, the sandbox
plays both WeChat Pay and Alipay (the demo, the tests); once any real provider
is configured the sandbox is off, and a channel without a provider is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from eppark.domain.billing import ALIPAY, WECHAT, payment_code_channel
from eppark.payments.providers.base import Provider

CHANNELS = (WECHAT, ALIPAY)


class NoProvider(Exception):
    """No provider takes payments in this app."""


@cache
def configured() -> dict[str, Provider]:
    """The providers in use, by channel (``wechat``, ``alipay``)."""
    return _build(os.environ)


def _build(env: Mapping[str, str]) -> dict[str, Provider]:
    from eppark.payments.providers.alipay import from_environ as alipay_from_environ
    from eppark.payments.providers.wechat import from_environ as wechat_from_environ

    real: dict[str, Provider] = {}
    wechat_provider = wechat_from_environ(env)
    if wechat_provider is not None:
        real[WECHAT] = wechat_provider
    alipay_provider = alipay_from_environ(env)
    if alipay_provider is not None:
        real[ALIPAY] = alipay_provider
    if real:
        return real
    from eppark.payments.providers.sandbox import Sandbox

    return {channel: Sandbox(channel) for channel in CHANNELS}


def sandbox_on() -> bool:
    """Whether payments go to the sandbox (no real provider configured)."""
    return all(p.name == "sandbox" for p in configured().values())


def for_channel(channel: str) -> Provider:
    """The provider that takes payments in ``channel``'s app; ``NoProvider`` if none does."""
    provider = configured().get(channel)
    if provider is None:
        raise NoProvider(channel)
    return provider


def for_code(code: str) -> Provider | None:
    """The provider of a payment code (by its prefix); None if it is not a payment code."""
    channel = payment_code_channel(code)
    if channel is None:
        return None
    return configured().get(channel)


def by_name(name: str, channel: str) -> Provider:
    """The provider an order was paid through (``order.provider``, ``order.channel``)."""
    provider = for_channel(channel)
    if provider.name != name:
        raise NoProvider(f"{name}/{channel}")
    return provider


def for_page(user_agent: str) -> Provider:
    """The provider for a phone page: WeChat inside WeChat, Alipay inside Alipay, else the first."""
    providers = configured()
    if "MicroMessenger" in user_agent and WECHAT in providers:
        return providers[WECHAT]
    if "AlipayClient" in user_agent and ALIPAY in providers:
        return providers[ALIPAY]
    for channel in CHANNELS:
        if channel in providers:
            return providers[channel]
    raise NoProvider("page")
