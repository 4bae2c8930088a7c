"""Chat rooms over a broadcast hub: what anyone sends to a room reaches everyone in it."""

from typing import Any

from trioweb import TrioWeb, abort, request, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
# Started and stopped with the app; memory:// unless BROADCAST_URL says otherwise.
hub = Broadcast(app)


@app.websocket("/rooms/<room>")
async def chat(room: str) -> None:
    topic = f"room:{room}"
    async with hub.forward(topic):
        # Subscribed before the handshake completes: once the client is in, it misses nothing.
        await websocket.accept()
        async for message in websocket:
            await hub.publish(topic, message)


@app.post("/rooms/<room>/announcements")
async def announce(room: str) -> tuple[dict[str, Any], int]:
    data = await request.get_json()
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        abort(400, 'send {"text": "..."}')
    await hub.publish_json(f"room:{room}", {"announcement": text})
    return {"sent": True}, 202
