"""Serving an app on Hypercorn's trio worker, from Python (``serve``, ``app.run``) and for
``trioweb run`` (one process, or each worker process of :mod:`trioweb._supervisor`).

The worker is trioweb's connection layer (:mod:`trioweb._layer`) unless the caller opts out
(``layer=False``) or the layer cannot serve (:func:`worker_for`): then stock Hypercorn's.

:func:`serve` owns one Hypercorn worker inside the caller's task tree. Rules:

* The bound URL is reported (``task_status.started``) only once Hypercorn listens *and* the app's
  ``before_serving`` functions have succeeded; a failed startup is raised, never reported as
  started.
* Cancelling :func:`serve` is a graceful shutdown, as a ``shutdown_trigger`` is: Hypercorn stops
  accepting, gives open connections ``graceful_timeout`` seconds, then the lifespan runs
  ``after_serving`` and cancels the background tasks; only then does ``Cancelled`` propagate.
  That part runs shielded, and ``graceful_timeout + shutdown_timeout`` seconds after it began
  everything still running is cancelled (:data:`SHUTDOWN_TIMEOUT` is trioweb's default for
  Hypercorn's ``shutdown_timeout``).
* A lifespan failure that the app reports (``before_serving`` or ``after_serving`` raised), or a
  lifespan that outlasts Hypercorn's ``startup_timeout``/``shutdown_timeout``, is raised as
  :class:`~trioweb.LifespanError`, the error the test client raises for it.

:func:`run` (and :func:`serve_in_process` under it) serves in a fresh ``trio.run`` and turns
SIGINT (Ctrl+C) and SIGTERM into that graceful shutdown. A task that swallows ``Cancelled`` (a
handler with ``except BaseException:`` in a loop) would keep it from ever ending, so a watcher
outside the served scope bounds it: :func:`shutdown_bound` seconds after the signal, or at a
second signal, it logs one error line per task still running (:mod:`trioweb._tasktree`) and
ends the process with status 1 (``os._exit``: nothing else can end such a task). ``run`` prints
``Running on <url>`` itself, once, and drops Hypercorn's own line, which each worker would print.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.logging import Logger as HypercornLogger
from hypercorn.trio.run import worker_serve as hypercorn_worker_serve
from hypercorn.utils import LifespanFailureError, LifespanTimeoutError, wrap_app

from ._errors import LifespanError, lone_exception
from ._layer import SUPPORTED, unsupported
from ._tasktree import stuck_tasks
from ._types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("trioweb")


#: trioweb's default for Hypercorn's ``shutdown_timeout``: seconds the app's ``after_serving``
#: functions get at shutdown, after the ``graceful_timeout`` of the connections (Hypercorn's own
#: default is 60; a development server should stop sooner).
SHUTDOWN_TIMEOUT = 10.0

#: Seconds the tasks cancelled at the shutdown's deadline get to end before :func:`run` gives up
#: on them, names them and exits the process.
UNWIND_TIME = 1.0

#: The access log's format in :func:`run` and ``trioweb run`` (Hypercorn's atoms: client, request
#: line with the query string, status, response size, seconds taken).
ACCESS_LOG_FORMAT = '%(h)s "%(R)s" %(s)s %(b)s %(L)ss'


def hypercorn_config(
    host: str | None = None,
    port: int | None = None,
    config: HypercornConfig | None = None,
    **settings: Any,
) -> HypercornConfig:
    """A Hypercorn config: a copy of ``config`` (which is not changed), then ``settings``
    (Hypercorn's names, such as ``graceful_timeout=1``), bound to ``host:port``.

    ``host``/``port`` replace the config's ``bind``; when neither is given, a ``bind`` that
    ``config`` sets is kept, else it is ``127.0.0.1:5000``. ``shutdown_timeout`` is
    :data:`SHUTDOWN_TIMEOUT` unless ``config`` or ``settings`` set it. Raises ``TypeError`` for a
    setting Hypercorn does not have.
    """
    result = HypercornConfig()
    result.shutdown_timeout = SHUTDOWN_TIMEOUT
    if config is not None:
        result.__dict__.update(config.__dict__)
    for name, value in settings.items():
        if name.startswith("_") or not hasattr(HypercornConfig, name):
            raise TypeError(
                f"{name!r} is not a Hypercorn setting; the settings are the attributes of"
                " hypercorn.config.Config, such as graceful_timeout or keep_alive_timeout"
            )
        setattr(result, name, value)
    if host is not None or port is not None or "_bind" not in vars(result):
        host = "127.0.0.1" if host is None else host
        port = 5000 if port is None else port
        result.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    return result


def shutdown_bound(config: HypercornConfig) -> float:
    """Seconds after Ctrl+C within which :func:`run` ends the process, whatever the app does:
    ``graceful_timeout + shutdown_timeout + UNWIND_TIME`` (3 + 10 + 1 = 14 by default)."""
    return float(config.graceful_timeout) + float(config.shutdown_timeout) + UNWIND_TIME


async def serve(
    app: ASGIApp,
    *,
    host: str | None = None,
    port: int | None = None,
    config: HypercornConfig | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    layer: bool = True,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with Hypercorn's trio worker until cancelled or ``shutdown_trigger``
    returns.

    With ``layer`` (the default), trioweb's :ref:`connection layer <ref-layer>` replaces the
    worker's trio-side glue; ``layer=False`` serves with stock Hypercorn, for comparison.

    ``await nursery.start(serve, app, port=0)`` returns the bound URL, such as
    ``"http://127.0.0.1:41233"``, once the app's ``before_serving`` functions have run and the
    socket accepts connections. ``config`` is a :class:`hypercorn.config.Config` for everything
    else (TLS, timeouts, logging); ``host``/``port`` replace its ``bind`` (``127.0.0.1:5000``
    when neither sets one).

    Cancellation, or ``shutdown_trigger`` returning, shuts down gracefully before this returns
    (or ``Cancelled`` propagates): open connections get Hypercorn's ``graceful_timeout`` (3 s),
    then ``after_serving`` runs and background tasks are cancelled; after
    ``graceful_timeout + shutdown_timeout`` seconds (3 + 10 by default: trioweb's default
    ``shutdown_timeout`` is 10, Hypercorn's 60) everything still running is cancelled. A task
    that swallows that cancellation keeps this from returning; ``app.run()`` and ``trioweb
    run`` exit the process anyway.

    Raises :class:`~trioweb.LifespanError` if a ``before_serving`` function fails (from
    ``nursery.start``) or an ``after_serving`` function does, or either outlasts Hypercorn's
    ``startup_timeout``/``shutdown_timeout``, and ``OSError`` if it cannot listen (the port is
    taken, say). A single error is raised as is, not in a group.
    """
    await _serve(
        app,
        hypercorn_config(host, port, config),
        shutdown_trigger,
        layer=layer,
        task_status=task_status,
    )


async def _serve(
    app: ASGIApp,
    cfg: HypercornConfig,
    shutdown_trigger: Callable[[], Awaitable[None]] | None,
    sockets: Sockets | None = None,
    *,
    layer: bool = True,
    task_status: trio.TaskStatus[str],
) -> None:
    """:func:`serve` with a ready config, on ``sockets`` (bound and listening) if given."""
    watched = _LifespanWatch(app)
    stop = trio.Event()
    started = False
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                _serve_shielded_once_started,
                watched,
                cfg,
                stop.wait,
                sockets,
                worker_for(cfg, layer),
            )
            if watched.failure is not None:
                # Hypercorn listens even when startup failed; the failure is on its way out of
                # the worker and cancels this wait.
                await trio.sleep_forever()
            task_status.started(binds[0])
            started = True
            try:
                if shutdown_trigger is None:
                    await trio.sleep_forever()
                else:
                    await shutdown_trigger()
            finally:
                stop.set()
    except BaseExceptionGroup as group:
        # Hypercorn's nurseries nest the error in groups: raise what the caller can act on.
        if group.subgroup(LifespanTimeoutError) is not None:
            raise _timed_out("shutdown" if started else "startup", cfg) from None
        _, rest = group.split((LifespanFailureError, trio.Cancelled))
        if watched.failure is not None and rest is None:
            raise watched.failure from None
        error = lone_exception(group)
        if isinstance(error, Exception) and not isinstance(error, ExceptionGroup):
            raise error from None  # such as OSError when the port is taken
        raise


