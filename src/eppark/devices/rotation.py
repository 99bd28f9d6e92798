"""New secrets for devices: a robot's MQTT password, a camera's endpoint key; shown once, audited.

Both the back office and the command line come here. The secret is returned to
the caller to be shown once; only its hash is stored, and the change is written
to the device's history (who, when, why) without the secret or its hash.
"""

from __future__ import annotations

from typing import Any, Final

from eppark.devices.credentials import hash_password, new_password
from eppark.devices.keys import new_key
from eppark.devices.models import Camera, Robot

PASSWORD_RESET: Final = "MQTT password reset"
KEY_ROTATED: Final = "endpoint key rotated"
FROM_COMMAND_LINE: Final = " (command line)"


def new_robot_password(robot: Robot, *, by: Any = None, reason: str = PASSWORD_RESET) -> str:
    """Give ``robot`` a fresh MQTT password; return it (its hash alone is stored).

    ``by``: the user who asked (None: the command line, or the request's user when
    the back office saves). The robot's old password stops working at once on the
    embedded broker; Mosquitto takes the new one when its password file is written
    again (``eppark mosquitto-config``) and reloaded.
    """
    password = new_password()
    robot.mqtt_password_hash = hash_password(password)
    _audit(robot, by, reason)
    robot.save(update_fields=["mqtt_password_hash", "updated_at"])
    return password


def rotate_camera_key(camera: Camera, *, by: Any = None, reason: str = KEY_ROTATED) -> str:
    """Give ``camera`` a fresh endpoint key; return it (its digest and hint alone are stored).

    The old key stops being accepted at once in this process and within the
    registry's refresh time (seconds) in the others.
    """
    key = new_key()
    camera.key = key
    _audit(camera, by, reason)
    camera.save(update_fields=["key_digest", "key_hint", "updated_at"])
    return key


def _audit(instance: Robot | Camera, by: Any, reason: str) -> None:
    """What django-simple-history writes with the next save: the reason, and who (if known)."""
    setattr(instance, "_change_reason", reason)  # noqa: B010 (read by django-simple-history)
    if by is not None:
        setattr(instance, "_history_user", by)  # noqa: B010
