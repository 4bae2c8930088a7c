"""Serving an app on Hypercorn's trio worker, from Python (``serve``, ``app.run``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from ._types import ASGIApp


def hypercorn_config(
    host: str = "127.0.0.1", port: int = 5000, config: HypercornConfig | None = None
) -> HypercornConfig:
    """A Hypercorn config bound to ``host:port`` (``config``, if given, is copied, not changed)."""
    result = HypercornConfig()
    if config is not None:
        result.__dict__.update(config.__dict__)
    result.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    return result


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
    else (TLS, timeouts, logging); ``host``/``port`` replace its ``bind``. Raises if
    ``before_serving`` fails.
    """
    cfg = hypercorn_config(host, port, config)
    async with trio.open_nursery() as nursery:
        framework: Any = app  # hypercorn's types spell out every ASGI message
        binds = await nursery.start(
            partial(hypercorn_serve, framework, cfg, shutdown_trigger=shutdown_trigger)
        )
        task_status.started(binds[0])


def run(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Serve ``app`` in this process until Ctrl+C, printing the URL; returns after shutdown."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, app, host=host, port=port))
            print(f"trioweb: serving on {url} (Ctrl+C to quit)", file=sys.stderr, flush=True)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        print("trioweb: stopped", file=sys.stderr, flush=True)
