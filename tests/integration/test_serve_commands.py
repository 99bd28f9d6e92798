"""``eppark serve`` and ``eppark gateway`` refuse multi-process modes on SQLite.

Web processes without a gateway reach it by PostgreSQL ``NOTIFY``; on SQLite their
commands would wait for a poll that nobody runs, so the commands refuse to start
(before binding a socket or starting anything). On PostgreSQL they would serve, so
those cases run on SQLite only.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="on PostgreSQL these would start serving"
)


@sqlite_only
@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--workers", "2"),
        ("serve", "--no-gateway"),
        ("serve", "--workers", "3", "--no-gateway"),
        ("gateway",),
    ],
    ids=" ".join,
)
def test_multi_process_modes_need_postgresql(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command(*args)


def test_serve_needs_at_least_one_worker() -> None:
    with pytest.raises(CommandError, match="--workers must be at least 1"):
        call_command("serve", "--workers", "0")
