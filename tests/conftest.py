"""Shared test set-up: media files go to a temporary folder per run; the leak guard."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import leakcheck


@pytest.fixture(autouse=True)
def _leak_guard() -> Iterator[None]:
    """Fail a test that leaves threads, asyncio tasks or event loops behind (``leakcheck``)."""
    with leakcheck.watch():
        yield


@pytest.fixture(autouse=True)
def _media_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Point MEDIA_ROOT at a fresh folder for tests that use Django settings."""
    if "settings" not in request.fixturenames:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = Path(tmp_path_factory.mktemp("media"))
    yield


@pytest.hookimpl(trylast=True)  # after pytest's own unraisable hook is in place
def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of this suite (``--strict-markers``); install the leak guard."""
    leakcheck.install()
    config.addinivalue_line(
        "markers",
        "postgres_pass: runs in the PostgreSQL pass of `make test` only (it starts a cluster "
        "of its own either way); deselected, not skipped, when DATABASE_URL is not PostgreSQL",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Hand pytest its hooks back before its own final collection."""
    leakcheck.uninstall()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``postgres_pass`` tests outside the PostgreSQL pass (they would only repeat)."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return
    dropped = [item for item in items if item.get_closest_marker("postgres_pass")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("postgres_pass")]
