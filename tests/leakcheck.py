"""Leak guard for the test run: what a test leaves running fails that test, not pytest.

Python 3.11's ``traceback`` parses source with ``ast`` to place its carets, and the AST
constructor's recursion bookkeeping is not re-entrant (CPython gh-106905). An asyncio task
that a test leaves pending, or with an exception nobody retrieved, is logged from its
``__del__`` whenever the garbage collector happens to free it — possibly while pytest itself
is inside ``ast.parse`` (rewriting asserts, printing a failure): the nested traceback
formatting then raised ``SystemError: AST constructor recursion depth mismatch`` and the
whole run ended in an INTERNALERROR that named no test.

So for the whole run:

- every event loop gets an exception handler that only *records* what asyncio reports
  (a destroyed pending task, an exception never retrieved): nothing is formatted inside a
  finaliser;
- ``sys.unraisablehook`` likewise records and hands over to pytest's own at a safe point;
- after each test, ``watch()`` runs the collector (where it is safe) if the test made event
  loops or threads, and fails the test, by name, if it left threads running, tasks pending,
  event loops open, or asyncio reported anything;
- and if it left a logging handler writing to a closed stream (``django.setup()`` run under
  ``capsys`` points the root handler at a capture that closes with the test): every later
  warning then became a "--- Logging error ---" with a traceback formatted from whichever
  thread logged, the embedded broker's included.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

THREAD_GRACE_S = 10.0
"""How long threads a test started may take to finish after it (a closing socket, a pool)."""


class _Shown:
    """An unraisable's object, kept as its repr (keeping the object would resurrect it)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Guard:
    """What asyncio and finalisers reported, and the event loops made, since the last check."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.unraisable: list[SimpleNamespace] = []
        self.loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
        self.forward: Callable[[Any], object] | None = None
        self.lock = threading.Lock()

    def asyncio_report(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An event loop's exception handler: keep the report, format nothing."""
        with self.lock:
            self.reports.append(context)

    def unraisable_hook(self, unraisable: Any) -> None:
        """``sys.unraisablehook``: keep it for pytest's own hook, called after the test."""
        try:
            shown = repr(unraisable.object)
        except Exception:
            shown = f"<{type(unraisable.object).__name__}>"
        kept = SimpleNamespace(
            exc_type=unraisable.exc_type,
            exc_value=unraisable.exc_value,
            exc_traceback=unraisable.exc_traceback,
            err_msg=unraisable.err_msg,
            object=_Shown(shown),
        )
        with self.lock:
            self.unraisable.append(kept)

    def flush_unraisable(self) -> None:
        """Hand what finalisers raised to pytest's hook (it turns them into warnings)."""
        with self.lock:
            kept, self.unraisable = self.unraisable, []
        for item in kept:
            if self.forward is not None:
                self.forward(item)

    def loop_made(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self.asyncio_report)
        with self.lock:
            self.loops.append(weakref.ref(loop))


GUARD = _Guard()


class _GuardedPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, with every new loop's reports going to ``GUARD``."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        GUARD.loop_made(loop)
        return loop


def install() -> None:
    """Route asyncio's and finalisers' reports to the guard (after pytest's own hooks)."""
    asyncio.set_event_loop_policy(_GuardedPolicy())
    GUARD.forward = sys.unraisablehook
    sys.unraisablehook = GUARD.unraisable_hook


def uninstall() -> None:
    """Give pytest back its hooks, with what is still kept."""
    if sys.unraisablehook == GUARD.unraisable_hook and GUARD.forward is not None:
        sys.unraisablehook = GUARD.forward
    GUARD.flush_unraisable()
    asyncio.set_event_loop_policy(None)


@contextmanager
def watch() -> Iterator[None]:
    """Around one test: fail it if it leaves threads, tasks or loops, or asyncio complained."""
    before = set(threading.enumerate())
    with GUARD.lock:
        GUARD.loops = []
    yield
    problems = _problems(before)
    GUARD.flush_unraisable()
    if problems:
        raise AssertionError(
            "the test left work running after it (see tests/leakcheck.py):\n\n"
            + "\n\n".join(problems)
        )


def _problems(before: set[threading.Thread]) -> list[str]:
    problems = _threads_left(before) + _closed_log_streams()
    with GUARD.lock:
        loops = [loop for ref in GUARD.loops if (loop := ref()) is not None]
        GUARD.loops = []
    for loop in loops:
        problems += _loop_left(loop)
    if loops or problems or GUARD.reports:
        del loops
        gc.collect()  # here, not inside pytest's ast work: destroyed tasks report now
    with GUARD.lock:
        reports, GUARD.reports = GUARD.reports, []
    problems += [_describe(report) for report in reports]
    return problems


def _threads_left(before: set[threading.Thread]) -> list[str]:
    """Threads the test started that do not end within ``THREAD_GRACE_S``."""
    started = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    deadline = time.monotonic() + THREAD_GRACE_S
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    frames = sys._current_frames()
    problems = []
    for thread in started:
        if thread.is_alive():
            frame = frames.get(thread.ident or -1)
            where = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else ""
            problems.append(f"thread {thread.name!r} still running:\n{where}")
    return problems


def _closed_log_streams() -> list[str]:
    """Logging handlers (of any logger) that write to a stream already closed.

    Each is pointed at ``sys.stderr`` again, so that only the test that did it fails.
    """
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    problems = []
    for logger in loggers:
        if not isinstance(logger, logging.Logger):
            continue
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)  # None: pytest's own handlers
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                problems.append(
                    f"logging handler {handler!r} of logger {logger.name!r} writes to a closed"
                    " stream (logging re-configured onto the test's captured output?)"
                )
                handler.acquire()  # not setStream: it flushes the closed stream first
                try:
                    handler.stream = sys.stderr
                finally:
                    handler.release()
    return problems


def _loop_left(loop: asyncio.AbstractEventLoop) -> list[str]:
    """An event loop the test made: closed, with no task left pending."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    problems = [f"asyncio task still pending: {task!r}" for task in pending]
    if not loop.is_closed() and not loop.is_running():
        problems.append(f"event loop never closed: {loop!r}")
    return problems


def _describe(report: dict[str, Any]) -> str:
    """One asyncio report, formatted now that it is safe to."""
    lines = [f"asyncio reported: {report.get('message', 'an error')}"]
    for key in ("task", "future", "handle"):
        if key in report:
            lines.append(f"  {key}: {report[key]!r}")
    error = report.get("exception")
    if isinstance(error, BaseException):
        lines.append("".join(traceback.format_exception(error)).rstrip())
    return "\n".join(lines)
