"""The benchmark's routes in Quart (asyncio), written the way Quart's docs teach; served by
Hypercorn's asyncio worker, the peer for Hypercorn's own asyncio cost (issue 8, item 9)."""

from __future__ import annotations

from typing import cast

from quart import Quart, Websocket, websocket
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
