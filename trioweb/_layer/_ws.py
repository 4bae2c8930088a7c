"""The websocket stream of the layer: Hypercorn 0.18's ``WSStream`` with its state machine kept,
and these deviations (issue 8), each answering what a client could do to stock:

* **Early frames are held, not refused.** A client may write its first frame with the handshake
  (pgjones/hypercorn#225): stock answered 400 while the app went on waiting, its handler and
  socket kept for good, and h11 then failed on the app's accept. Bytes that arrive before the
  app accepts are held, at most a message's worth (:attr:`Limits.max_message_size` plus one
  frame header), and parsed once it accepts; past that the handshake is refused with 400 and
  the app gets its disconnect (1009). A refused handshake (400, 404) ends the stream, so the
  connection closes (stock kept it open).
* **Protocol errors get a close frame** with RFC 6455's code (1002, 1007, 1009): stock dropped
  the TCP connection, and the client saw 1006.
* **The app hears the client's close code and reason** (stock: 1006, or 1000 after the app's
  own close). Without a close frame from the client it is 1006, or the code of the app's own
  close, or the code the server closed with (a protocol error, 1001 when going away).
* **Messages are bounded while they are read** (:mod:`._frames`: 1009 as soon as the declared
  size passes the limit, inflating with the same bound); compression is offered only when
  :attr:`Limits.compression` is on.
* **Dead peers** (:mod:`._keepalive`: one task per worker, not per connection): a connection
  that has received nothing for :attr:`Limits.ping_interval` seconds is pinged; if nothing comes
  back within :attr:`Limits.ping_timeout`, it is ended and the app gets its disconnect (1006),
  whether or not the handler is receiving.
* **Shutdown** (:meth:`going_away`): a close frame 1001 and the disconnect (1001) to the app.
* **A handshake header Hypercorn cannot decode gets 400.** Its handshake decodes
  ``Connection``, ``Sec-WebSocket-Extensions``, ``Sec-WebSocket-Protocol`` and the path as
  ASCII (wsproto's ``split_comma_header``), and ``Host`` as UTF-8 when ``server_names`` is
  set: a byte over 127 in one (``ch\xe4t``) raised ``UnicodeDecodeError`` out of the
  connection, with no answer (no upstream issue found). The layer answers 400 naming what it
  could not read, logs it at INFO (:func:`._http.refuse_undecodable`), and the connection
  closes.
* **A direct path** for a read that is one small whole frame, and for an uncompressed message
  out, while wsproto is between messages (:mod:`._frames`): wsproto's parse costs 9.5 µs.

The rule for the app's disconnect: it is delivered once (:meth:`_disconnect`), whichever of
these ends the stream first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.protocol.events import Body, Data, EndData, Event, Request, Response, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState
from hypercorn.protocol.ws_stream import WSStream as _StockWSStream
from hypercorn.typing import AppWrapper, TaskGroup, WorkerContext
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
)
from wsproto.extensions import Extension
from wsproto.handshake import server_extensions_handshake

from ._frames import BoundedDeflate, MessageLimit, frame, parse_small
from ._http import not_ascii, refuse_undecodable
from ._keepalive import KeepAlive
from ._limits import Limits

log = logging.getLogger("trioweb.layer")

#: The longest frame header (2 bytes, 8 of length, 4 of mask): the slack early bytes get.
MAX_FRAME_HEADER = 14
#: The payload of the layer's keep-alive pings.
PING_PAYLOAD = b"trioweb"
#: The handshake headers Hypercorn decodes as ASCII.
ASCII_HEADERS = (b"connection", b"sec-websocket-extensions", b"sec-websocket-protocol")


class WSStream(_StockWSStream):
    """A websocket stream (HTTP/1.1 upgrade or HTTP/2 extended CONNECT) under ``limits``."""

    # Slots for what this class adds: stock's instance dict stays the size it is (measured: the
    # added attributes made it grow past its next size, +1.6 KiB per idle websocket).
    __slots__ = (
        "_close_code",
        "_close_reason",
        "_direct_in",
        "_direct_out",
        "_disconnected",
        "_early",
        "_going_away",
        "_ka_pinged_at",
        "_ka_quiet_since",
        "_ka_seen",
        "_keepalive",
        "_own_keepalive",
        "_parts",
        "_received",
        "_replaying",
        "limits",
    )

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        task_group: TaskGroup,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        stream_id: int,
        *,
        limits: Limits,
    ) -> None:
        super().__init__(app, config, context, task_group, ssl, client, server, send, stream_id)
        self.limits = limits
        self._early = bytearray()  # bytes before the app's accept
        self._replaying: trio.Event | None = None  # set while early bytes are being parsed
        self._parts: list[Any] = []  # the pieces of the message being received
        self._close_code = 1006  # what the app's disconnect will say
        self._close_reason = ""
        self._disconnected = False  # the app has had its disconnect
        self._going_away = False
        self._received = 0  # reads since accept: the keep-alive's sign of life
        self._keepalive: KeepAlive | None = None  # the one looking after this stream
        self._own_keepalive: trio.CancelScope | None = None  # a keep-alive of its own, if any
        self._ka_seen = 0
        self._ka_quiet_since = 0.0
        self._ka_pinged_at: float | None = None
        self._direct_in = False  # whether reads may take the direct path (set at accept)
        self._direct_out = False  # whether messages out may

    # The server's side ----------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Handle what the protocol passes on: the request, body/data bytes, the stream's end.
        A checkpoint; waits while the app's queue is full (backpressure)."""
        if isinstance(event, (Body, Data)):
            await self.receive(event.data)
        elif isinstance(event, StreamClosed):
            self.closed = True
            self._stop_keepalive()
            await self._disconnect(self._close_code, self._close_reason)
        elif isinstance(event, Request) and not self.closed:
            undecodable = not_ascii(event, ASCII_HEADERS, bool(self.config.server_names))
            if undecodable is None:
                await super().handle(event)
            else:
                await refuse_undecodable(self, "websocket handshake", undecodable)
            if self.closed:  # stock refused the handshake (400, 404): end the stream too
                await self.send(StreamClosed(stream_id=self.stream_id))
        else:
            await super().handle(event)

    async def receive(self, data: bytes) -> None:
        """Bytes from the client on this stream (the HTTP/1.1 protocol calls it directly once
        the connection is a websocket). A checkpoint; waits while the app's queue is full."""
        if self._replaying is not None:
            await self._replaying.wait()  # early bytes first, in order
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        state = self.state
        if state is ASGIWebsocketState.CONNECTED and self._direct_in:
            decoder = self.connection._proto._frame_decoder
            if (
                decoder.header is None
                and not decoder.buffer.buffer
                and self.connection._proto._message_decoder.opcode is None
            ):
                payload = parse_small(data)
                if payload is not None:
                    self._received += 1
                    if isinstance(payload, str):
                        await self.app_put({"type": "websocket.receive", "text": payload})  # type: ignore[misc]
                    else:
                        await self.app_put({"type": "websocket.receive", "bytes": payload})  # type: ignore[misc]
                    return
        if state is ASGIWebsocketState.CONNECTED or state is ASGIWebsocketState.CLOSED:
            self._received += 1
            self.connection.receive_data(data)
            await self._handle_events()
        elif state is ASGIWebsocketState.HANDSHAKE:
            self._early += data
            if len(self._early) > self.limits.max_message_size + MAX_FRAME_HEADER:
                await self._refuse_early()
            else:
                await trio.lowlevel.checkpoint()
        else:  # the app refused the handshake with a response: the bytes have no reader
            await trio.lowlevel.checkpoint()

    async def _refuse_early(self) -> None:
        log.info(
            "refused the websocket handshake of %s: it sent more than %d bytes before the app"
            " accepted (WEBSOCKET_MAX_MESSAGE_SIZE)",
            self.client,
            self.limits.max_message_size,
        )
        self.closed = True
        self._early = bytearray()
        await self._send_error_response(400)
        await self._disconnect(1009, "message too big before the handshake completed")
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                self._parts.append(event.data)
                if event.message_finished:
                    parts, self._parts = self._parts, []
                    if isinstance(event, BytesMessage):
                        message = {"type": "websocket.receive", "bytes": b"".join(parts)}
                    else:
                        message = {"type": "websocket.receive", "text": "".join(parts)}
                    await self.app_put(message)  # type: ignore[misc]
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                await self._closed_by(event)
                return
            else:
                assert isinstance(event, Pong)  # a sign of life, counted when it was read

    async def _closed_by(self, event: CloseConnection) -> None:
        state = self.connection.state
        if state is ConnectionState.REMOTE_CLOSING:  # the client's close frame: answer it
            await self._send_wsproto_event(event.response())
        elif state is not ConnectionState.CLOSED:  # wsproto could not parse: fail the connection
            log.info(
                "closed the websocket of %s with %d: %s", self.client, event.code, event.reason
            )
            if state is ConnectionState.OPEN:
                await self._send_wsproto_event(
                    CloseConnection(code=event.code, reason=event.reason)
                )
        self._close_code, self._close_reason = int(event.code), event.reason or ""
        await self.send(StreamClosed(stream_id=self.stream_id))

    # The app's side -------------------------------------------------------------------------------

    async def app_send(self, message: Any) -> None:
        """What the app sends (``None`` once it has ended); as stock, except that messages after
        :meth:`going_away` go nowhere."""
        if self._going_away:
            await trio.lowlevel.checkpoint()
            return
        if message is None:  # the app has ended: no disconnect for it any more
            self._disconnected = True
        elif (
            self._direct_out
            and message["type"] == "websocket.send"
            and self.state is ASGIWebsocketState.CONNECTED
            and self.connection.state is ConnectionState.OPEN
            and not self.closed
        ):
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if isinstance(data, (bytes, str)):
                await self.send(Data(stream_id=self.stream_id, data=frame(data)))
                return
        if (
            message is not None
            and message["type"] == "websocket.close"
            and self.state is ASGIWebsocketState.CONNECTED
        ):
            self._close_code = int(message.get("code", 1000))
            self._close_reason = message.get("reason") or ""
        await super().app_send(message)

    async def _accept(self, message: Any) -> None:
        self.state = ASGIWebsocketState.CONNECTED
        offers, self.handshake.extensions = self.handshake.extensions, None  # negotiated here
        status_code, headers, _ = self.handshake.accept(
            message.get("subprotocol"), message.get("headers", [])
        )
        extensions: list[Extension] = []
        if offers is not None and self.limits.compression:
            deflate = BoundedDeflate(self.limits.max_message_size)
            accepted = server_extensions_handshake(offers, [deflate])
            if accepted is not None:
                headers.append((b"sec-websocket-extensions", accepted))
                extensions.append(deflate)
        self._direct_out = not extensions
        self._direct_in = self.limits.max_message_size >= 125
        extensions.append(MessageLimit(self.limits.max_message_size))
        self.connection = Connection(ConnectionType.SERVER, extensions)
        if self._early:  # held until parsed (readers wait), parsed once the 101 is out
            self._replaying = trio.Event()
        try:
            await self.send(
                Response(stream_id=self.stream_id, status_code=status_code, headers=headers)
            )
            await self.config.log.access(
                self.scope, {"status": status_code, "headers": []}, time.time() - self.start_time
            )
        finally:
            if self._replaying is not None:  # also if the send failed: the readers must go on
                self.task_group.spawn(self._replay)
        if self.limits.ping_interval is not None:
            self._start_keepalive(self.limits.ping_interval)

    async def _replay(self) -> None:
        """Parse the bytes that came before the accept (in a task of its own: the app's queue
        may fill before they are all parsed, and the app's own accept must not wait on it)."""
        assert self._replaying is not None
        try:
            data, self._early = bytes(self._early), bytearray()
            if not self.closed:
                self.connection.receive_data(data)
                await self._handle_events()
        finally:
            self._replaying.set()
            self._replaying = None

    async def _disconnect(self, code: int, reason: str) -> None:
        """Deliver the app's ``websocket.disconnect``, once (and only to an app that runs)."""
        if self._disconnected or self.app_put is None:
            await trio.lowlevel.checkpoint()
            return
        self._disconnected = True
        await self.app_put({"type": "websocket.disconnect", "code": code, "reason": reason})

    # Keep-alive and shutdown ----------------------------------------------------------------------

    def _start_keepalive(self, interval: float) -> None:
        keepalive = getattr(self.context, "keepalive", None)
        if keepalive is None:  # not served by the layer's worker: a keep-alive of its own
            keepalive = KeepAlive(interval, self.limits.ping_timeout)
            self._own_keepalive = trio.CancelScope()
            self.task_group.spawn(self._run_own_keepalive, keepalive, self._own_keepalive)
        self._keepalive = keepalive
        keepalive.enroll(self)

    @staticmethod
    async def _run_own_keepalive(keepalive: KeepAlive, scope: trio.CancelScope) -> None:
        with scope:
            await keepalive.run()

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.withdraw(self)
        if self._own_keepalive is not None:
            self._own_keepalive.cancel()

    def _ka_ping(self) -> None:
        self.task_group.spawn(self._ping)

    def _ka_dead(self) -> None:
        self.task_group.spawn(self._end_dead)

    async def _ping(self) -> None:
        """Ping the peer for the keep-alive (unless the stream has ended meanwhile)."""
        if self.closed or self._going_away or self.state is not ASGIWebsocketState.CONNECTED:
            await trio.lowlevel.checkpoint()
            return
        await self._send_wsproto_event(Ping(payload=PING_PAYLOAD))

    async def _end_dead(self) -> None:
        """End the stream whose peer answered no ping (the keep-alive's verdict)."""
        self._stop_keepalive()
        if self.closed or self._going_away:
            await trio.lowlevel.checkpoint()
            return
        log.info(
            "closed the websocket of %s: nothing came back within %g s of a ping"
            " (WEBSOCKET_PING_TIMEOUT)",
            self.client,
            self.limits.ping_timeout,
        )
        self._close_code, self._close_reason = 1006, "no pong in time"
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def going_away(self) -> None:
        """Close with 1001 "going away" and tell the app (code 1001), for a server shutting
        down. A handshake the app has not answered yet gets HTTP 503. Blocks while the close
        frame is sent and while the app's queue is full; after it, the app's messages go
        nowhere. Does nothing (but checkpoint) for a stream that is closing already."""
        if self.closed or self._going_away or self.state not in _OPEN_STATES:
            await trio.lowlevel.checkpoint()
            return
        self._going_away = True
        self._stop_keepalive()
        self._close_code, self._close_reason = 1001, "going away"
        if self.state is ASGIWebsocketState.HANDSHAKE:
            self.closed = True
            await self._send_error_response(503)
            await self._disconnect(1001, "going away")
            await self.send(StreamClosed(stream_id=self.stream_id))
            return
        self.state = ASGIWebsocketState.CLOSED
        await self._send_wsproto_event(CloseConnection(code=1001, reason="going away"))
        await self._disconnect(1001, "going away")
        await self.send(EndData(stream_id=self.stream_id))


_OPEN_STATES = (ASGIWebsocketState.HANDSHAKE, ASGIWebsocketState.CONNECTED)
