"""The test client's websocket side: an in-memory ASGI peer for one websocket connection.

The app runs in a task of the connection's own nursery, as under a server. Rules it keeps:

* Both directions are bounded. Messages to the app go through a channel of Hypercorn's default
  queue size (10), so a handler that does not receive slows the test down as it would slow a
  client; the app's messages wait in an outbox of 10 (``CLIENT_QUEUE_SIZE``), so a handler that
  sends faster than the test receives blocks in ``send``, as it would on a socket whose client
  reads slowly, instead of growing memory.
* Once the test has left (the block ended, :meth:`TestWebsocket.close`, or the closing handshake
  after the app's close), the app's sends complete at once and go nowhere, as Hypercorn's do
  once the client is gone, and the messages still in the outbox are discarded, as
  trio-websocket discards them after a local close. So nothing waits on a full outbox.
* Every async method is a checkpoint, also when it raises.
* Several tasks may receive at once, as with trio-websocket: each message goes to one of them.
* Every wait is bounded by the client's ``timeout``.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, final

import trio
from werkzeug.datastructures import Headers

from .. import _json
from .._layer._limits import Limits
from .._types import ASGIApp, Message
from ._util import close_unwrapped, lone_exception_unwrapped

#: Messages the test may send ahead of the handler's ``receive()`` (Hypercorn's default queue).
APP_QUEUE_SIZE = 10
#: Messages the handler may send ahead of the test's ``receive()``; its ``send`` waits beyond.
CLIENT_QUEUE_SIZE = 10


class WebsocketResponseError(Exception):
    """The app rejected the handshake with an HTTP response (``.response``: status, headers and
    body), or closed before accepting, which a server answers with 403."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"the websocket handshake was rejected with HTTP {response.status_code}")
        self.response = response


