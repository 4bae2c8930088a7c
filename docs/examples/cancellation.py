"""Cancellation: long-poll views that clean up when their client leaves."""

from collections import defaultdict

import trio

from trioweb import TrioWeb, request

app = TrioWeb(__name__)


class Room:
    """A chat room's messages, and a way to wait for new ones."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.waiting = 0  # views blocked in wait_after()
        self._changed = trio.Event()

    def post(self, message: str) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_after(self, seen: int) -> list[str]:
        while len(self.messages) <= seen:
            await self._changed.wait()
        return self.messages[seen:]


rooms: defaultdict[str, Room] = defaultdict(Room)
log: list[str] = []


async def record(event: str) -> None:
    await trio.lowlevel.checkpoint()  # stands in for an async write (a database, a log service)
    log.append(event)


@app.post("/rooms/<name>")
async def post_message(name: str) -> tuple[str, int]:
    rooms[name].post(await request.get_data(as_text=True))
    return "", 204


@app.get("/rooms/<name>")
async def poll(name: str) -> dict[str, list[str]]:
    seen = request.args.get("after", 0, type=int)
    room = rooms[name]
    room.waiting += 1
    try:
        return {"messages": await room.wait_after(seen)}
    finally:
        room.waiting -= 1
        with trio.CancelScope(shield=True):
            await record(f"stopped polling {name}")


@app.get("/digest")
async def digest() -> dict[str, list[str]]:
    news: dict[str, list[str]] = {}

    async def watch(name: str) -> None:
        room = rooms[name]
        news[name] = await room.wait_after(len(room.messages))

    names = request.args.getlist("room")
    try:
        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(watch, name)
    except* trio.Cancelled:
        log.append(f"client left while waiting for {', '.join(names)}")
        raise
    return news
