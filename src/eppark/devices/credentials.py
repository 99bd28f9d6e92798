"""Robot MQTT credentials, hashed in Mosquitto's own format so one store serves both brokers.

A robot's password is a random token; its hash is PBKDF2-HMAC-SHA512 in the
``$7$iterations$salt$hash`` form of ``mosquitto_passwd``, so production
Mosquitto can take ``eppark mosquitto-config``'s file as it is, while the embedded
broker verifies against the same hashes. The gateway's own password comes
from the environment (``EPPARK_MQTT_GATEWAY_PASSWORD``); in the demo both are
derived from the secret key, so the simulators can connect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from django.conf import settings

ITERATIONS = 101  # mosquitto_passwd's default for $7$
SALT_BYTES = 12


def new_password() -> str:
    """A fresh random robot password (about 190 bits)."""
    return secrets.token_urlsafe(24)


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
    """A password derived from the secret key (the demo's robots and gateway)."""
    mac = hmac.new(settings.SECRET_KEY.encode(), f"eppark-mqtt:{name}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def demo_robot_password(code: str) -> str:
    """A robot's demo password (``eppark demo`` stores it; ``eppark sim robot`` uses it)."""
    return derived_password(f"robot:{code}")


def gateway_password() -> str:
    """The gateway's MQTT password: from the environment, else derived from the secret key."""
    return os.environ.get("EPPARK_MQTT_GATEWAY_PASSWORD") or derived_password("gateway")
