"""The LPR parsers and the simulator builders stay pure: no Django, no network, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "eppark"
PURE = [
    *(SRC / "devices" / "lpr" / f"{name}.py" for name in ("__init__", "events", "vzenith")),
    *(SRC / "devices" / "lpr" / f"{name}.py" for name in ("hxzx", "hikvision", "dahua")),
    SRC / "sim" / "cameras.py",
]
FORBIDDEN_MODULES = {"django", "socket", "http", "asyncio", "os", "time", "requests", "httpx"}
FORBIDDEN_CALLS = {"now", "today", "utcnow", "time", "monotonic", "open"}


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
            assert name != "eppark.devices.lpr.barrier", f"{path.name} imports the barrier client"
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert called not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {called}()"
