"""HTTP/2 for the layer: Hypercorn 0.18's ``H2Protocol`` with its h2 state machine kept, and
these deviations (issue 8):

* Websocket streams (RFC 8441's extended CONNECT) are the layer's (:class:`~._ws.WSStream`,
  under the app's limits).
* Data for a stream the server has finished with (its app answered before the request's end,
  or its websocket closed with 1009) is acknowledged and dropped: stock looks the stream up
  and raises ``KeyError``, which ends the connection with every stream on it
  (pgjones/hypercorn#329; the fix upstream, #312/#334, is not released).
* A send on a connection that has hung up ends quietly (:class:`~._apps.ConnectionBroken`, as
  stock does): an HTTP/2 websocket's frames go through the sender task, so its handler learns
  of a reset client from its disconnect, not from its send.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import h2.events
from hypercorn.config import Config
from hypercorn.events import Event
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import Request
from hypercorn.protocol.h2 import H2Protocol as _StockH2Protocol
from hypercorn.protocol.h2 import StreamBuffer
from hypercorn.typing import AppWrapper, ConnectionState, TaskGroup, WorkerContext
from hypercorn.utils import filter_pseudo_headers
from priority.priority import DuplicateStreamError

from ._apps import ConnectionBroken
from ._http import HTTPStream
from ._limits import Limits
from ._ws import WSStream


class H2Protocol(_StockH2Protocol):
    """One HTTP/2 connection and its streams."""

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

    async def stream_send(self, event: StreamEvent) -> None:
        """What a stream sends; once the connection has hung up it ends quietly, as in stock
        (the reader ends the connection and every stream's app gets its disconnect)."""
        with contextlib.suppress(ConnectionBroken):
            await super().stream_send(event)

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        # One at a time: an event may end a stream the next one is for.
        if not events:
            await super()._handle_events(events)
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
                await self._flush()
            else:
                await super()._handle_events([event])

    async def _create_stream(self, request: h2.events.RequestReceived) -> None:
        # Stock's, with the layer's websocket stream.
        method = "GET"
        raw_path = b""
        for name, value in request.headers:
            if name == b":method":
                method = value.decode("latin-1").upper()  # not ASCII: 400 (._http)
            elif name == b":path":
                raw_path = value
        stream_id = request.stream_id
        if method == "CONNECT":
            self.streams[stream_id] = WSStream(
                self.app,
                self.config,
                self.context,
                self.task_group,
                self.ssl,
                self.client,
                self.server,
                self.stream_send,
                stream_id,
                limits=self.limits,
            )
        else:
            self.streams[stream_id] = HTTPStream(
                self.app,
                self.config,
                self.context,
                self.task_group,
                self.ssl,
                self.client,
                self.server,
                self.stream_send,
                stream_id,
            )
        self.stream_buffers[stream_id] = StreamBuffer(self.context.event_class)
        try:
            self.priority.insert_stream(stream_id)
        except DuplicateStreamError:
            pass  # a PRIORITY frame came before the HEADERS frame
        else:
            self.priority.block(stream_id)
        await self.streams[stream_id].handle(
            Request(
                stream_id=stream_id,
                headers=filter_pseudo_headers(request.headers),
                http_version="2",
                method=method,
                raw_path=raw_path,
                state=self.connection_state,
            )
        )
        self.keep_alive_requests += 1
        await self.context.mark_request()
