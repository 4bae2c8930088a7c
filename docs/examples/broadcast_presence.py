"""Who is in a room: presence, with join and leave notices."""

import trio

from trioweb import TrioWeb, websocket
from trioweb.broadcast import Broadcast, Join, Leave

app = TrioWeb(__name__)
hub = Broadcast(app)


@app.websocket("/rooms/<room>")
async def room(room: str) -> tuple[str, int] | None:
    name = websocket.args.get("name", "")
    if not name:
        return "connect to /rooms/<room>?name=<your name>", 400
    topic = f"room:{room}"
    async with hub.subscribe(topic, events=True) as subscription, hub.track(topic, name):
        await websocket.accept()
        await websocket.send_json(online=sorted(await hub.presence(topic)))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay_from_client, topic, name)
            async for item in subscription:
                if isinstance(item, Join):
                    await websocket.send_json(joined=item.key)
                elif isinstance(item, Leave):
                    await websocket.send_json(left=item.key)
                elif isinstance(item, str):  # what relay_from_client published
                    await websocket.send(item)
    return None


async def relay_from_client(topic: str, name: str) -> None:
    async for message in websocket:
        await hub.publish_json(topic, {"from": name, "text": str(message)})


@app.get("/rooms/<room>/online")
async def online(room: str) -> dict[str, list[str]]:
    return {"online": sorted(await hub.presence(f"room:{room}"))}
