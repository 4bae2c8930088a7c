"""The websocket connection: Quart's API over ASGI, with Trio's cancellation for disconnects.

Rules this module keeps (see ARCHITECTURE.md, "Lifetimes follow the nursery tree"):

* ``receive()`` reads the server's ASGI ``receive`` in the caller's own task, through the
  connection's :class:`~trioweb._listener.Inbox`; the disconnect listener (``_listener``) reads on
  the handler's behalf while it stays away. One task receives at a time
  (``trio.BusyResourceError``).
* A disconnect, whoever sees it, records the close code and reason and cancels the handler's
  scope: the handler gets ``trio.Cancelled`` wherever it waits. After that, and after the
  handler's own ``close()``, ``receive``/``send`` raise :class:`~trioweb.WebsocketClosed` (a
  ``receive()`` first returns the messages that arrived before the close). Transport errors from
  the server's ``send`` count as a disconnect; they never leak.
* Every async method is a checkpoint, also when it raises. ``send()`` checkpoints even when the
  server's ``send`` does not yield: Hypercorn's returns at once once its client has gone, so a
  handler that only sends would otherwise never let the disconnect in, nor any other task run.
  A handler that keeps calling ``receive()``/``send()`` after its client left and it was
  cancelled (it swallows ``trio.Cancelled``) is named in a warning.
* Messages follow the ASGI ``spec_version`` the server declares: accept headers need 2.1 (left
  out with a warning before), a close reason 2.3 (left out before).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, NoReturn, final

import trio
from werkzeug.datastructures import Headers

from . import _json
from ._ctx import _cv_app
from ._errors import InvalidPayload, WebsocketClosed, close_problem
from ._listener import Inbox
from ._request import BaseRequest
from ._types import Message, Receive, Scope, Send

log = logging.getLogger("trioweb")

_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

#: After how many ``receive()``/``send()`` calls on a closed websocket whose handler was
#: cancelled the handler is named in a warning (a cleanup makes one or two; a loop that swallows
#: ``trio.Cancelled`` makes thousands).
SPIN_WARNING_CALLS = 100


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
_CONNECTED = WebsocketState.CONNECTED
_NO_SCOPE = trio.CancelScope()  # until the edge attaches the real one; cancelling it does nothing


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_A_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


def _accept_headers(
    headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None,
    subprotocol: str | None,
    offered: list[str],
) -> list[tuple[bytes, bytes]]:
    """The accept response's extra headers as ASGI pairs; ``ValueError`` for a subprotocol not
    offered or not a token, or a header that cannot go on the wire as it is."""
    if subprotocol is not None:
        if subprotocol not in offered:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client; it offered {offered!r}"
            )
        if not _TOKEN.fullmatch(subprotocol):
            raise ValueError(
                f"subprotocol {subprotocol!r} is not an HTTP token (RFC 6455 asks for one), so it"
                " cannot be sent back: choose another of the client's offers or refuse it"
            )
    if not headers:
        return []
    raw = []
    pairs = headers.items() if isinstance(headers, Headers | Mapping) else headers
    for name, given in pairs:
        value = str(given)
        if not _TOKEN.fullmatch(name):
            raise ValueError(
                f"accept header name {name!r} is not an HTTP token: use letters, digits and -"
            )
        bad = _NOT_IN_A_VALUE.search(value)
        if bad is not None:
            raise ValueError(
                f"accept header {name!r} has {bad.group()!r} in its value {value!r}: a header"
                " value cannot hold line breaks, other control characters or characters beyond"
                " latin-1; check or encode (urllib.parse.quote) what the client sent first"
            )
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return raw


@final
class Websocket(BaseRequest):
    """A websocket connection, available as the global :data:`trioweb.websocket` in the handler,
    its ``*_websocket`` hooks and every task they start.

    It has the request's attributes (``path``, ``args``, ``headers``, ``authorization``, ...)
    with a ``ws``/``wss`` ``scheme``, plus the messaging API below.
    """

    __slots__ = (
        "_asgi_send",
        "_calls_after_close",
        "_inbox",
        "_scope",
        "close_code",
        "close_reason",
        "state",
        "subprotocol",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope)
        self._asgi_send = send
        self._inbox = Inbox(receive, self._disconnect)
        self._scope = _NO_SCOPE
        self._calls_after_close = 0
        #: Where the websocket is in its life (:class:`WebsocketState`).
        self.state = WebsocketState.CONNECTING
        #: The close code once the websocket is closed (by either side), else ``None``.
        self.close_code: int | None = None
        #: The close reason once the websocket is closed, else ``None``.
        self.close_reason: str | None = None
        #: The subprotocol chosen by :meth:`accept`, if any.
        self.subprotocol: str | None = None

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
        ``subprotocol``; does nothing if already accepted. A checkpoint.

        ``subprotocol`` must be one the client offered, else ``ValueError`` and nothing is sent;
        so is a header whose name is not an HTTP token or whose value has a line break, another
        control character or a character beyond latin-1 (typically a client's value echoed
        back unchecked). Raises :class:`~trioweb.WebsocketClosed` if the websocket was rejected
        or closed. A
        server whose ASGI ``spec_version`` is older than 2.1 cannot send ``headers``: they are
        left out, with a warning.
        """
        if self.state is _CONNECTED:
            await trio.lowlevel.checkpoint()
            return
        if self.state is not _CONNECTING:
            await self._raise_closed()
        try:
            raw_headers = _accept_headers(headers, subprotocol, self.requested_subprotocols)
        except ValueError:
            await trio.lowlevel.checkpoint()
            raise
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if raw_headers:
            if self._spec_version() >= (2, 1):
                message["headers"] = raw_headers
            else:
                log.warning(
                    "websocket %s: the server speaks ASGI websocket spec %s, which cannot send"
                    " accept headers (2.1 can); left out: %s",
                    self.path,
                    self.scope["asgi"].get("spec_version"),
                    ", ".join(name.decode() for name, _ in raw_headers),
                )
        self.state = _CONNECTED
        self.subprotocol = subprotocol
        await self._send_or_disconnect(message)

    # Receiving ------------------------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """Wait for the next message and return it as sent: ``str`` for a text frame, ``bytes``
        for a binary one, empty frames included. A checkpoint; cancel-safe (a cancelled call
        loses no message).

        Accepts the handshake first if needed. If the client disconnects, the handler is
        cancelled (``trio.Cancelled``). Once closed, returns the messages that arrived before the
        close, then raises :class:`~trioweb.WebsocketClosed`. Raises ``trio.BusyResourceError``
        if another task is already receiving.
        """
        if self.state is not _CONNECTED:
            if self.state is _CONNECTING:
                await self.accept()
            elif not self._inbox.pending:
                await self._raise_closed()
        message = await self._inbox.receive()
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
            await self._raise_closed()  # its checkpoint raises Cancelled in the handler's scope
        raise RuntimeError(f"unexpected ASGI message {message['type']!r} on a websocket")

    async def receive_json(self) -> Any:
        """:meth:`receive` a message and parse it as JSON: a text frame, or a binary one of
        UTF-8.

        Raises :class:`~trioweb.InvalidPayload` (a ``BadRequest``) for anything that cannot be
        read: not JSON, not UTF-8, arrays and objects nested deeper than ``JSON_MAX_DEPTH``, a
        number over Python's digit limit, NaN when ``JSON_ALLOW_NAN`` is false. Caught, the
        websocket stays usable; uncaught, it closes with 1007 and the reason.
        """
        data = await self.receive()
        app = _cv_app.get()
        try:
            if app is None:
                return _json.parse(data)
            config = app.config
            return _json.parse(
                data, max_depth=config["JSON_MAX_DEPTH"], allow_nan=config["JSON_ALLOW_NAN"]
            )
        except ValueError as error:
            raise InvalidPayload(f"Cannot read the message as JSON: {error}") from error

    def __aiter__(self) -> Websocket:
        return self

    # ``async for message in websocket:`` receives until the handler is cancelled (a disconnect)
    # or leaves the loop; it never ends on its own. An alias, not a wrapper: a frame less.
    __anext__ = receive

    # Sending ------------------------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        """Send ``data`` as a text frame (``str``) or a binary frame (``bytes``-like).

        Accepts the handshake first if needed. Raises ``TypeError`` for any other type,
        ``ValueError`` for a ``str`` UTF-8 cannot encode (a lone surrogate; nothing is sent and
        the websocket stays usable), and :class:`~trioweb.WebsocketClosed` once the websocket
        is closed. A checkpoint, whatever the server's ``send`` does.
        """
        if isinstance(data, str):
            if not data.isascii():
                await self._check_text(data)
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, bytes | bytearray | memoryview):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            await trio.lowlevel.checkpoint()
            raise TypeError(
                f"websocket.send() takes str or bytes, not {type(data).__name__};"
                " use send_json() for other values"
            )
        if self.state is not _CONNECTED:
            if self.state is not _CONNECTING:
                await self._raise_closed()
            await self.accept()
        # Trio counts each task's yields (trio.testing's assert_checkpoints reads the same
        # private counter; trio's source proposes exposing it). A full checkpoint costs ~2-10 us,
        # so it is added only when the server's send did not yield: Hypercorn's, once its
        # client has gone.
        task = trio.lowlevel.current_task()
        yields = task._schedule_points
        try:
            await self._asgi_send(message)
        except _TRANSPORT_ERRORS as error:
            await self._broken(error)
        if task._schedule_points == yields:
            await trio.lowlevel.checkpoint()

    async def send_json(self, *args: Any, **kwargs: Any) -> None:
        """Send a JSON text frame, built as :func:`~trioweb.jsonify` builds its body.

        Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for a string with
        a lone surrogate, or NaN or Infinity when ``JSON_ALLOW_NAN`` is false: nothing is sent
        and the websocket stays usable. Otherwise as :meth:`send`.
        """
        app = _cv_app.get()
        try:
            text = _json.dumps(
                _json.jsonable(*args, **kwargs),
                allow_nan=app is None or app.config["JSON_ALLOW_NAN"],
            )
        except (TypeError, ValueError):
            await trio.lowlevel.checkpoint()
            raise
        await self.send(text)

    # Closing --------------------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket with ``code`` and ``reason``. A checkpoint.

        Before accept, this rejects the handshake: the server answers HTTP 403. Afterwards the
        handler keeps running, but :meth:`send`/:meth:`receive` raise
        :class:`~trioweb.WebsocketClosed`. Closing a closed websocket does nothing. Raises
        ``ValueError`` for a code a server may not send or a reason over 123 UTF-8 bytes. A
        server whose ASGI ``spec_version`` is older than 2.3 cannot send the reason: it is left
        out.
        """
        problem = close_problem(code, reason)
        if problem is not None:
            await trio.lowlevel.checkpoint()
            raise ValueError(problem)
        if self.state is _CONNECTING:
            self.state = WebsocketState.REJECTED
            await self._send_or_disconnect({"type": "websocket.close", "code": code})
        elif self.state is _CONNECTED:
            self.state = WebsocketState.CLOSED
            self.close_code, self.close_reason = code, reason
            message: Message = {"type": "websocket.close", "code": code}
            if reason and self._spec_version() >= (2, 3):
                message["reason"] = reason
            await self._send_or_disconnect(message)
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
            await self._raise_closed()
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

    def _attach(self, nursery: trio.Nursery) -> Inbox:
        """Run in ``nursery``, whose scope is the handler's (the I/O edge calls this): a
        disconnect cancels it. Returns the inbox for the disconnect listener to look after."""
        self._scope = nursery.cancel_scope
        return self._inbox

    async def _check_text(self, text: str) -> None:
        """Checkpoint and raise ``ValueError`` if ``text`` cannot be sent (a lone surrogate)."""
        try:
            _json.check_text(text)
        except ValueError as error:
            await trio.lowlevel.checkpoint()
            raise ValueError(f"websocket.send() cannot send this str: {error}") from None

    def _spec_version(self) -> tuple[int, ...]:
        version = (self.scope.get("asgi") or {}).get("spec_version") or "2.0"
        return tuple(int(part) for part in str(version).split("."))

    async def _send_or_disconnect(self, message: Message) -> None:
        try:
            await self._asgi_send(message)
        except _TRANSPORT_ERRORS as error:
            await self._broken(error)

    async def _broken(self, error: BaseException) -> NoReturn:
        self._disconnect(1006, f"the connection broke: {error!r}")
        try:
            await self._raise_closed()  # its checkpoint raises Cancelled in the handler's scope
        except WebsocketClosed as closed:
            raise closed from error

    async def _raise_closed(self) -> NoReturn:
        """Checkpoint, then raise :class:`WebsocketClosed`, naming a handler that keeps calling
        after it was cancelled."""
        self._calls_after_close += 1
        if self._calls_after_close == SPIN_WARNING_CALLS and self._scope.cancel_called:
            log.warning(
                "websocket handler of %r (%s) has called receive()/send() %d times since its"
                " connection closed and it was cancelled: it catches trio.Cancelled (a bare"
                " except: or except BaseException:) without re-raising it, so it never ends."
                " Catch Exception instead, or re-raise",
                self.endpoint,
                self.path,
                SPIN_WARNING_CALLS,
            )
        await trio.lowlevel.checkpoint()
        raise self._closed_error()

    def _closed_error(self) -> WebsocketClosed:
        if self.state is WebsocketState.REJECTED:
            return WebsocketClosed(1006, "the handshake was rejected; the websocket never opened")
        return WebsocketClosed(self.close_code or 1006, self.close_reason or "")

    def _disconnect(self, code: int, reason: str) -> None:
        """Record that the connection is gone and cancel the handler."""
        if self.state is _CONNECTED or self.state is _CONNECTING:
            self.state = WebsocketState.CLOSED
            self.close_code, self.close_reason = code, reason
        self._scope.cancel()
