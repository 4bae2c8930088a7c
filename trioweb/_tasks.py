"""Errors of the tasks in the app nursery: logged, and handed to a test client that asks for them.

A background task's exception has no caller to go to: under a server it is logged and the worker
keeps serving. A test must still fail because of it, so the lifespan scope may carry the ASGI
extension ``"trioweb.task_errors"`` (:data:`TASK_ERRORS`): a list, into which the app appends
each exception that ended a task of its app nursery, besides logging it. trioweb's test client
sends one and raises what it holds when it exits; a server sends none, so nothing is kept.

Two kinds of tasks end up here:

* a task started with ``add_background_task``, whose exception is caught in the task itself, so
  the other tasks of the app nursery go on;
* a task started directly on ``app.nursery`` whose exception escapes it. Trio then cancels the
  whole nursery (the other background tasks and the disconnect sweeper). The lifespan reports
  the crash at ``CRITICAL`` level and opens a fresh app nursery, so the worker keeps serving its
  connections (see :func:`trioweb._asgi.handle_lifespan`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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


def report_app_nursery_crash(sink: list[Exception] | None, error: Exception) -> None:
    """Log, at ``CRITICAL``, a task started directly on ``app.nursery`` that raised (``error``:
    what the nursery raised), and hand it to ``sink``, without its one-member groups."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    log.critical(
        "A task started on app.nursery raised, so trio cancelled the app nursery and every"
        " background task in it; trioweb opens a new app nursery and keeps serving. Catch the"
        " task's exceptions, or start it with app.add_background_task(), which logs them and"
        " leaves the other tasks running.",
        exc_info=error,
    )
    if sink is not None:
        sink.append(error)
