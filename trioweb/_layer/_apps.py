"""The apps of one connection: Hypercorn's task group interface for the protocol classes
(``spawn_app``, ``spawn``), on the connection's nursery.

As stock (``hypercorn.trio.task_group``), each ASGI app call runs in a task of its own, fed
through a bounded memory channel; an app's error is logged as Hypercorn logs it. Deviations:
``put`` does not yield when the queue has room (4.3 µs per message, measured), a message for an
app that has ended is dropped instead of filling the queue and then blocking the reader, and a
connection whose last app ended while the protocol still counts it busy is hung up (stock's
WSStream leaves it open for good after answering an early frame with 400, issue 8).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.typing import AppWrapper

if TYPE_CHECKING:
    from ._connection import Connection

log = logging.getLogger("trioweb.layer")

#: The transport failing (a reset, a closed socket).
TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class ConnectionBroken(trio.BrokenResourceError):
    """A send on a connection that has hung up: a write failed (the client reset it), or it
    was closed for another reason. The websocket's app gets it from its send (the ASGI
    ``send`` raises, so a handler that only sends learns that its client left); HTTP
    responses and the protocols' own sends end quietly (see :mod:`._connection`)."""


@attrs.define(eq=False)
class TaskGroup:
    """Hypercorn's task group interface for the protocols (``spawn_app``, ``spawn``), on the
    connection's nursery."""

    nursery: trio.Nursery
    connection: Connection

    async def spawn_app(
        self,
        app: AppWrapper,
        config: Config,
        scope: Any,
        send: Callable[[Any], Awaitable[None]],
    ) -> Callable[[Any], Awaitable[None]]:
        """Start ``app`` on ``scope``; returns the ``put`` that queues a message for it.

        ``put`` tries ``send_nowait`` first: the memory channel's ``send`` always yields (4.3 µs
        per message, measured); ``put`` is a cancel point, and its caller, the reader, yields
        in every read. A message for an app that has ended is dropped (stock queues it, and
        then blocks the reader once the queue is full)."""
        to_app, from_server = trio.open_memory_channel[Any](config.max_app_queue_size)
        self.connection.apps += 1
        self.nursery.start_soon(_run_app, app, config, scope, from_server, send, self.connection)

        async def put(message: Any) -> None:
            await trio.lowlevel.checkpoint_if_cancelled()
            with contextlib.suppress(trio.BrokenResourceError):
                try:
                    to_app.send_nowait(message)
                except trio.WouldBlock:
                    await to_app.send(message)

        await trio.lowlevel.checkpoint_if_cancelled()
        return put

    def spawn(self, func: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Start a helper of the protocol (h2's sender, websocket pings); a transport error in
        it, once the connection has hung up, ends it quietly."""
        self.nursery.start_soon(_run_helper, self.connection, func, *args)


async def _run_app(
    app: AppWrapper,
    config: Config,
    scope: Any,
    from_server: trio.MemoryReceiveChannel[Any],
    send: Callable[[Any], Awaitable[None]],
    connection: Connection,
) -> None:
    """Run one ASGI app call; as stock's ``_handle``, an error is logged as Hypercorn logs it and
    ``send(None)`` tells the protocol the app is done."""
    try:
        await app(scope, from_server.receive, send, trio.to_thread.run_sync, trio.from_thread.run)
    except Exception as error:
        if connection.hung_up and isinstance(error, TRANSPORT_ERRORS):
            log.debug("the app's send failed after the connection closed: %r", error)
        else:
            await config.log.exception("Error in ASGI Framework")
    except BaseExceptionGroup as group:
        errors, rest = group.split(Exception)
        if errors is not None:
            await config.log.exception("Error in ASGI Framework")
        assert rest is not None
        raise rest from None
    finally:
        from_server.close()
        try:
            await send(None)  # a websocket's close frame: it has nowhere to go if broken
        except ConnectionBroken:
            pass
        finally:
            connection.apps -= 1
            if connection.apps == 0 and connection.busy:
                # The protocol neither recycled nor closed the connection once its last app
                # ended: Hypercorn's WSStream after answering an early frame with 400 leaves it
                # open for good (issue 8). Nothing can use it any more. (No race with a next
                # request: the protocol's Updated(idle=False) and its spawn_app do not yield.)
                connection.hang_up()


async def _run_helper(
    connection: Connection, func: Callable[..., Awaitable[object]], *args: Any
) -> None:
    try:
        await func(*args)
    except TRANSPORT_ERRORS:
        if not connection.hung_up:
            raise
