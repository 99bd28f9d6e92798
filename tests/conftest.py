"""Shared test set-up: media files go to a temporary folder per run."""

from __future__ import annotations

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
