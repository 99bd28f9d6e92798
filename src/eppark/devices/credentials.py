"""Robot MQTT credentials, hashed in Mosquitto's own format so one store serves both brokers.

A robot's password is a random token; its hash is PBKDF2-HMAC-SHA512 in the
``$7$iterations$salt$hash`` form of ``mosquitto_passwd``, so production
Mosquitto can take ``eppark mosquitto-config``'s file as it is, while the embedded
broker verifies against the same hashes. The gateway's own password comes
from the environment (``EPPARK_MQTT_GATEWAY_PASSWORD``). In the demo (and the
test suite) the gateway's and the robots' passwords are derived from the demo's
own random secret key (``VAR_DIR/secret-key``), so the simulators can connect;
outside them nothing is derived, since the key might be known.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from eppark.devices.keys import random_secret

ITERATIONS = 101  # mosquitto_passwd's default for $7$
SALT_BYTES = 12


def new_password() -> str:
    """A fresh random robot password (about 190 bits)."""
    return random_secret()


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The Mosquitto ``$7$`` hash of ``password``."""
    salt = salt or os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (constant-time)."""
    try:
        _empty, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def derived_password(name: str) -> str:
    """A password derived from the demo's random secret key (the demo's robots and gateway)."""
    if not _demo_or_tests():
        raise ImproperlyConfigured(
            f"no password for {name.replace('robot:', 'robot ')}: derived passwords exist only "
            "with the demo's own key (run `eppark demo`); give the password explicitly"
        )
    mac = hmac.new(settings.SECRET_KEY.encode(), f"eppark-mqtt:{name}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def demo_robot_password(code: str) -> str:
    """A robot's demo password (``eppark demo`` stores it; ``eppark sim robot`` uses it)."""
    return derived_password(f"robot:{code}")


def gateway_password() -> str:
    """The gateway's MQTT password: ``EPPARK_MQTT_GATEWAY_PASSWORD``, else the demo's derived one.

    Outside the demo and the tests a missing password is a configuration error.
    """
    given = os.environ.get("EPPARK_MQTT_GATEWAY_PASSWORD")
    if given:
        return given
    if not _demo_or_tests():
        raise ImproperlyConfigured(
            "EPPARK_MQTT_GATEWAY_PASSWORD is not set: the gateway needs its broker password "
            "(a long random value, the same the broker knows the gateway by)"
        )
    return derived_password("gateway")


def _demo_or_tests() -> bool:
    """Whether this process is ``eppark demo``, works on the demo's database, or is a test."""
    source = getattr(settings, "EPPARK_SECRET_KEY_SOURCE", "environment")
    return bool(getattr(settings, "DEMO", False)) or source in ("demo", "testing")