class WebsocketDisconnectError(Exception):
    """The app closed the websocket; ``.code`` and ``.reason`` are from its close frame."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(
            f"the app closed the websocket with {code}" + (f": {reason}" if reason else "")
        )
        self.code = code
        self.reason = reason


@final
class TestWebsocket:
    """One websocket to the app: ``async with client.websocket("/ws") as ws:``.

    Entering performs the handshake: it returns once the app accepts, and raises
    :class:`WebsocketResponseError` if the app rejects. Leaving delivers a disconnect (code 1000)
    unless :meth:`close` already did, and returns only after the handler has finished its cleanup;
    an exception the handler raised is re-raised there (or from the pending :meth:`receive`). If
    the block itself raised, its exception leaves instead, with a note that shows the handler's.
    """

    __test__ = False

    def __init__(self, app: ASGIApp, scope: dict[str, Any], timeout: float) -> None:
        self._app = app
        self.scope = scope
        self.timeout = timeout
        #: WEBSOCKET_MAX_MESSAGE_SIZE, enforced as the server's connection layer does.
        self._max_message_size = Limits.of(app).max_message_size
        #: The subprotocol the app accepted with, and the headers it added.
        self.subprotocol: str | None = None
        self.accept_headers = Headers()
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](APP_QUEUE_SIZE)
        self._app_outbox, self._from_app = trio.open_memory_channel[Message](CLIENT_QUEUE_SIZE)
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._app_scope = trio.CancelScope()
        self._app_done = trio.Event()
        self._app_error: BaseException | None = None
        self._closed: WebsocketDisconnectError | None = None
        #: The app's close frame once it is in the outbox, read or not: what a send after the
        #: app has finished reports.
        self._app_closed: WebsocketDisconnectError | None = None
        self._disconnected = False
        #: Set once the test has left: the app's sends complete without going anywhere.
        self._gone = False
        self._waiting_sends: set[trio.CancelScope] = set()

    @property
    def close_code(self) -> int | None:
        """The code of the close frame the app sent, once :meth:`receive` has seen it."""
        return self._closed.code if self._closed is not None else None

    @property
    def close_reason(self) -> str | None:
        """The reason of the close frame the app sent, once :meth:`receive` has seen it."""
        return self._closed.reason if self._closed is not None else None

    async def _run_app(self) -> None:
        try:
            with self._app_scope:  # its own scope: tearing the app down leaves the test alone
                await self._app(self.scope, self._app_inbox.receive, self._app_send)
        except Exception as error:
            self._app_error = error
        finally:
            self._app_done.set()
            self._app_outbox.close()

    async def _app_send(self, message: Message) -> None:
        if self._gone:
            await trio.lowlevel.checkpoint()
            return
        # A scope per waiting send, so that the test leaving can let it complete (undelivered).
        with trio.CancelScope() as waiting:
            self._waiting_sends.add(waiting)
            try:
                await self._app_outbox.send(message)
                if message["type"] == "websocket.close":
                    code, reason = message.get("code", 1000), message.get("reason") or ""
                    self._app_closed = WebsocketDisconnectError(code, reason)
            finally:
                self._waiting_sends.discard(waiting)

    def _leave(self) -> None:
        """The test is gone: complete the app's waiting sends, discard what it sent unread."""
        self._gone = True
        for waiting in self._waiting_sends:
            waiting.cancel()
        while True:
            try:
                self._from_app.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break

    async def _next(self) -> Message | None:
        """The app's next message, or ``None`` once it has finished."""
        try:
            with trio.fail_after(self.timeout):
                return await self._from_app.receive()
        except trio.EndOfChannel:
            return None
        except trio.TooSlowError:
            raise trio.TooSlowError(
                f"websocket {self.scope['path']}: the app sent nothing within {self.timeout} s"
            ) from None

    def _raise_app_error(self) -> None:
        if self._app_error is not None:
            error, self._app_error = self._app_error, None
            raise error

    def _note_app_error(self, raised: BaseException) -> None:
        """Attach the handler's exception, if any, to the one the test body raised."""
        if self._app_error is not None:
            error, self._app_error = self._app_error, None
            summary = "".join(traceback.format_exception(error)).rstrip()
            raised.add_note(
                f"The websocket handler of {self.scope['path']} also raised:\n{summary}"
            )

    async def __aenter__(self) -> TestWebsocket:
        with lone_exception_unwrapped():
            async with AsyncExitStack() as stack:
                self._nursery = nursery = await stack.enter_async_context(trio.open_nursery())
                nursery.start_soon(self._run_app)
                await self._to_app.send({"type": "websocket.connect"})
                message = await self._next()
                if message is not None and message["type"] == "websocket.accept":
                    self.subprotocol = message.get("subprotocol")
                    for name, value in message.get("headers") or ():
                        self.accept_headers.add(name.decode("latin-1"), value.decode("latin-1"))
                    self._stack = stack.pop_all()
                    return self
                response = None if message is None else await self._rejection(message)
                await self._finish()
        # The app has finished: report what it raised, else how it answered.
        self._raise_app_error()
        if response is None:
            raise RuntimeError("the app ended without answering the websocket handshake")
        raise WebsocketResponseError(response)

    async def _rejection(self, message: Message) -> Any:
        from ._client import TestResponse

        if message["type"] == "websocket.close":
            return TestResponse(403, Headers(), b"")
        if message["type"] != "websocket.http.response.start":
            raise RuntimeError(f"the app answered the handshake with {message['type']!r}")
        headers = Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        )
        chunks: list[bytes] = []
        while True:
            body = await self._next()
            if body is None or body["type"] != "websocket.http.response.body":
                raise RuntimeError("the app did not finish its handshake rejection response")
            chunks.append(body.get("body", b""))
            if not body.get("more_body", False):
                break
        return TestResponse(message["status"], headers, b"".join(chunks))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None
        assert self._nursery is not None
        try:
            await self._finish()
        except BaseException:
            self._nursery.cancel_scope.cancel()
            raise
        finally:
            # The body's own exception, if any, propagates as it is: the nursery never sees it.
            await close_unwrapped(stack)
            if exc is not None:
                self._note_app_error(exc)
        self._raise_app_error()
        return None

    async def _finish(self, code: int = 1000, reason: str = "") -> None:
        """Tell the app the client left (unless it knows), then wait for the handler to end.

        From here on the app's sends complete without being delivered (see the module's rules).

        If the handler's queue is full (it is not receiving), the disconnect cannot be queued:
        the connection is torn down instead, cancelling the app as a server shutdown would.
        """
        self._leave()
        if not self._disconnected and not self._app_done.is_set():
            self._disconnected = True
            message = {"type": "websocket.disconnect", "code": code, "reason": reason}
            try:
                self._to_app.send_nowait(message)
            except trio.WouldBlock:
                self._app_scope.cancel()
        with trio.fail_after(self.timeout):
            await self._app_done.wait()

    # Messages -------------------------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app.

        Blocks while the app's queue (10 messages) is full; raises
        :class:`WebsocketDisconnectError` if the app has closed the websocket, the handler's
        exception if it raised one, and ``TypeError`` for other types. A message over the app's
        ``WEBSOCKET_MAX_MESSAGE_SIZE`` (in bytes, UTF-8 for text) closes the websocket as the
        server does: the app gets a disconnect with code 1009, and this raises
        :class:`WebsocketDisconnectError` (1009) once the handler has finished. A checkpoint,
        also when it raises.
        """
        if isinstance(data, str):
            message: Message = {"type": "websocket.receive", "text": data}
        elif isinstance(data, bytes | bytearray | memoryview):
            message = {"type": "websocket.receive", "bytes": bytes(data)}
        else:
            await trio.lowlevel.checkpoint()
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        if self._closed is not None or self._app_done.is_set():
            await trio.lowlevel.checkpoint()  # before the handler's error is taken
            if self._closed is not None:
                raise self._closed
            self._raise_app_error()
            # The close the app sent, unread behind its messages (else it sent none at all).
            if self._app_closed is not None:
                raise self._app_closed
            raise WebsocketDisconnectError(1006, "the app has finished")
        size = len(data.encode()) if isinstance(data, str) else len(message["bytes"])
        if size > self._max_message_size:
            # As the server's layer: closed with 1009, and the app hears it (issue 8).
            reason = f"message over {self._max_message_size} bytes"
            self._closed = WebsocketDisconnectError(1009, reason)
            await self._finish(1009, reason)
            self._raise_app_error()
            raise self._closed
        try:
            with trio.fail_after(self.timeout):
                await self._to_app.send(message)
        except trio.TooSlowError:
            raise trio.TooSlowError(
                f"websocket {self.scope['path']}: the app did not take a message within"
                f" {self.timeout} s (is the handler receiving?)"
            ) from None

    async def send_json(self, *args: Any, **kwargs: Any) -> None:
        """Send a JSON text message (built as ``jsonify`` builds its body); ``TypeError`` for a
        value JSON cannot encode. A checkpoint, also when it raises."""
        try:
            text = _json.dumps(_json.jsonable(*args, **kwargs))
        except Exception:
            await trio.lowlevel.checkpoint()
            raise
        await self.send(text)

    async def receive(self) -> str | bytes:
        """The app's next message, ``str`` or ``bytes`` as it sent it.

        Raises :class:`WebsocketDisconnectError` when the app closes, the handler's exception if
        it raised one, and ``trio.TooSlowError`` if nothing comes within the timeout. A
        checkpoint, also when it raises. Several tasks may wait in it at once; each message goes
        to one of them.
        """
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._closed
        message = await self._next()
        if message is None:
            await self._app_done.wait()
            self._raise_app_error()
            if self._closed is not None:  # another task's receive() met the close
                raise self._closed
            raise WebsocketDisconnectError(1006, "the app finished without closing")
        if message["type"] == "websocket.send":
            text = message.get("text")
            if text is not None:
                return str(text)
            data = message.get("bytes")
            return bytes(data) if data is not None else b""
        if message["type"] == "websocket.close":
            code, reason = message.get("code", 1000), message.get("reason") or ""
            self._closed = WebsocketDisconnectError(code, reason)
            # Complete the closing handshake, as a client does: the app sees the disconnect.
            await self._finish(code, reason)
            self._raise_app_error()
            raise self._closed
        raise RuntimeError(f"the app sent {message['type']!r} on an open websocket")

    async def receive_json(self) -> Any:
        """The app's next message parsed as JSON."""
        return _json.loads(await self.receive())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side: the app sees a disconnect with ``code`` and ``reason``.
        Returns once the handler has finished, and raises its exception if it raised one;
        messages not yet received are dropped."""
        await self._finish(code, reason)
        self._raise_app_error()


def websocket_scope(
    path: str,
    *,
    headers: Mapping[str, str] | Headers | Iterable[tuple[str, str]] | None,
    subprotocols: list[str] | None,
    query_string: Any,
    scheme: str,
    root_path: str,
    client: tuple[str, int],
    asgi: dict[str, str],
) -> dict[str, Any]:
    """The ASGI scope a server would build for this handshake (with the denial extension)."""
    from urllib.parse import urlencode

    path, _, query_in_path = path.partition("?")
    if query_string is None:
        query = query_in_path.encode()
    elif isinstance(query_string, str | bytes):
        query = query_string.encode() if isinstance(query_string, str) else query_string
    else:
        query = urlencode(query_string, doseq=True).encode()
    raw_headers = [(b"host", b"localhost")]
    for name, value in Headers(headers or ()).items():
        if name.lower() != "host":
            raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    raw_headers += [
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
    ]
    if subprotocols:
        raw_headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
    return {
        "type": "websocket",
        "asgi": asgi,
        "http_version": "1.1",
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": root_path,
        "headers": raw_headers,
        "client": client,
        "server": ("localhost", 80),
        "subprotocols": list(subprotocols or []),
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }
