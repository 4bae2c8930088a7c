"""The websocket connection: Quart's API over ASGI, with Trio's cancellation for disconnects.

Rules this module keeps (see ARCHITECTURE.md, "Lifetimes follow the nursery tree"):

* ``receive()`` awaits the server's ASGI ``receive`` in the caller's own task: no task hop, lock
  or cancel scope per message. One task receives at a time (``trio.BusyResourceError``).
* A *listener* notices a disconnect while nobody is in ``receive()``: once the handler has
  stayed out of ``receive()`` for ``delay`` seconds, a task in the connection nursery awaits
  ASGI ``receive`` itself. While the app is serving, one :class:`DisconnectSweeper` task per
  app finds those connections (``receive()`` takes a websocket out of its set while it waits
  and puts it back after) and starts their listeners, so a connection that is idle in
  ``receive()`` or busy echoing costs no task at all. Served without a lifespan, each
  connection gets a sweeper of its own. Data it gets is queued (at most
  :data:`MAX_PENDING` messages, then it stops listening: backpressure) and handed to the next
  ``receive()`` in order. When ``receive()`` is called while a listener listens, it cancels
  the listener's wait and waits for the handover; this relies on ASGI ``receive`` being
  cancel-safe, as Hypercorn's (a trio memory channel) is.
* A disconnect, whoever sees it, records the close code and reason and cancels the handler's
  scope: the handler gets ``trio.Cancelled`` wherever it waits. After that, and after the
  handler's own ``close()``, ``receive``/``send`` raise :class:`~trioweb.WebsocketClosed`.
  Transport errors from the server's ``send`` count as a disconnect; they never leak.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, NoReturn, final

import trio
from werkzeug.datastructures import Headers
from werkzeug.exceptions import BadRequest

from . import _json
from ._errors import WebsocketClosed
from ._request import BaseRequest
from ._types import Message, Receive, Scope, Send

log = logging.getLogger("trioweb")

#: How many messages a listener queues for a handler that is not receiving before it stops
#: reading (and the server's own bounded queue then slows the client down).
MAX_PENDING = 16

_TRANSPORT_ERRORS = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.BusyResourceError,
    OSError,
)


class WebsocketState(enum.Enum):
    """Where a websocket is in its life; each state says what the handler may still do."""

    #: The client asked to connect. The handler may accept, or reject with an HTTP response
    #: (returning one, ``abort``, or ``close()``, which the server turns into a 403).
    CONNECTING = enum.auto()
    #: Accepted: messages flow both ways.
    CONNECTED = enum.auto()
    #: Rejected before accept with an HTTP response; no websocket ever existed.
    REJECTED = enum.auto()
    #: Closed by the client, by the handler, or by a broken transport.
    CLOSED = enum.auto()


_CONNECTING = WebsocketState.CONNECTING
_NO_SCOPE = trio.CancelScope()  # until the edge sets the real one; cancelling it does nothing


class _Nowhere(set["Websocket"]):
    """Where a websocket that no sweeper looks after reports its receives: it keeps nothing."""

    def add(self, item: Websocket) -> None:
        pass


_NOWHERE = _Nowhere()
_CONNECTED = WebsocketState.CONNECTED


@final
class Websocket(BaseRequest):
    """A websocket connection, available as the global :data:`trioweb.websocket` in the handler,
    its ``*_websocket`` hooks and every task they start.

    It has the request's attributes (``path``, ``args``, ``headers``, ``authorization``, ...)
    with a ``ws``/``wss`` ``scheme``, plus the messaging API below.
    """

    __slots__ = (
        "_asgi_receive",
        "_asgi_send",
        "_handover",
        "_listen_scope",
        "_listener_running",
        "_out_of_receive",
        "_pending",
        "_receives",
        "_receiving",
        "_swept_receives",
        "close_code",
        "close_reason",
        "handler_scope",
        "nursery",
        "state",
        "subprotocol",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope)
        self._asgi_receive = receive
        self._asgi_send = send
        self.state = WebsocketState.CONNECTING
        #: The close code once the websocket is closed (by either side), else ``None``.
        self.close_code: int | None = None
        #: The close reason once the websocket is closed, else ``None``.
        self.close_reason: str | None = None
        #: The subprotocol chosen by :meth:`accept`, if any.
        self.subprotocol: str | None = None
        #: The scope the handler runs in (the connection nursery's, set by the I/O edge); a
        #: disconnect cancels it.
        self.handler_scope = _NO_SCOPE
        self._pending: list[Message] = []  # at most MAX_PENDING; a deque costs 600 B more
        self._receiving = False
        self._receives = 0
        self._listen_scope: trio.CancelScope | None = None
        self._handover: trio.Event | None = None
        #: The connection nursery (set by the I/O edge), where listeners run.
        self.nursery: trio.Nursery | None = None
        self._out_of_receive: set[Websocket] = _NOWHERE  # the sweeper's, once enrolled
        self._swept_receives = -1
        self._listener_running = False

    @property
    def requested_subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols") or ())

    # Handshake ----------------------------------------------------------------------------------

    async def accept(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        subprotocol: str | None = None,
    ) -> None:
        """Accept the handshake, optionally with extra response ``headers`` and a
        ``subprotocol``; does nothing if already accepted.

        ``subprotocol`` must be one the client offered, else ``ValueError`` and nothing is sent.
        Raises :class:`~trioweb.WebsocketClosed` if the websocket was rejected or closed.
        A checkpoint.
        """
        if self.state is _CONNECTED:
            await trio.lowlevel.checkpoint()
            return
        if self.state is not _CONNECTING:
            raise self._closed_error()
        if subprotocol is not None and subprotocol not in self.requested_subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client; it offered"
                f" {self.requested_subprotocols!r}"
            )
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in Headers(headers or ()).items()
        ]
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if raw_headers:
            message["headers"] = raw_headers
        self.state = _CONNECTED
        self.subprotocol = subprotocol
        await self._send_or_disconnect(message)

    # Receiving ------------------------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """Wait for the next message and return it as sent: ``str`` for a text frame, ``bytes``
        for a binary one, empty frames included.

        Accepts the handshake first if needed. If the client disconnects, the handler is
        cancelled (``trio.Cancelled``); once closed, raises :class:`~trioweb.WebsocketClosed`.
        Raises ``trio.BusyResourceError`` if another task is already receiving.
        """
        if self.state is not _CONNECTED:
            await self._ensure_connected()
        if self._pending:
            # Cancel-safe: a cancelled receive() leaves the message queued.
            await trio.lowlevel.checkpoint_if_cancelled()
            message = self._pending.pop(0)
            self._receives += 1
            await trio.lowlevel.cancel_shielded_checkpoint()
        elif self._listen_scope is not None:
            await self._take_over_from_watcher()
            return await self.receive()  # from the queue if the listener got one, else directly
        else:
            if self._receiving:
                raise trio.BusyResourceError("another task is already receiving on this websocket")
            out = self._out_of_receive
            out.discard(self)
            self._receiving = True
            try:
                message = await self._asgi_receive()
            finally:
                self._receiving = False
                self._receives += 1
                out.add(self)
        if message["type"] == "websocket.receive":
            text: str | None = message.get("text")
            if text is not None:
                return text
            data = message.get("bytes")
            return data if data is not None else b""
        return await self._not_a_message(message)

    async def _not_a_message(self, message: Message) -> NoReturn:
        if message["type"] == "websocket.disconnect":
            self._disconnect(message.get("code", 1005), message.get("reason") or "")
            await trio.lowlevel.checkpoint()  # raises Cancelled in the handler's scope
            raise self._closed_error()
        raise RuntimeError(f"unexpected ASGI message {message['type']!r} on a websocket")

    async def receive_json(self) -> Any:
        """:meth:`receive` a message and parse it as JSON.

        Raises werkzeug's ``BadRequest`` if it is not valid JSON; the websocket stays usable.
        """
        data = await self.receive()
        try:
            return _json.loads(data)
        except ValueError as error:
            raise BadRequest(f"The websocket message is not valid JSON: {error}") from error

    def __aiter__(self) -> Websocket:
        return self

    # ``async for message in websocket:`` receives until the handler is cancelled (a disconnect)
    # or leaves the loop; it never ends on its own. An alias, not a wrapper: a frame less.
    __anext__ = receive

    # Sending ------------------------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        """Send ``data`` as a text frame (``str``) or a binary frame (``bytes``-like).

        Accepts the handshake first if needed. Raises ``TypeError`` for any other type, and
        :class:`~trioweb.WebsocketClosed` once the websocket is closed. A checkpoint.
        """
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, bytes | bytearray | memoryview):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(
                f"websocket.send() takes str or bytes, not {type(data).__name__};"
                " use send_json() for other values"
            )
        if self.state is not _CONNECTED:
            await self._ensure_connected()
        try:  # _send_or_disconnect(), inlined: this is the hot path
            await self._asgi_send(message)
        except _TRANSPORT_ERRORS as error:
            await self._broken(error)

    async def send_json(self, *args: Any, **kwargs: Any) -> None:
        """Send a JSON text frame, built as :func:`~trioweb.jsonify` builds its body."""
        await self.send(_json.dumps(_json.jsonable(*args, **kwargs)))

    # Closing --------------------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket with ``code`` and ``reason``.

        Before accept, this rejects the handshake: the server answers HTTP 403. Afterwards the
        handler keeps running, but :meth:`send`/:meth:`receive` raise
        :class:`~trioweb.WebsocketClosed`. Closing a closed websocket does nothing. Raises
        ``ValueError`` for a code a server may not send or a reason over 123 UTF-8 bytes.
        """
        _check_close(code, reason)
        if self.state is _CONNECTING:
            self.state = WebsocketState.REJECTED
            await self._send_or_disconnect({"type": "websocket.close", "code": code})
        elif self.state is _CONNECTED:
            self.state = WebsocketState.CLOSED
            self.close_code, self.close_reason = code, reason
            await self._send_or_disconnect(
                {"type": "websocket.close", "code": code, "reason": reason}
            )
        else:
            await trio.lowlevel.checkpoint()

    async def reject(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes],
    ) -> bool:
        """Reject the handshake with an HTTP response (used by trioweb's pipeline).

        Sends it through the ASGI websocket denial-response extension and returns ``True``; a
        server without the extension gets a close instead (it answers 403) and ``False`` is
        returned. Raises :class:`~trioweb.WebsocketClosed` if the websocket is not connecting.
        """
        if self.state is not _CONNECTING:
            raise self._closed_error()
        self.state = WebsocketState.REJECTED
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self._send_or_disconnect({"type": "websocket.close", "code": 1000})
            return False
        await self._send_or_disconnect(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        async for chunk in body:
            await self._send_or_disconnect(
                {"type": "websocket.http.response.body", "body": chunk, "more_body": True}
            )
        await self._send_or_disconnect(
            {"type": "websocket.http.response.body", "body": b"", "more_body": False}
        )
        return True

    # Internals ------------------------------------------------------------------------------------

    async def _ensure_connected(self) -> None:
        if self.state is _CONNECTING:
            await self.accept()
        else:
            raise self._closed_error()

    async def _send_or_disconnect(self, message: Message) -> None:
        try:
            await self._asgi_send(message)
        except _TRANSPORT_ERRORS as error:
            await self._broken(error)

    async def _broken(self, error: BaseException) -> NoReturn:
        self._disconnect(1006, f"the connection broke: {error!r}")
        await trio.lowlevel.checkpoint()  # raises Cancelled in the handler's scope
        raise self._closed_error() from error

    def _closed_error(self) -> WebsocketClosed:
        if self.state is WebsocketState.REJECTED:
            return WebsocketClosed(1006, "the handshake was rejected; the websocket never opened")
        return WebsocketClosed(self.close_code or 1006, self.close_reason or "")

    def _disconnect(self, code: int, reason: str) -> None:
        """Record that the connection is gone and cancel the handler."""
        if self.state is _CONNECTED or self.state is _CONNECTING:
            self.state = WebsocketState.CLOSED
            self.close_code, self.close_reason = code, reason
        self.handler_scope.cancel()

    async def _take_over_from_watcher(self) -> None:
        self._handover = handover = trio.Event()
        assert self._listen_scope is not None
        self._listen_scope.cancel()
        await handover.wait()

    def _sweep(self) -> None:
        """Start a listener if the handler has not received since the last sweep."""
        if (
            self._receives == self._swept_receives
            and not self._listener_running
            and (self.state is _CONNECTED or self.state is _CONNECTING)
            and self.nursery is not None
        ):
            self._listener_running = True
            self.nursery.start_soon(self._listen_while_idle)
        self._swept_receives = self._receives

    async def _listen_while_idle(self) -> None:
        try:
            receives = self._receives
            while not self._receiving and self._receives == receives:
                if len(self._pending) >= MAX_PENDING:
                    self._warn_full()
                    break
                if not await self._listen():
                    break
        finally:
            self._listener_running = False

    def _warn_full(self) -> None:
        log.warning(
            "websocket %s: the handler has not received %d queued messages; the client now"
            " waits (backpressure), and a disconnect will not be noticed until the handler"
            " receives",
            self.path,
            MAX_PENDING,
        )

    async def _listen(self) -> bool:
        """Receive one message for the handler; ``False`` if the handler took over."""
        message: Message | None = None
        with trio.CancelScope() as self._listen_scope:
            message = await self._asgi_receive()
        self._listen_scope = None
        if message is not None:
            if message["type"] == "websocket.disconnect":
                self._disconnect(message.get("code", 1005), message.get("reason") or "")
            else:
                self._pending.append(message)
        if self._handover is not None:
            self._handover.set()
            self._handover = None
            return False
        return message is not None and self.state is _CONNECTED


@final
class DisconnectSweeper:
    """Finds the app's websockets whose handler has stayed out of ``receive()`` for a while, and
    starts a listener for each (see the module's rules).

    One task per app, in the app nursery: it wakes every ``delay`` seconds and looks only at the
    connections that are out of ``receive()`` (the set :meth:`Websocket.receive` maintains); a
    connection that has not received between two sweeps gets a listener.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        #: The websockets whose handler is not in ``receive()`` right now.
        self.out_of_receive: set[Websocket] = set()

    def enroll(self, ws: Websocket, nursery: trio.Nursery) -> None:
        """Start looking after ``ws``, whose listeners run in ``nursery``."""
        ws.nursery = nursery
        ws._out_of_receive = self.out_of_receive
        self.out_of_receive.add(ws)

    def withdraw(self, ws: Websocket) -> None:
        """Stop looking after ``ws`` (before its connection nursery closes)."""
        ws._out_of_receive = _NOWHERE
        self.out_of_receive.discard(ws)

    async def run(self) -> NoReturn:
        """Sweep every ``delay`` seconds until cancelled."""
        while True:
            await trio.sleep(self.delay)
            for ws in list(self.out_of_receive):
                ws._sweep()


def _check_close(code: int, reason: str) -> None:
    if not (
        code == 1000
        or (1001 <= code <= 1014 and code not in (1004, 1005, 1006))
        or 3000 <= code <= 4999
    ):
        raise ValueError(
            f"{code} is not a close code a server may send: use 1000 (normal), 1001-1014"
            " (but not 1004-1006) or an application code in 3000-4999"
        )
    if len(reason.encode()) > 123:
        raise ValueError("a close reason may be at most 123 bytes of UTF-8")
