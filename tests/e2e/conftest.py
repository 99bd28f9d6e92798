"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

One Chromium process serves the whole session. Each test attaches Playwright to it
(over the DevTools protocol) and detaches at the end: Playwright's sync API runs an
asyncio loop in the test thread while it is started, and a session-long Playwright
would leave that loop "running" under every later test (``asyncio.run`` and Django's
async-safety guard would then fail far from here).
"""

from __future__ import annotations

import ctypes
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.e2e.desk_harness import DeskServer, close_connection

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_SECONDS = 60


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even if killed (Linux)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one headless Debian Chromium for the session; its DevTools WebSocket URL."""
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is not installed: run tools/ensure-services")
    folder = tmp_path_factory.mktemp("chromium")
    log_path = folder / "stderr.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless=new",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={folder / 'profile'}",
                *CHROMIUM_ARGS,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=_die_with_parent,  # no stray browsers if pytest is killed
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        endpoint = None
        while endpoint is None:
            found = re.search(r"DevTools listening on (ws://\S+)", log_path.read_text())
            if found:
                endpoint = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start:\n{log_path.read_text()[-2000:]}")
            else:
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser_page(
    chromium_endpoint: str, live_server: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A fresh page in its own browser context (no cookies shared between tests)."""
    # While Playwright is attached its loop counts as running in this thread; the test's
    # own ORM calls are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server answers each browser socket in its own thread; with persistent
    # database connections an idle keep-alive socket would hold one open and PostgreSQL
    # could not drop the test database at the end. Close them after every request.
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            # With Playwright's loop running, Django keeps the test's database connection
            # in context-local storage, apart from the thread's own: close it here, or
            # PostgreSQL could not drop the test database at the end of the session.
            connections.close_all()


# --- the agent desk: the ASGI app (WebSocket) instead of the WSGI live server ------------------


@pytest.fixture(scope="session")
def _single_thread_executor() -> None:
    """asgiref's one shared thread for sync code called outside a request (Channels'
    database calls): started once, before any test's leak guard counts threads."""
    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor.submit(close_connection).result(30)


@pytest.fixture
def desk_server(
    _single_thread_executor: None, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeskServer]:
    """``eppark.asgi.application`` served on a free port of 127.0.0.1, on the test database."""
    from eppark.console import push

    server = DeskServer()
    server.start()
    # pushes from threads outside a request (the device ingress) go to the server's loop,
    # as in ``eppark serve``
    monkeypatch.setattr(push, "_loop", server.loop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def desk_context(
    chromium_endpoint: str, desk_server: DeskServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BrowserContext]:
    """A fresh browser context against the desk server (closed before the server stops)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
            connections.close_all()
