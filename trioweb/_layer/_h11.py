"""HTTP/1.1 for the layer: Hypercorn 0.18's ``H11Protocol`` with its h11 state machine kept,
and these deviations (issue 8):

* Websocket streams are the layer's (:class:`~._ws.WSStream`, under the app's limits).
* Once the connection is a websocket, its bytes go straight to the stream and the stream's
  bytes straight to the server: stock passes each frame through h11's event loop both ways
  (an ``H11WSConnection`` shim, an event object, an ``isinstance`` chain), 5.6 µs per echoed
  message, measured.
* Bytes h11 cannot parse are answered as stock answers them (400, or 431 for oversized headers,
  when no response has started; then the connection closes, also for bytes after a response
  to ``Connection: close``, pgjones/hypercorn#203), and logged once at INFO.
* **A response goes out in one write.** The head of a final response (status 200 and up) is
  held until the stream's next event, and leaves with its first body bytes (or the end of an
  empty body, or before whatever comes next): stock writes the head, the body and the end of
  the message separately, three ``send`` system calls per response (82 of ~830 µs per
  request on a profiled keep-alive loop). The ASGI spec asks for exactly this ("the protocol
  server must not start sending the response to the client until it has received at least one
  response body event"). An app that waits between its response's start and its first body
  message (a streamed response whose first chunk takes time) holds its head back that long.
* A websocket's frames on a connection that has hung up raise
  :class:`~._apps.ConnectionBroken` (the app's send fails, so a handler that only sends learns
  that its client left); an HTTP response then ends quietly, as in stock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.protocol.events import Data, Request
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import STREAM_ID, H11WSConnection
from hypercorn.protocol.h11 import H11Protocol as _StockH11Protocol
from hypercorn.typing import AppWrapper, ConnectionState, TaskGroup, WorkerContext

from ._apps import ConnectionBroken
from ._http import HTTPStream
from ._limits import Limits
from ._ws import WSStream

log = logging.getLogger("trioweb.layer")


class _Connection(h11.Connection):
    """h11's connection, logging (once, at INFO) what it cannot parse."""

    client: Any = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            log.info("closing the connection of %s: it broke HTTP/1.1 (%s)", self.client, error)
            raise


class H11Protocol(_StockH11Protocol):
    """One HTTP/1.1 connection (and the websocket it may become)."""

    # Slots for what this class adds: stock's instance dict stays its size.
    __slots__ = ("_head", "_hold", "_send_out", "_websocket", "limits")

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        task_group: TaskGroup,
        connection_state: ConnectionState,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        *,
        limits: Limits,
    ) -> None:
        super().__init__(
            app, config, context, task_group, connection_state, ssl, client, server, send
        )
        self.limits = limits
        self.connection = _Connection(
            h11.SERVER, max_incomplete_event_size=config.h11_max_incomplete_size
        )
        self.connection.client = client
        self._websocket: WSStream | None = None  # the stream, once the connection is one
        self._head = b""  # a response's head, until its body's first bytes go out with it
        self._hold = False  # while h11 writes a response's head
        self._send_out = send
        self.send = self._send_holding

    async def _send_holding(self, event: Event) -> None:
        """The protocol's ``send``: a held response head goes out first, in the same write
        as the bytes that follow it."""
        if self._hold:  # a response's head: it waits for what follows
            assert type(event) is RawData, event
            self._head = event.data
            await trio.lowlevel.checkpoint_if_cancelled()
            return
        head = self._head
        if head:
            self._head = b""
            if type(event) is RawData:
                event = RawData(data=head + event.data)
            else:
                await self._send_out(RawData(data=head))
        await self._send_out(event)

    async def _send_h11_event(self, event: Any) -> None:
        """Stock's; a final response's head is held (see the module's notes)."""
        self._hold = type(event) is h11.Response
        try:
            await super()._send_h11_event(event)
        finally:
            self._hold = False

    async def handle(self, event: Event) -> None:
        """Handle the server's ``RawData`` and ``Closed``; a checkpoint."""
        websocket = self._websocket
        if websocket is not None and type(event) is RawData:
            await websocket.receive(event.data)
        else:
            await super().handle(event)

    async def stream_send(self, event: StreamEvent) -> None:
        """What a stream sends; a websocket's frames go out as they are (and raise
        :class:`~._apps.ConnectionBroken` once the connection has hung up: the app learns
        that its client left). Anything else, such as an HTTP response, ends quietly then,
        as in stock: the reader ends the connection and the app gets its disconnect."""
        if type(event) is Data:
            await self.send(RawData(data=event.data))
        else:
            with contextlib.suppress(ConnectionBroken):
                await super().stream_send(event)

    async def _create_stream(self, request: h11.Request) -> None:
        # Stock's, with the layer's websocket stream; the upgrade test is stock's too.
        upgrade = connection = ""
        for name, value in request.headers:
            if name == b"upgrade":
                upgrade = value.decode("latin1").strip()
            elif name == b"connection":
                connection = value.decode("latin1").strip()
        tokens = (token.strip() for token in connection.lower().split(","))
        if (
            "upgrade" in tokens
            and upgrade.lower() == "websocket"
            and request.method.upper() == b"GET"
        ):
            self.stream = WSStream(
                self.app,
                self.config,
                self.context,
                self.task_group,
                self.ssl,
                self.client,
                self.server,
                self.stream_send,
                STREAM_ID,
                limits=self.limits,
            )
            self.connection = H11WSConnection(self.connection)  # type: ignore[arg-type]
            # What came after the handshake in the same read goes to the stream first, in
            # order (stock's shim hands it on as the first Data event); then straight.
            self._websocket = self.stream
        else:
            self.stream = HTTPStream(
                self.app,
                self.config,
                self.context,
                self.task_group,
                self.ssl,
                self.client,
                self.server,
                self.stream_send,
                STREAM_ID,
            )
        if self.config.h11_pass_raw_headers:
            headers = request.headers.raw_items()
        else:
            headers = list(request.headers)
        await self.stream.handle(
            Request(
                stream_id=STREAM_ID,
                headers=headers,
                http_version=request.http_version.decode(),
                method=request.method.decode("ascii").upper(),
                raw_path=request.target,
                state=self.connection_state,
            )
        )
        self.keep_alive_requests += 1
        await self.context.mark_request()

    async def _close_stream(self) -> None:
        self._websocket = None
        await super()._close_stream()
