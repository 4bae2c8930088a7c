"""The zero-overhead limit: the benchmark's routes as plain ASGI 3, written by hand.

No routing table, no wrappers, no tasks: one ``await receive()`` and one ``await send()`` per
echoed message, in the connection task Hypercorn gives us. Any framework costs at least this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The ``send`` callables of the connected ``/sub`` websockets.
subscribers: set[Send] = set()

_ACCEPT = {"type": "websocket.accept"}
_OK = {"type": "websocket.send", "text": "ok"}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """Dispatch on the scope type, then on the websocket path."""
    kind = scope["type"]
    if kind == "websocket":
        path = scope["path"]
        if path == "/ws":
            await _echo(receive, send)
        elif path == "/sub":
            await _subscribe(receive, send)
        elif path == "/pub":
            await _publish(receive, send)
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})  # the server answers 403
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _echo(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send(_ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        await send(_reply(message))


async def _subscribe(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send(_ACCEPT)
    subscribers.add(send)
    try:
        while (await receive())["type"] == "websocket.receive":
            pass
    finally:
        subscribers.discard(send)


async def _publish(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send(_ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        out = _reply(message)
        # A copy: the set changes while we await. Hypercorn drops sends to closed websockets.
        for subscriber in list(subscribers):
            await subscriber(out)
        await send(_OK)


def _reply(message: Message) -> Message:
    """The ``websocket.send`` for a received message: same payload, same type."""
    return {"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
