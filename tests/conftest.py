"""Shared test set-up: media files go to a temporary folder per run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _media_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Point MEDIA_ROOT at a fresh folder for tests that use Django settings."""
    if "settings" not in request.fixturenames:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = Path(tmp_path_factory.mktemp("media"))
    yield


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of this suite (``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        "postgres_pass: runs in the PostgreSQL pass of `make test` only (it starts a cluster "
        "of its own either way); deselected, not skipped, when DATABASE_URL is not PostgreSQL",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``postgres_pass`` tests outside the PostgreSQL pass (they would only repeat)."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return
    dropped = [item for item in items if item.get_closest_marker("postgres_pass")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("postgres_pass")]
