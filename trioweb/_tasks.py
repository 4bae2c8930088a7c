"""The app nursery's failures: logged, and handed to a test client that asks for them.

A background task's exception has no caller to go to: under a server it is logged and the worker
keeps serving. A test must still fail because of it, so the lifespan scope may carry the ASGI
extension ``"trioweb.task_errors"`` (:data:`TASK_ERRORS`): a list, into which the app appends
each exception that ended a task of its app nursery, besides logging it. trioweb's test client
sends one and raises what it holds when it exits; a server sends none, so nothing is kept.

Two kinds of tasks end up here:

* a task started with ``add_background_task``, whose exception is caught in the task itself
  (:func:`report_task_error`), so the other tasks of the app nursery go on;
* a task started directly on ``app.nursery`` whose exception escapes it. Trio then cancels that
  nursery and every task in it. :func:`run_app_nursery`, the task that holds the app nursery,
  reports the crash at ``CRITICAL`` level and opens a fresh app nursery, so the worker keeps
  serving; the lifespan (``before_serving``, ``after_serving``) and the disconnect listener run
  outside it and are not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from ._errors import lone_exception

if TYPE_CHECKING:
    from ._app import TrioWeb

#: The key of the lifespan scope's ``extensions`` that asks the app to hand over task errors.
TASK_ERRORS = "trioweb.task_errors"

log = logging.getLogger("trioweb")


def task_error_sink(scope: Mapping[str, Any]) -> list[Exception] | None:
    """The list the lifespan ``scope`` asks task errors to be appended to, if it asks."""
    sink = (scope.get("extensions") or {}).get(TASK_ERRORS)
    return sink if isinstance(sink, list) else None


def report_task_error(sink: list[Exception] | None, error: Exception, what: str) -> None:
    """Log ``error``, which ended ``what`` (a background task), and hand it to ``sink``."""
    log.exception("%s failed", what, exc_info=error)
    if sink is not None:
        sink.append(error)


async def run_app_nursery(
    app: TrioWeb, *, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
) -> NoReturn:
    """Hold the app nursery until cancelled: ``app.nursery = await nursery.start(run_app_nursery,
    app)`` returns it open. When a task in it raises, trio cancels it; this logs the exception
    at ``CRITICAL``, appends it to the task error sink and sets ``app.nursery`` to a fresh one."""
    started = False
    while True:
        try:
            async with trio.open_nursery() as nursery:
                if started:
                    app.nursery = nursery
                else:
                    task_status.started(nursery)
                    started = True
                await trio.sleep_forever()
        except BaseExceptionGroup as group:
            crash, rest = group.split(Exception)
            if crash is not None:
                _report_crash(app._task_errors, crash)
            if rest is not None:  # Cancelled: the lifespan is ending (or KeyboardInterrupt...)
                raise rest from None


def _report_crash(sink: list[Exception] | None, crash: ExceptionGroup[Exception]) -> None:
    error = lone_exception(crash)
    assert isinstance(error, Exception)
    log.critical(
        "A task started on app.nursery raised, so trio cancelled the app nursery and every"
        " background task in it; trioweb opens a new app nursery and keeps serving. Catch the"
        " task's exceptions, or start it with app.add_background_task(), which logs them and"
        " leaves the other tasks running.",
        exc_info=error,
    )
    if sink is not None:
        sink.append(error)
