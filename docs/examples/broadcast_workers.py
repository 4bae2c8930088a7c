"""A chat room per URL that works with any number of workers: set TRIOWEB_BROADCAST_URL to a
Redis or Valkey server (``redis://127.0.0.1:6379/0``) and every worker shares the rooms and who
is in them; without it the hub is in memory (one process)."""

import os
from typing import Any

from trioweb import TrioWeb, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
app.config.from_prefixed_env()  # TRIOWEB_BROADCAST_URL -> app.config["BROADCAST_URL"]
hub = Broadcast(app, presence_ttl=app.config.get("BROADCAST_PRESENCE_TTL", 30.0))


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
    """Who is in ``room``, from every worker: name -> one entry per connection."""
    return await hub.presence(room)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    """This worker's view of the hub: is its server reachable, what was lost."""
    current = hub.stats()
    return {
        "backend": current.backend,
        "connected": current.connected,
        "interruptions": current.interruptions,
        "lost": current.lost,
        "worker": os.getpid(),
    }
