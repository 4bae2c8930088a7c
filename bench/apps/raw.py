"""The zero-overhead limit: the benchmark's routes as plain ASGI 3, written by hand.

No routing table, no wrappers, no tasks: one ``await receive()`` and one ``await send()`` per
echoed message, in the connection task Hypercorn gives us. Any framework costs at least this.

The HTTP routes (the ``http-*`` scenarios): ``GET /plain`` answers ``ok``; ``GET /json/<name>``
answers ``{"hello": name}``; ``POST /form`` (urlencoded) answers the ``name`` field; ``GET
/stream`` answers four chunks. Anything else is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

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
        await _http(scope, receive, send)


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


_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON = [(b"content-type", b"application/json")]
#: The streamed response's chunks.
CHUNKS = (b"chunk one\n", b"chunk two\n", b"chunk three\n", b"chunk four\n")


async def _http(scope: Message, receive: Receive, send: Send) -> None:
    path, method = scope["path"], scope["method"]
    if path == "/plain" and method == "GET":
        await _respond(send, 200, _TEXT, b"ok")
    elif path.startswith("/json/") and method == "GET" and "/" not in path[6:]:
        body = json.dumps({"hello": path[6:]}).encode()
        await _respond(send, 200, _JSON, body)
    elif path == "/form" and method == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        name = parse_qs(body.decode()).get("name", [""])[0]
        await _respond(send, 200, _TEXT, name.encode())
    elif path == "/stream" and method == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _respond(send, 404, [], b"")


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    # With its length, as every framework sends a body it has whole (without it, h11 would send
    # it in chunks, which costs the server 11 to 15 us more per request).
    headers = [*headers, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
