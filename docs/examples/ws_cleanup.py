"""Cleaning up when the client leaves: ``finally``, shielded awaits, and ``except*``."""

import trio

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)


class Presence:
    """Who is online. It stands in for a store shared by several processes (Redis, a database),
    so its methods are async."""

    def __init__(self) -> None:
        self.online: set[str] = set()

    async def join(self, user: str) -> None:
        await trio.lowlevel.checkpoint()  # a round trip to the store
        self.online.add(user)

    async def leave(self, user: str) -> None:
        await trio.lowlevel.checkpoint()  # a round trip to the store
        self.online.discard(user)


presence = Presence()
#: (user, close code) for each client that left the /online websocket.
departures: list[tuple[str, int | None]] = []


@app.websocket("/online/<user>")
async def online(user: str) -> None:
    await websocket.accept()
    await presence.join(user)
    try:
        async for _ in websocket:
            await websocket.send_json(online=sorted(presence.online))
    finally:
        with trio.CancelScope(shield=True):
            await presence.leave(user)
        departures.append((user, websocket.close_code))


JOB_SECONDS = 2
#: What happened to the jobs of the /jobs websocket.
job_log: list[str] = []


@app.websocket("/jobs")
async def jobs() -> None:
    await websocket.accept()
    try:
        async with trio.open_nursery() as nursery:
            async for name in websocket:
                nursery.start_soon(run_job, str(name))
    except* trio.Cancelled:
        job_log.append(f"client left with code {websocket.close_code}")
        raise


async def run_job(name: str) -> None:
    try:
        await trio.sleep(JOB_SECONDS)  # stands in for real work
    except trio.Cancelled:
        job_log.append(f"{name} abandoned")
        raise
    await websocket.send_json(done=name)
