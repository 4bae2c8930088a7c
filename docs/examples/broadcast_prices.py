"""A price feed whose clients want the latest prices, not every one: overflow policies."""

from typing import Any

from trioweb import TrioWeb, request, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
hub = Broadcast(app, buffer=100)  # the default buffer of each subscription


@app.websocket("/prices")
async def prices() -> None:
    # A client that falls behind skips to the newest 10 prices instead of being cut off.
    async with hub.subscribe("prices", buffer=10, overflow="drop-oldest") as subscription:
        await websocket.accept()
        async for price in subscription:
            await websocket.send(price)


@app.websocket("/trades")
async def trades() -> None:
    # Every trade matters: a client that falls 100 behind is closed with 1013 (the default
    # policy, "raise"), and can reconnect and reload.
    async with hub.forward("trades"):
        await websocket.accept()
        async for _ in websocket:  # the client has nothing to say; this waits until it leaves
            pass


@app.post("/prices")
async def publish_price() -> tuple[str, int]:
    await hub.publish_json("prices", await request.get_json())
    return "", 204


@app.get("/stats")
async def stats() -> dict[str, Any]:
    topics = hub.stats().topics
    return {
        name: {"subscribers": topic.subscribers, "dropped": topic.dropped, "cut": topic.cut}
        for name, topic in topics.items()
    }
