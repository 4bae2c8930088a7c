"""Serving an app on Hypercorn's trio worker, from Python (``serve``, ``app.run``).

:func:`serve` owns one Hypercorn worker inside the caller's task tree. Rules:

* The bound URL is reported (``task_status.started``) only once Hypercorn listens *and* the app's
  ``before_serving`` functions have succeeded; a failed startup is raised, never reported as
  started.
* Cancelling :func:`serve` is a graceful shutdown, as a ``shutdown_trigger`` is: Hypercorn stops
  accepting, gives open connections ``graceful_timeout`` seconds, then the lifespan runs
  ``after_serving`` and cancels the background tasks; only then does ``Cancelled`` propagate.
  That part runs shielded, bounded by Hypercorn's ``graceful_timeout`` and ``shutdown_timeout``.
* A lifespan failure that the app reports (``before_serving`` or ``after_serving`` raised) is
  raised as :class:`~trioweb.LifespanError`, the error the test client raises for it.

:func:`run` serves in a fresh ``trio.run`` and turns SIGINT (Ctrl+C) and SIGTERM into that graceful
shutdown.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.utils import LifespanFailureError

from ._errors import LifespanError, lone_exception
from ._types import ASGIApp, Message, Receive, Scope, Send


def hypercorn_config(
    host: str = "127.0.0.1", port: int = 5000, config: HypercornConfig | None = None
) -> HypercornConfig:
    """A Hypercorn config bound to ``host:port`` (``config``, if given, is copied, not changed)."""
    result = HypercornConfig()
    if config is not None:
        result.__dict__.update(config.__dict__)
    result.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    return result


#: Seconds a shutdown may take beyond Hypercorn's ``graceful_timeout`` (for ``after_serving``)
#: before it is cut short.
SHUTDOWN_MARGIN = 10.0


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    config: HypercornConfig | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with Hypercorn's trio worker until cancelled or ``shutdown_trigger``
    returns.

    ``await nursery.start(serve, app, port=0)`` returns the bound URL, such as
    ``"http://127.0.0.1:41233"``, once the app's ``before_serving`` functions have run and the
    socket accepts connections. ``config`` is a :class:`hypercorn.config.Config` for everything
    else (TLS, timeouts, logging); ``host``/``port`` replace its ``bind``.

    Cancellation, or ``shutdown_trigger`` returning, shuts down gracefully before this returns
    (or ``Cancelled`` propagates): open connections get Hypercorn's ``graceful_timeout``, then
    ``after_serving`` runs and background tasks are cancelled; after
    ``graceful_timeout + SHUTDOWN_MARGIN`` seconds (13 by default) the shutdown is cut short. Raises
    :class:`~trioweb.LifespanError` if a ``before_serving`` function fails (from
    ``nursery.start``) or an ``after_serving`` function does, and ``OSError`` if it cannot
    listen (the port is taken, say). A single error is raised as is, not in a group.
    """
    cfg = hypercorn_config(host, port, config)
    watched = _LifespanWatch(app)
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(_serve_shielded_once_started, watched, cfg, stop.wait)
            if watched.failure is not None:
                # Hypercorn listens even when startup failed; the failure is on its way out of
                # the worker and cancels this wait.
                await trio.sleep_forever()
            task_status.started(binds[0])
            try:
                if shutdown_trigger is None:
                    await trio.sleep_forever()
                else:
                    await shutdown_trigger()
            finally:
                stop.set()
    except BaseExceptionGroup as group:
        # Hypercorn's nurseries nest the error in groups: raise what the caller can act on.
        _, rest = group.split((LifespanFailureError, trio.Cancelled))
        if watched.failure is not None and rest is None:
            raise watched.failure from None
        error = lone_exception(group)
        if isinstance(error, Exception) and not isinstance(error, ExceptionGroup):
            raise error from None  # such as OSError when the port is taken
        raise


async def _serve_shielded_once_started(
    app: ASGIApp,
    config: HypercornConfig,
    shutdown_trigger: Callable[[], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """Hypercorn's ``serve``, cancellable while starting, shielded once it listens (it then
    stops only by ``shutdown_trigger``, gracefully)."""
    with trio.CancelScope() as scope:

        async def trigger() -> None:
            await shutdown_trigger()
            # Shielded, so bound it: connections get graceful_timeout, the lifespan the rest.
            scope.deadline = trio.current_time() + config.graceful_timeout + SHUTDOWN_MARGIN

        framework: Any = app  # hypercorn's types spell out every ASGI message
        await hypercorn_serve(
            framework,
            config,
            shutdown_trigger=trigger,
            task_status=_ShieldOnStarted(scope, task_status),
            mode="asgi",
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


def run(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Serve ``app`` in this process until Ctrl+C or SIGTERM; blocks, and returns after the
    graceful shutdown (a second Ctrl+C interrupts that with ``KeyboardInterrupt``).

    Call it from the main thread (it handles signals). Prints the URL, then ``trioweb: stopped``,
    to stderr; logs to stderr unless logging is already configured. Raises
    :class:`~trioweb.LifespanError` if ``before_serving`` or ``after_serving`` fails, and
    ``OSError`` if it cannot listen on ``host:port``.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = HypercornConfig()
    config.errorlog = logging.getLogger("hypercorn.error")  # through logging: printed once

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(_cancel_on_signal, nursery.cancel_scope)
            url = await nursery.start(partial(serve, app, host=host, port=port, config=config))
            print(f"trioweb: serving on {url} (Ctrl+C to quit)", file=sys.stderr, flush=True)

    try:
        trio.run(main)
    except BaseExceptionGroup as group:  # main's nursery wraps what serve raised
        raise lone_exception(group) from None
    print("trioweb: stopped", file=sys.stderr, flush=True)


async def _cancel_on_signal(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel ``scope`` at the first SIGINT or SIGTERM (then signals act as usual again)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        await anext(signals)
    scope.cancel()
