"""``eppark serve --workers N``: the web-only workers end with the main process.

Killed outright (SIGKILL, the OOM killer), the main process cannot stop its
workers; they must not go on answering on the port with the old code. Real
processes on PostgreSQL (several web processes need it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.integration.factories import database_url_for_processes
from tests.integration.mqtt_fixtures import free_port, wait_listening

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="several web processes need PostgreSQL"
    ),
]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child may wait for a reaper that never comes)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "zombie" not in state and " Z" not in state


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_the_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_processes(),
        EPPARK_SECRET_KEY="serve-workers-test-secret",
        EPPARK_LOG_LEVEL="WARNING",
    )
    env.pop("PYTEST_VERSION", None)
    log = (tmp_path / "serve.log").open("wb")
    main = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eppark",
            "serve",
            "--no-gateway",
            "--no-payments",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers: list[int] = []
    try:
        assert _wait(lambda: bool(_children(main.pid)), 60), "no worker started"
        workers = _children(main.pid)
        wait_listening(port, timeout=60)
        main.kill()
        main.wait(30)
        assert _wait(lambda: not any(_running(pid) for pid in workers), 30), (
            "a web worker outlived the main process"
        )
    finally:
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        if main.poll() is None:
            main.kill()
            main.wait()
        log.close()
