"""The layer's worker: trioweb's replacement for ``hypercorn.trio.run.worker_serve`` (Hypercorn
0.18), with the same signature and the same parts (Hypercorn's ``Config``, ``Lifespan``,
``WorkerContext`` and protocol classes). HTTP/3 (``quic_bind``) is not covered: trioweb serves
it with stock Hypercorn.

What it does differently, and why:

* **Its own accept loop** (one task per listening socket) that keeps each accepted socket's
  stdlib object, for the connections' non-blocking sends (:mod:`._connection`), and starts one
  :class:`~._connection.Connection` task per client in the connections' nursery. A connection's
  task contains its own errors: none reaches that nursery (pgjones/hypercorn#225, #203).
* **The lifespan scope says who serves**: it carries the ``trioweb.layer`` extension, so a
  trioweb app can tell it has the layer's protections (it warns when it has not).
* **A shutdown that ends** (Ctrl+C, SIGTERM, ``shutdown_trigger``, or Hypercorn's
  ``max_requests``): stop accepting; set Hypercorn's ``context.terminated``, on which every
  connection closes when idle and says ``going_away`` (1001) to its websockets; wait up to
  ``graceful_timeout`` for the connections to end; then hang up on the rest (their sockets close
  at once, which wakes every send still waiting, shielded or not) and cancel their tasks; then
  the lifespan's shutdown. Stock cancels at the deadline too, but its sends are shielded: a
  client that stopped reading keeps the process alive for good.
"""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
import ssl
from collections.abc import Awaitable, Callable
from random import randint
from typing import Any

import attrs
import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper
from hypercorn.utils import repr_socket_addr

from .._servedby import LAYER
from ._connection import Connection, Shared
from ._keepalive import KeepAlive
from ._limits import Limits

log = logging.getLogger("trioweb.layer")

#: accept() failing for want of resources: wait a little, as trio's serve_listeners does.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_RESOURCE_PAUSE = 0.100


async def worker_serve(
    app: AppWrapper,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: Callable[..., Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` (wrapped as Hypercorn wraps it) with ``config`` until ``shutdown_trigger``
    returns (or Hypercorn's ``max_requests`` is reached), then shut down gracefully; as
    Hypercorn's ``worker_serve``. ``task_status.started`` gets the bound URLs once the app's
    lifespan has started and the sockets listen (on ``sockets`` if given, else on new ones,
    closed at the end). Raises what Hypercorn's raises (``LifespanFailureError``,
    ``LifespanTimeoutError``, ``OSError``), in exception groups."""
    config.set_statsd_logger_class(StatsdLogger)
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(_MarkLayer(app), config, lifespan_state)
    max_requests = None
    if config.max_requests is not None:
        max_requests = config.max_requests + randint(0, config.max_requests_jitter)
    limits = Limits.of(app, config)
    context = _Context(max_requests, limits)
    shared = Shared(app, config, context, lifespan_state, limits)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        own_sockets = sockets is None
        if sockets is None:
            sockets = config.create_sockets()
            for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
                sock.listen(config.backlog)
        try:
            async with trio.open_nursery() as connections:
                await _serve_until_shutdown(
                    shared, sockets, connections, shutdown_trigger, task_status
                )
        finally:
            if own_sockets:
                for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
                    sock.close()
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


class _Context(WorkerContext):
    """Hypercorn's worker context, carrying the worker's one keep-alive (:mod:`._keepalive`) to
    its websocket streams."""

    def __init__(self, max_requests: int | None, limits: Limits) -> None:
        super().__init__(max_requests)
        interval = limits.ping_interval
        self.keepalive = None if interval is None else KeepAlive(interval, limits.ping_timeout)


async def _serve_until_shutdown(
    shared: Shared,
    sockets: Sockets,
    connections: trio.Nursery,
    shutdown_trigger: Callable[..., Awaitable[None]] | None,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """Accept connections into ``connections`` until shutdown, then end them gracefully."""
    config, context = shared.config, shared.context
    assert isinstance(context, _Context)
    try:
        async with trio.open_nursery() as accepting:
            ssl_context = config.create_ssl_context()
            binds = []
            for secure, socks in (
                (True, sockets.secure_sockets),
                (False, sockets.insecure_sockets),
            ):
                for sock in socks:
                    context_ = ssl_context if secure else None
                    accepting.start_soon(_accept, sock, context_, shared, connections)
                    bind = f"{'https' if secure else 'http'}://{_name(sock)}"
                    binds.append(bind)
                    await config.log.info(f"Running on {bind} (CTRL + C to quit)")
            task_status.started(binds)
            if context.keepalive is not None:  # pings stop when the shutdown begins
                accepting.start_soon(context.keepalive.run)
            accepting.start_soon(shared.idle.run)
            waits: list[Callable[[], Awaitable[object]]] = [context.terminate.wait]
            if shutdown_trigger is not None:
                waits.append(shutdown_trigger)
            for wait in waits:
                accepting.start_soon(_cancel_after, wait, accepting.cancel_scope)
    except BaseExceptionGroup as group:
        # As stock: a Ctrl+C that reaches the worker as KeyboardInterrupt (no signal handler,
        # such as under trio.run directly) is a graceful shutdown.
        _, rest = group.split(KeyboardInterrupt)
        if rest is not None:
            raise rest from None
    finally:
        await context.terminated.set()
        for connection in list(shared.live):  # idle ones close now, busy ones go away
            if connection.busy:
                connections.start_soon(connection.go_away)
            else:
                connection.hang_up()
        try:
            with trio.move_on_after(config.graceful_timeout):
                if shared.live:
                    shared.drained = trio.Event()
                    await shared.drained.wait()
        finally:
            for connection in list(shared.live):
                connection.hang_up(abort=True)
            connections.cancel_scope.cancel()


async def _cancel_after(wait: Callable[[], Awaitable[object]], scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()


async def _accept(
    sock: stdlib_socket.socket,
    ssl_context: ssl.SSLContext | None,
    shared: Shared,
    connections: trio.Nursery,
) -> None:
    """Accept clients on the listening ``sock`` until cancelled, one task each."""
    sock.setblocking(False)
    while True:
        try:
            raw, _ = sock.accept()
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        except OSError as error:
            if error.errno not in _RESOURCE_ERRORS:
                continue  # the client gave up (ECONNABORTED...): next one
            log.error(
                "cannot accept connections: %s; retrying in %g s (raise the process's limit"
                " on open files, or serve fewer clients per worker)",
                error,
                _RESOURCE_PAUSE,
            )
            await trio.sleep(_RESOURCE_PAUSE)
            continue
        raw.setblocking(False)
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
        if ssl_context is not None:
            stream = trio.SSLStream(stream, ssl_context, server_side=True, https_compatible=True)
        connections.start_soon(Connection(shared, stream, raw).run)
        await trio.lowlevel.checkpoint()


def _name(sock: stdlib_socket.socket) -> str:
    return repr_socket_addr(sock.family, sock.getsockname())


@attrs.frozen
class _MarkLayer:
    """The app, called with the ``trioweb.layer`` extension in its lifespan scope."""

    app: AppWrapper

    async def __call__(
        self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any
    ) -> None:
        marked: Any = {**scope, "extensions": {**(scope.get("extensions") or {}), LAYER: {}}}
        await self.app(marked, receive, send, sync_spawn, call_soon)
