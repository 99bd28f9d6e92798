"""No public or derivable key outside the demo and the tests; ``check --deploy`` is clean.

Settings are read once per process, so each case runs ``eppark`` in a process of
its own with exactly the environment it names (no pytest variables: the test
suite's fixed key must not leak into what is checked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from eppark.devices.credentials import demo_robot_password, gateway_password, verify_password

OLD_PUBLIC_KEY = "eppark-demo-only-not-secret"  # the built-in key the code used to fall back to


def eppark(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        capture_output=True,
        check=False,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env},
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def production_env(var_dir: Path) -> dict[str, str]:
    return {
        "EPPARK_VAR_DIR": str(var_dir),
        "EPPARK_SECRET_KEY": secrets.token_urlsafe(50),
        "EPPARK_PUBLIC_URL": "https://park.example.com",
        "EPPARK_TRUST_X_FORWARDED_PROTO": "1",
    }


def test_debug_alone_no_longer_falls_back_to_a_built_in_key(tmp_path: Path) -> None:
    done = eppark("check", env={"EPPARK_VAR_DIR": str(tmp_path), "EPPARK_DEBUG": "1"})
    assert done.returncode == 2
    assert done.stderr.startswith("eppark: configuration error: EPPARK_SECRET_KEY is not set")
    assert done.stderr.count("\n") == 1


def test_check_deploy_with_production_settings_is_clean(tmp_path: Path) -> None:
    done = eppark("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stderr + done.stdout


def test_production_https_settings_from_the_environment(tmp_path: Path) -> None:
    env = production_env(tmp_path) | {"EPPARK_HSTS_SECONDS": "600"}
    code = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS, s.SECURE_REDIRECT_EXEMPT)"
    )
    done = eppark("shell", "-c", code, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        "True True True 600 ('HTTP_X_FORWARDED_PROTO', 'https') "
        "['https://park.example.com'] ['^devices/', '^cti/']"
    )


def test_the_demo_generates_a_random_key_once_and_other_commands_reuse_it(tmp_path: Path) -> None:
    env = {"EPPARK_VAR_DIR": str(tmp_path)}
    done = eppark("demo", "--no-serve", env=env)
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "secret-key"
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert key != OLD_PUBLIC_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # No variables: commands on the demo's database find its key.
    state = eppark("robot-state", "EP-0001", env=env)
    assert state.returncode == 0, state.stderr
    assert '"online"' in state.stdout
    again = eppark("demo", "--no-serve", env=env)
    assert again.returncode == 0, again.stderr
    assert key_file.read_text().strip() == key

    # The demo's robots' passwords come from that key, not from anything public.
    with sqlite3.connect(tmp_path / "eppark.sqlite3") as db:
        (hashed,) = db.execute(
            "SELECT mqtt_password_hash FROM devices_robot WHERE code = 'EP-0001'"
        ).fetchone()
    assert verify_password(_derived(key, "robot:EP-0001"), hashed)
    assert not verify_password(_derived(OLD_PUBLIC_KEY, "robot:EP-0001"), hashed)

    # Another database is not the demo's: its key is not used there.
    elsewhere = eppark("check", env=env | {"DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"})
    assert elsewhere.returncode == 2
    assert "EPPARK_SECRET_KEY is not set" in elsewhere.stderr


def test_the_demo_runs_without_debug_pages(tmp_path: Path) -> None:
    code = "from django.conf import settings as s; print('DEBUG', s.DEBUG)"
    done = eppark("shell", "-c", code, env={"EPPARK_VAR_DIR": str(tmp_path), "EPPARK_DEMO": "1"})
    assert done.returncode == 0, done.stderr
    assert "DEBUG False" in done.stdout


def test_serve_without_the_gateway_password_stops_with_a_configuration_error(
    tmp_path: Path,
) -> None:
    env = production_env(tmp_path) | {"EPPARK_SSL_REDIRECT": "0"}
    done = eppark("serve", "--port", "0", env=env, timeout=60)
    assert done.returncode == 2
    assert "configuration error: EPPARK_MQTT_GATEWAY_PASSWORD is not set" in done.stderr
    assert "Serving on" not in done.stdout


@pytest.fixture
def no_gateway_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EPPARK_MQTT_GATEWAY_PASSWORD", raising=False)


@override_settings(EPPARK_SECRET_KEY_SOURCE="environment")
def test_outside_the_demo_the_gateway_password_is_never_derived(no_gateway_password: None) -> None:
    with pytest.raises(ImproperlyConfigured, match="EPPARK_MQTT_GATEWAY_PASSWORD"):
        gateway_password()
    with pytest.raises(ImproperlyConfigured, match="robot EP-0001"):
        demo_robot_password("EP-0001")


@override_settings(EPPARK_SECRET_KEY_SOURCE="environment")
def test_the_gateway_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPPARK_MQTT_GATEWAY_PASSWORD", "from-the-environment")
    assert gateway_password() == "from-the-environment"


def _derived(key: str, name: str) -> str:
    mac = hmac.new(key.encode(), f"eppark-mqtt:{name}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()
