"""The benchmark's routes in Quart (asyncio), written the way Quart's docs teach; served by
Hypercorn's asyncio worker, the peer for Hypercorn's own asyncio cost (issue 8, item 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from quart import Quart, Response, Websocket, request, websocket
from werkzeug.local import LocalProxy

app = Quart(__name__)

#: The connected ``/sub`` websockets.
subscribers: set[Websocket] = set()


@app.websocket("/ws")
async def echo() -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        await websocket.send(message)


@app.websocket("/sub")
async def subscribe() -> None:
    await websocket.accept()
    # The proxy resolves to this task's connection; the set needs the connection itself.
    me = cast("LocalProxy[Websocket]", websocket)._get_current_object()
    subscribers.add(me)
    try:
        while True:
            await websocket.receive()
    finally:
        subscribers.discard(me)


@app.websocket("/pub")
async def publish() -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        # Quart has no "closed" error for a send: Hypercorn drops sends to closed websockets.
        for subscriber in list(subscribers):
            await subscriber.send(message)
        await websocket.send("ok")


#: The streamed response's chunks (the same as the raw app's).
CHUNKS = ("chunk one\n", "chunk two\n", "chunk three\n", "chunk four\n")


@app.get("/plain")
async def plain() -> Response:
    return Response("ok", mimetype="text/plain")


@app.get("/json/<name>")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@app.post("/form")
async def form() -> Response:
    fields = await request.form
    return Response(fields["name"], mimetype="text/plain")


@app.get("/stream")
async def stream() -> Response:
    async def chunks() -> AsyncIterator[str]:
        for chunk in CHUNKS:
            yield chunk

    return Response(chunks(), mimetype="text/plain")
