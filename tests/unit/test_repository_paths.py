"""The repository names no absolute path of the machine it was checked out on.

A lock file or config that points at one checkout (an editable ``-e`` line with a
file URL) breaks a clone elsewhere, or silently installs and tests the other
checkout's code.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILE_URL = "file:" + "///"  # spelled in two parts so this file does not match itself


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("the repository's files could not be listed with git")
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def test_no_tracked_file_names_this_checkout_or_a_file_url() -> None:
    here = str(ROOT)
    offenders = []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if FILE_URL in line or here in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "absolute paths in the repository:\n" + "\n".join(offenders)


def test_the_lock_pins_dependencies_only() -> None:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    entries = [ln for ln in lock.splitlines() if ln and not ln.lstrip().startswith("#")]
    assert entries, "requirements.lock is empty"
    assert all("==" in ln for ln in entries), [ln for ln in entries if "==" not in ln]
