"""A small chat for the multi-worker test (tests/test_broadcast_workers.py): every worker process
serving it shares rooms and presence through the Redis/Valkey server of ``BROADCAST_URL`` (from
the environment; ``BROADCAST_PRESENCE_TTL`` seconds, default 30)."""

import os
from typing import Any

from trioweb import TrioWeb, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
app.config["BROADCAST_URL"] = os.environ["BROADCAST_URL"]
hub = Broadcast(app, presence_ttl=float(os.environ.get("BROADCAST_PRESENCE_TTL", "30")))


@app.websocket("/ws/<room>/<name>")
async def chat(room: str, name: str) -> None:
    """Present in ``room`` as ``name``; "welcome" once subscribed, then every message of the
    room, and each message received is published to it as ``name: message``."""
    async with hub.track(room, name, {"worker": os.getpid()}), hub.forward(room):
        await websocket.send(f"welcome {name}")
        async for message in websocket:
            await hub.publish(room, f"{name}: {message}")


@app.get("/presence/<room>")
async def presence(room: str) -> dict[str, Any]:
    return await hub.presence(room)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    current = hub.stats()
    return {
        "connected": current.connected,
        "interruptions": current.interruptions,
        "lost": current.lost,
        "worker": os.getpid(),
    }
