"""The benchmark's routes in trioweb, written the way its docs teach.

Fan-out goes through the app's broadcast hub: each ``/sub`` websocket forwards the topic with
``hub.forward``, and ``/pub`` publishes every message it receives, answering ``"ok"`` once the
publish returned. The hub's backend is ``app.config["BROADCAST_URL"]``, read from the
environment (``TRIOWEB_BROADCAST_URL``): ``memory://`` (one process), or ``redis://...`` for the
bench's two-worker ``fanout-redis-N`` scenarios.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from trioweb import Response, TrioWeb, request, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
app.config.from_prefixed_env()

#: The load generator has one publish in flight at a time (it waits for every subscriber's copy
#: before the next), so a subscription holds a message or two at most: 1,000 is far more than the
#: bench can fill, so no subscriber is ever cut for being slow (the default policy, "raise").
hub = Broadcast(app, buffer=1_000)

TOPIC = "fanout"


@app.websocket("/ws")
async def echo() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)


@app.websocket("/sub")
async def subscribe() -> None:
    await websocket.accept()
    async with hub.forward(TOPIC):
        async for _ in websocket:
            pass


@app.websocket("/pub")
async def publish() -> None:
    await websocket.accept()
    async for message in websocket:
        await hub.publish(TOPIC, message)
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
