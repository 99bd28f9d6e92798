"""The test run's leak guard (tests/leakcheck.py): leaks fail their test, never pytest itself."""

from __future__ import annotations

import ast
import asyncio
import gc
import io
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from tests import leakcheck


async def _fails() -> None:
    raise ValueError("nobody looked at this")


def _leak_unretrieved_errors(count: int) -> None:
    """Tasks that failed, nobody read their error, each kept alive only by a reference cycle."""
    loop = asyncio.new_event_loop()
    try:
        for _ in range(count):
            task = loop.create_task(_fails())
            loop.run_until_complete(asyncio.sleep(0))
            cycle: list[Any] = [task]
            cycle.append(cycle)
    finally:
        loop.close()


def _errors_collected_inside_ast_parse() -> None:
    """A test whose leaked tasks are collected while ``ast.parse`` runs (as pytest's did)."""
    source = Path(ast.__file__).read_text(encoding="utf-8")
    threshold = gc.get_threshold()
    with leakcheck.watch():
        _leak_unretrieved_errors(20)
        gc.set_threshold(10)  # collect often
        try:
            for _ in range(20):
                ast.parse(source)
        finally:
            gc.set_threshold(*threshold)


def test_a_task_collected_inside_ast_parse_cannot_crash_the_run() -> None:
    # Python 3.11 formats a traceback with ast.parse; asyncio's default handler did so from
    # Task.__del__, and a collection during pytest's own ast.parse then raised SystemError
    # "AST constructor recursion depth mismatch" (CPython gh-106905): an INTERNALERROR.
    with pytest.raises(AssertionError) as failure:
        _errors_collected_inside_ast_parse()
    report = str(failure.value)
    assert "Task exception was never retrieved" in report
    assert "ValueError: nobody looked at this" in report


async def _forever() -> None:
    await asyncio.Event().wait()


def _task_left_pending() -> None:
    with leakcheck.watch():
        loop = asyncio.new_event_loop()
        left = loop.create_task(_forever(), name="left behind")
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        del left


def test_a_task_left_pending_fails_its_test_by_name() -> None:
    with pytest.raises(AssertionError) as failure:
        _task_left_pending()
    report = str(failure.value)
    assert "asyncio task still pending: <Task pending name='left behind'" in report
    assert "Task was destroyed but it is pending!" in report


def test_an_event_loop_left_open_fails_its_test() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def leave_open() -> None:
        with leakcheck.watch():
            loops.append(asyncio.new_event_loop())

    with pytest.raises(AssertionError, match="event loop never closed"):
        leave_open()
    loops[0].close()


def test_a_thread_left_running_fails_its_test_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leakcheck, "THREAD_GRACE_S", 0.2)
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="still busy")

    def leave_running() -> None:
        with leakcheck.watch():
            thread.start()

    try:
        with pytest.raises(AssertionError, match="thread 'still busy' still running"):
            leave_running()
    finally:
        release.set()
        thread.join()


def test_a_thread_that_ends_soon_after_its_test_is_waited_for() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(5,), name="closing")
    with leakcheck.watch():
        thread.start()
        threading.Timer(0.1, release.set).start()
    assert not thread.is_alive()


def test_a_log_handler_left_on_a_closed_stream_fails_its_test() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)

    def close_it() -> None:
        with leakcheck.watch():
            stream.close()

    logging.root.addHandler(handler)
    try:
        with pytest.raises(AssertionError, match="writes to a closed stream"):
            close_it()
    finally:
        logging.root.removeHandler(handler)
