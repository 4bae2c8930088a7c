"""The benchmark's routes in Starlette: ``WebSocketRoute`` endpoints, raw receive messages so
that text and bytes keep their type."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

#: The connected ``/sub`` websockets.
subscribers: set[WebSocket] = set()


async def _send_like(websocket: WebSocket, message: dict[str, object]) -> None:
    """Send ``message``'s payload with the type it arrived with."""
    text = message.get("text")
    if text is not None:
        await websocket.send_text(str(text))
    else:
        data = message.get("bytes")
        await websocket.send_bytes(data if isinstance(data, bytes) else b"")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        await _send_like(websocket, message)


async def subscribe(websocket: WebSocket) -> None:
    await websocket.accept()
    subscribers.add(websocket)
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        subscribers.discard(websocket)


async def publish(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        for subscriber in list(subscribers):
            try:  # noqa: SIM105 (a try costs nothing per send; suppress() is a context manager)
                await _send_like(subscriber, message)
            except WebSocketDisconnect:
                pass  # it left while we were sending; its own endpoint unregisters it
        await websocket.send_text("ok")


#: The streamed response's chunks (the same as the raw app's).
CHUNKS = ("chunk one\n", "chunk two\n", "chunk three\n", "chunk four\n")


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": request.path_params["name"]})


async def form(request: Request) -> Response:
    async with request.form() as fields:
        return PlainTextResponse(str(fields["name"]))


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[str]:
        for chunk in CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(
    routes=[
        Route("/plain", plain),
        Route("/json/{name}", hello),
        Route("/form", form, methods=["POST"]),
        Route("/stream", stream),
        WebSocketRoute("/ws", echo),
        WebSocketRoute("/sub", subscribe),
        WebSocketRoute("/pub", publish),
    ]
)