#: A trio worker: Hypercorn's ``worker_serve`` or the layer's.
WorkerServe = Callable[..., Awaitable[None]]


def worker_for(config: HypercornConfig, layer: bool) -> WorkerServe:
    """The worker that serves ``config``: the connection layer's if ``layer`` and it can (it
    supports the installed Hypercorn, and no HTTP/3 ``quic_bind`` is set), else Hypercorn's own,
    with a log line saying why."""
    if not layer:
        return hypercorn_worker_serve
    installed = unsupported()
    if installed is not None:
        log.warning(
            "trioweb's connection layer supports Hypercorn %s, and Hypercorn %s is installed:"
            " serving with stock Hypercorn, without the layer's protections (install a"
            " supported Hypercorn: pip install 'hypercorn>=0.17,<0.19')",
            " and ".join(f"{major}.{minor}.x" for major, minor in SUPPORTED),
            installed,
        )
        return hypercorn_worker_serve
    if config.quic_bind:
        log.warning(
            "trioweb's connection layer does not cover HTTP/3: quic_bind is set, so stock"
            " Hypercorn serves, without the layer's protections (drop quic_bind to have them)"
        )
        return hypercorn_worker_serve
    from ._layer._server import worker_serve

    return worker_serve


def _timed_out(phase: str, config: HypercornConfig) -> LifespanError:
    # Hypercorn's LifespanTimeoutError says "startup" for either phase (Hypercorn 0.18).
    functions = "before_serving" if phase == "startup" else "after_serving"
    timeout = getattr(config, f"{phase}_timeout")
    return LifespanError(
        phase,
        f"TimeoutError: the {functions} functions did not finish within {timeout} s"
        f" (Hypercorn's {phase}_timeout setting)",
    )


