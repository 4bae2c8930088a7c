"""Chat rooms in a few lines: whatever anyone in a room sends, everyone in it receives."""

from trioweb import TrioWeb, websocket
from trioweb.broadcast import Broadcast

app = TrioWeb(__name__)
hub = Broadcast(app)  # in memory; url="redis://..." shares the rooms between processes


@app.websocket("/rooms/<room>")
async def room(room: str) -> None:
    topic = f"room:{room}"
    async with hub.forward(topic):  # the room's messages go out to this client...
        async for message in websocket:  # ...while what it sends goes to the room
            await hub.publish(topic, message)
