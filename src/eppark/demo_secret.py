"""The demo's own secret: a random key generated once into the var dir and reused.

``eppark demo`` writes ``VAR_DIR/secret-key`` (mode 0600) the first time it
runs and reads it every time after, so sessions, signed QR codes and the demo
robots' MQTT passwords survive a restart and are derived from nothing public.
Other commands (``eppark robot-state``, ``eppark shell``, ``eppark
changepassword`` …) use the same file when they work on the demo's database:
``DATABASE_URL`` unset (the SQLite file next to it in the var dir) and the file
present. Plain file handling, no Django: the settings module imports it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "secret-key"


def secret_path(var_dir: Path) -> Path:
    """Where the demo's secret lives."""
    return var_dir / FILE_NAME


def read_secret(var_dir: Path) -> str | None:
    """The demo's secret, or None when the demo has never run in ``var_dir``."""
    try:
        value = secret_path(var_dir).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return value or None


def ensure_secret(var_dir: Path) -> str:
    """The demo's secret: read it, or generate it once (0600, created atomically)."""
    existing = read_secret(var_dir)
    if existing:
        return existing
    var_dir.mkdir(parents=True, exist_ok=True)
    path = secret_path(var_dir)
    value = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first (or an empty file is there)
        existing = read_secret(var_dir)
        if existing:
            return existing
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value + "\n")
    return value
