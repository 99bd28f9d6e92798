"""``EPPARK_WECHATPAY_*``: what configures the adapter, and the clear errors when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from eppark.payments.providers.base import Provider
from eppark.payments.providers.wechat import DEFAULT_BASE_URL, WechatPay, from_environ
from eppark.sim.wechatpay import TestKeys, generate_keys, write_environ


@pytest.fixture(scope="module")
def keys() -> TestKeys:
    return generate_keys()


@pytest.fixture
def env(keys: TestKeys, tmp_path: Path) -> dict[str, str]:
    return write_environ(keys, tmp_path, "https://api.mch.weixin.qq.com")


def test_not_configured_without_a_merchant_number() -> None:
    assert from_environ({}) is None
    assert from_environ({"EPPARK_WECHATPAY_MCHID": "  "}) is None


def test_public_key_mode(env: dict[str, str], keys: TestKeys) -> None:
    del env["EPPARK_WECHATPAY_BASE_URL"]
    adapter = from_environ(env)
    assert isinstance(adapter, WechatPay)
    provider: Provider = adapter  # mypy checks that it speaks the interface exactly
    assert (provider.name, provider.channel) == ("wechat", "wechat")
    assert adapter.base_url == DEFAULT_BASE_URL
    assert adapter.keys.get(keys.platform.public_key_id) is not None
    assert adapter.keys.get(keys.platform.serial) is None


def test_certificate_mode(keys: TestKeys, tmp_path: Path) -> None:
    adapter = from_environ(write_environ(keys, tmp_path, "https://x.test", "certificate"))
    assert adapter is not None
    assert adapter.keys.get(keys.platform.serial) is not None
    assert adapter.keys.get(keys.platform.serial.lower()) is not None


@pytest.mark.parametrize("name", ["APPID", "APIV3_KEY", "PRIVATE_KEY_FILE", "CERT_SERIAL"])
def test_a_missing_variable_is_named(env: dict[str, str], name: str) -> None:
    del env[f"EPPARK_WECHATPAY_{name}"]
    with pytest.raises(ImproperlyConfigured, match=f"EPPARK_WECHATPAY_{name}"):
        from_environ(env)


def test_a_missing_or_bad_key_file_is_named(env: dict[str, str], tmp_path: Path) -> None:
    env["EPPARK_WECHATPAY_PRIVATE_KEY_FILE"] = str(tmp_path / "nowhere.pem")
    with pytest.raises(ImproperlyConfigured, match=r"PRIVATE_KEY_FILE.*nowhere.pem"):
        from_environ(env)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    env["EPPARK_WECHATPAY_PRIVATE_KEY_FILE"] = str(junk)
    with pytest.raises(ImproperlyConfigured, match=r"PRIVATE_KEY_FILE.*not an unencrypted PEM"):
        from_environ(env)
    env["EPPARK_WECHATPAY_PRIVATE_KEY_FILE"] = str(tmp_path / "apiclient_key.pem")
    env["EPPARK_WECHATPAY_PUBLIC_KEY_FILE"] = str(junk)
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_KEY_FILE"):
        from_environ(env)


def test_the_verifying_key_is_required(env: dict[str, str], tmp_path: Path) -> None:
    public_key_file = env.pop("EPPARK_WECHATPAY_PUBLIC_KEY_FILE")
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_KEY_FILE is required"):
        from_environ(env)
    del env["EPPARK_WECHATPAY_PUBLIC_KEY_ID"]
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_CERT_DIR"):
        from_environ(env)
    env["EPPARK_WECHATPAY_PUBLIC_KEY_FILE"] = public_key_file
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_KEY_ID is required"):
        from_environ(env)


def test_a_bad_certificate_folder_is_named(env: dict[str, str], tmp_path: Path) -> None:
    del env["EPPARK_WECHATPAY_PUBLIC_KEY_FILE"], env["EPPARK_WECHATPAY_PUBLIC_KEY_ID"]
    env["EPPARK_WECHATPAY_PLATFORM_CERT_DIR"] = str(tmp_path / "missing")
    with pytest.raises(ImproperlyConfigured, match=r"PLATFORM_CERT_DIR.*not a folder"):
        from_environ(env)
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "broken.pem").write_text("not a certificate")
    env["EPPARK_WECHATPAY_PLATFORM_CERT_DIR"] = str(folder)
    with pytest.raises(ImproperlyConfigured, match=r"PLATFORM_CERT_DIR.*broken.pem"):
        from_environ(env)


def test_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfigured, match="APIV3_KEY"):
        from_environ({**env, "EPPARK_WECHATPAY_APIV3_KEY": "short"})
    with pytest.raises(ImproperlyConfigured, match="BASE_URL"):
        from_environ({**env, "EPPARK_WECHATPAY_BASE_URL": "api.mch.weixin.qq.com"})
