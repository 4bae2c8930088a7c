"""The benchmark's routes in trioweb, written the way its docs teach."""

from __future__ import annotations

from typing import cast

from werkzeug.local import LocalProxy

from trioweb import TrioWeb, Websocket, WebsocketClosed, websocket

app = TrioWeb(__name__)

#: The connected ``/sub`` websockets.
subscribers: set[Websocket] = set()


@app.websocket("/ws")
async def echo() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)


@app.websocket("/sub")
async def subscribe() -> None:
    await websocket.accept()
    # The proxy resolves to this task's connection; the set needs the connection itself.
    me = cast("LocalProxy[Websocket]", websocket)._get_current_object()
    subscribers.add(me)
    try:
        async for _ in websocket:
            pass
    finally:
        subscribers.discard(me)


@app.websocket("/pub")
async def publish() -> None:
    await websocket.accept()
    async for message in websocket:
        for subscriber in list(subscribers):
            try:  # noqa: SIM105 (a try costs nothing per send; suppress() is a context manager)
                await subscriber.send(message)
            except WebsocketClosed:
                pass  # it left while we were sending; its own handler unregisters it
        await websocket.send("ok")
