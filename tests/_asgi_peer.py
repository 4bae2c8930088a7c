"""The one hand-driven ASGI server side the tests share, and the scopes it serves.

Most tests drive an app through ``app.test_client()``. The few that need what the test client
does not do (a client that leaves mid-request, a transport that breaks, a server that sends
nonsense) call the app as an ASGI app with an :class:`ASGIPeer`: ``await app(scope,
peer.receive, peer.send)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio

Message = dict[str, Any]

#: Messages a peer buffers before ``to_app.send`` waits (Hypercorn's app queue holds 10 too).
QUEUE_SIZE = 10


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
    query_string: bytes = b"",
    **extra: Any,
) -> Message:
    """An ASGI ``http`` scope; keyword arguments that are not parameters replace scope keys
    (``server=None``)."""
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    scope.update(extra)
    return scope


def ws_scope(path: str = "/ws", **extra: Any) -> Message:
    """An ASGI ``websocket`` scope whose server offers the HTTP denial response extension;
    keyword arguments replace scope keys (``extensions={}``)."""
    scope: Message = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("localhost", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    scope.update(extra)
    return scope


class ASGIPeer:
    """A hand-driven ASGI server side.

    ``receive`` hands out ``messages``, then whatever the test sends through ``to_app``; it is a
    memory channel, cancel-safe as Hypercorn's queue is. After :meth:`disconnect` (once the
    queued messages are used up) every ``receive`` returns the disconnect message. ``send``
    records what the app sends in ``sent``, or raises the exception ``fail_sends`` holds for the
    message's type, as a broken transport does.
    """

    def __init__(
        self,
        messages: Iterable[Message] = (),
        *,
        fail_sends: dict[str, BaseException] | None = None,
    ) -> None:
        queued = list(messages)
        self.to_app, self._inbox = trio.open_memory_channel[Message](max(QUEUE_SIZE, len(queued)))
        for message in queued:
            self.to_app.send_nowait(message)
        self.fail_sends = dict(fail_sends or {})
        self.sent: list[Message] = []
        #: How many messages ``receive`` has handed out, the disconnect not counted.
        self.received = 0
        self._disconnect: Message = {"type": "http.disconnect"}
        #: :meth:`serve` runs the app in it: cancelling it is the server cancelling the
        #: connection, as Hypercorn does when a shutdown's grace period is over.
        self.cancel_scope = trio.CancelScope()

    async def serve(self, app: Any, scope: Message) -> None:
        """Run ``app`` on ``scope`` with this peer, in :attr:`cancel_scope`."""
        with self.cancel_scope:
            await app(scope, self.receive, self.send)

    def disconnect(self, message: Message | None = None) -> None:
        """From now on (once the queued messages are used up) ``receive`` says the client left,
        with ``message`` (``http.disconnect`` unless given)."""
        if message is not None:
            self._disconnect = message
        self.to_app.close()

    async def receive(self) -> Message:
        """The next queued message; waits for one, or for :meth:`disconnect`. A checkpoint."""
        try:
            message = await self._inbox.receive()
        except trio.EndOfChannel:
            await trio.lowlevel.checkpoint()
            return dict(self._disconnect)
        self.received += 1
        return message

    async def send(self, message: Message) -> None:
        """Record ``message``, or raise what ``fail_sends`` holds for its type. A checkpoint."""
        await trio.lowlevel.checkpoint()
        error = self.fail_sends.get(message["type"])
        if error is not None:
            raise error
        self.sent.append(message)

    @property
    def status(self) -> int:
        """The status of the response the app started."""
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        """The response's headers."""
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        """The concatenated body chunks the app sent."""
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
