"""The per-stream protocol fixes of the connection layer (issue 8): Hypercorn 0.18's protocol
classes, subclassed so that their h11, h2 and wsproto state machines stay, with the deviations
each module names at its top:

* :mod:`._h11` and :mod:`._h2`: the connections, creating the layer's websocket streams (and on
  HTTP/1.1 a direct path for a websocket's bytes);
* :mod:`._ws`: the websocket stream: early frames held until the app accepts, close frames with
  RFC 6455's codes for protocol errors, the client's close code and reason to the app, keep-alive
  pings, ``going_away`` at shutdown;
* :mod:`._frames`: a message's size bounded while it is read, inflating included.

:class:`ProtocolWrapper` is what the server side (:mod:`._connection`) creates for each
connection: Hypercorn's signature plus the app's :class:`~._limits.Limits`, and
:meth:`ProtocolWrapper.going_away` for shutdown. It is stock's wrapper (ALPN, h2c upgrade,
prior knowledge) with the layer's classes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.typing import AppWrapper, ConnectionState, TaskGroup, WorkerContext

from ._h2 import H2Protocol
from ._h11 import H11Protocol
from ._limits import Limits
from ._ws import WSStream


class ProtocolWrapper:
    """One connection's protocol: HTTP/1.1 (which may become HTTP/2 or a websocket) or, when
    ALPN chose it, HTTP/2."""

    __slots__ = ("_args", "limits", "protocol")

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        task_group: TaskGroup,
        state: ConnectionState,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        alpn_protocol: str | None = None,
        *,
        limits: Limits,
    ) -> None:
        self._args = (app, config, context, task_group, state, ssl, client, server, send)
        self.limits = limits
        self.protocol: H11Protocol | H2Protocol
        if alpn_protocol == "h2":
            self.protocol = H2Protocol(*self._args, limits=limits)
        else:
            self.protocol = H11Protocol(*self._args, limits=limits)

    async def initiate(self) -> None:
        """Start the protocol (HTTP/2 sends its settings). A checkpoint."""
        await self.protocol.initiate()

    async def handle(self, event: Event) -> None:
        """Handle the server's ``RawData`` and ``Closed`` events; switches to HTTP/2 when the
        client asks for it (h2c upgrade, or prior knowledge). A checkpoint."""
        try:
            await self.protocol.handle(event)
        except H2ProtocolAssumedError as error:
            self.protocol = H2Protocol(*self._args, limits=self.limits)
            await self.protocol.initiate()
            await self.protocol.handle(RawData(data=error.data))  # the preface, and what followed
        except H2CProtocolRequiredError as error:
            self.protocol = H2Protocol(*self._args, limits=self.limits)
            await self.protocol.initiate(error.headers, error.settings)
            await self.protocol.handle(RawData(data=error.data))  # h2 takes b"" as nothing

    async def going_away(self) -> None:
        """For a server shutting down: close every websocket of the connection with 1001
        "going away" and deliver the disconnect (code 1001) to its app; a handshake its app has
        not answered gets HTTP 503. HTTP requests are left to finish.

        Blocks while the close frames are sent and the disconnects queued (the server's send
        timeout and its shutdown deadline bound that); the websockets of an HTTP/2 connection
        are closed concurrently. A checkpoint.
        """
        protocol = self.protocol
        if isinstance(protocol, H11Protocol):
            streams = [protocol.stream] if isinstance(protocol.stream, WSStream) else []
        else:
            streams = [s for s in protocol.streams.values() if isinstance(s, WSStream)]
        if not streams:
            await trio.lowlevel.checkpoint()
            return
        if len(streams) == 1:
            await streams[0].going_away()
            return
        async with trio.open_nursery() as nursery:
            for stream in streams:
                nursery.start_soon(stream.going_away)