async def _serve_shielded_once_started(
    app: ASGIApp,
    config: HypercornConfig,
    shutdown_trigger: Callable[[], Awaitable[None]],
    sockets: Sockets | None,
    worker_serve: WorkerServe,
    *,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """``worker_serve``, cancellable while starting, shielded once it listens (it then stops
    only by ``shutdown_trigger``, gracefully)."""
    with trio.CancelScope() as scope:

        async def trigger() -> None:
            await shutdown_trigger()
            # Shielded, so bound it: connections get graceful_timeout, the lifespan the rest.
            scope.deadline = trio.current_time() + config.graceful_timeout + config.shutdown_timeout

        framework: Any = app  # hypercorn's types spell out every ASGI message
        await worker_serve(
            wrap_app(framework, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=trigger,
            task_status=_ShieldOnStarted(scope, task_status),
        )


@attrs.define
class _ShieldOnStarted(trio.TaskStatus[list[str]]):
    """A task status that shields ``scope`` when the task reports it has started."""

    scope: trio.CancelScope
    task_status: trio.TaskStatus[list[str]]

    def started(self, value: list[str] | None = None) -> None:
        assert value is not None
        self.scope.shield = True
        self.task_status.started(value)


@attrs.define
class _LifespanWatch:
    """An ASGI app that passes everything to ``app`` and keeps the lifespan failure it reports."""

    app: ASGIApp
    failure: LifespanError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: Message) -> None:
            kind = message["type"]
            if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                self.failure = LifespanError(kind.split(".")[1], message.get("message", ""))
            await send(message)

        await self.app(scope, receive, watched_send)


def run(
    app: ASGIApp,
    *,
    host: str | None = None,
    port: int | None = None,
    config: HypercornConfig | None = None,
    access_log: bool = True,
    layer: bool = True,
    **settings: Any,
) -> None:
    """Serve ``app`` in this process until Ctrl+C or SIGTERM; blocks, and returns after the
    graceful shutdown.

    ``config`` (a :class:`hypercorn.config.Config`) and ``settings`` (Hypercorn's setting names:
    ``graceful_timeout=1``, ``keep_alive_timeout``, ``websocket_max_message_size``, ``certfile``
    and ``keyfile``, ...) configure Hypercorn as for :func:`serve`; ``settings`` win. With
    ``access_log`` (the default, unless ``config`` sets ``accesslog``) each request and
    websocket is logged to stderr in :data:`ACCESS_LOG_FORMAT`. ``layer=False`` serves with
    stock Hypercorn instead of trioweb's connection layer, as for :func:`serve`.

    Call it from the main thread (it handles signals). Prints ``Running on <url> (Ctrl+C to
    quit)`` once the app serves, then ``trioweb: stopped``, to stderr; logs to stderr unless
    logging is already configured. Raises :class:`~trioweb.LifespanError` if ``before_serving``
    or ``after_serving`` fails, and ``OSError`` if it cannot listen on ``host:port``.

    The process ends within :func:`shutdown_bound` seconds of Ctrl+C or SIGTERM
    (``graceful_timeout + shutdown_timeout + 1``: 14 by default), whatever the app does: if a
    task has not ended by then (it swallows ``trio.Cancelled``, say), an error line names each
    such task, with where it waits, and the process exits with status 1 at once, without
    unwinding. A second Ctrl+C or SIGTERM during the shutdown does the same without waiting.
    """
    cfg = hypercorn_config(host, port, config, **settings)
    serve_in_process(app, cfg, access_log=access_log, announce=_print_running_on, layer=layer)
    print("trioweb: stopped", file=sys.stderr, flush=True)


def _print_running_on(url: str) -> None:
    print(f"Running on {url} (Ctrl+C to quit)", file=sys.stderr, flush=True)


def serve_in_process(
    app: ASGIApp,
    config: HypercornConfig,
    *,
    access_log: bool,
    announce: Callable[[str], object],
    sockets: Sockets | None = None,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
    layer: bool = True,
) -> None:
    """:func:`run`'s serving, for ``trioweb run``'s worker processes too: sets up logging,
    serves ``app`` in a fresh ``trio.run`` (on ``sockets``, listening, if given; with the
    connection layer unless ``layer`` is false) and calls
    ``announce(url)`` once it serves; the first of ``signals`` starts the graceful shutdown, and
    the process ends within :func:`shutdown_bound` seconds of it. Changes ``config``'s logs."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    errorlog = logging.getLogger("hypercorn.error")
    if "errorlog" not in vars(config):
        config.errorlog = errorlog  # through logging: printed once
    if not access_log:
        config.accesslog = None
    elif "accesslog" not in vars(config):
        config.accesslog = logging.getLogger("hypercorn.access")
        if "access_log_format" not in vars(config):
            config.access_log_format = ACCESS_LOG_FORMAT
        if "logger_class" not in vars(config):
            config.logger_class = _OneLinePerRequest
            app = _MarkAnswered(app)
    errorlog.addFilter(_drop_running_on)  # announce() says it, once

    async def main() -> None:
        with _signal_receiver(signals) as received:
            async with trio.open_nursery() as nursery:
                serving = trio.CancelScope()
                root = trio.lowlevel.current_task()
                nursery.start_soon(_watch_signals, serving, shutdown_bound(config), root, received)
                with serving:
                    async with trio.open_nursery() as server:
                        url = await server.start(
                            partial(_serve, app, config, None, sockets, layer=layer)
                        )
                        announce(url)
                nursery.cancel_scope.cancel()  # served: stop watching for signals

    try:
        trio.run(main)
    except BaseExceptionGroup as group:  # main's nursery wraps what serve raised
        raise lone_exception(group) from None
    finally:
        errorlog.removeFilter(_drop_running_on)


#: The scope key :class:`_MarkAnswered` sets once the app has sent a whole HTTP response.
_ANSWERED = "trioweb.answered"


@attrs.frozen
class _MarkAnswered:
    """An ASGI app that passes everything to ``app`` and marks an HTTP scope as answered once
    the app has sent the last part of the response body (for :class:`_OneLinePerRequest`)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marking_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                scope[_ANSWERED] = True
            await send(message)

        await self.app(scope, receive, marking_send)


class _OneLinePerRequest(HypercornLogger):
    """Hypercorn's logger, without the second access line that Hypercorn 0.18 writes, status
    ``-``, when an HTTP/1.1 stream closes while the response's end is being sent
    (pgjones/hypercorn#357). A request whose client left before the answer is still logged."""

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if response is None and request.get(_ANSWERED):
            await trio.lowlevel.checkpoint()
            return
        await super().access(request, response, request_time)


def _drop_running_on(record: logging.LogRecord) -> bool:
    """A logging filter: Hypercorn's own "Running on" line goes (run() prints its own, once)."""
    return not str(record.msg).startswith("Running on ")


def _signal_receiver(
    signals: tuple[signal.Signals, ...],
) -> AbstractContextManager[AsyncIterator[int]]:
    return trio.open_signal_receiver(*signals)


async def _watch_signals(
    serving: trio.CancelScope,
    bound: float,
    root: trio.lowlevel.Task,
    signals: AsyncIterator[int],
) -> None:
    """At the first signal, cancel ``serving`` (a graceful shutdown). If tasks under ``root`` are
    still running ``bound`` seconds later, or at a second signal, name them and exit the
    process with status 1."""
    await anext(signals)
    serving.cancel()
    log.info("shutting down (Ctrl+C again to quit at once)")
    with trio.move_on_after(bound) as timer:
        await anext(signals)
    if timer.cancelled_caught:
        log.error("the shutdown did not finish within %g s; exiting anyway", bound)
    else:
        log.error("interrupted during the shutdown; exiting at once")
    for task in stuck_tasks(root, exclude=trio.lowlevel.current_task()):
        log.error("this task would not end: %s", task)
    _hard_exit(1)


def _hard_exit(status: int) -> None:
    """End the process now, with ``status``, whatever its tasks do (after flushing the logs)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(status)
