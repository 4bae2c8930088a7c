"""A heartbeat: ping a quiet client, and close if it stays silent."""

import trio

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)

PING_EVERY = 20  # seconds
SILENCE_LIMIT = 45  # seconds without any message from the client
HEARTBEAT_TIMEOUT = 4000  # an application close code (4000-4999 are free for apps)


@app.websocket("/live")
async def live() -> None:
    await websocket.accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ping, PING_EVERY)
        with trio.move_on_after(SILENCE_LIMIT) as silence:
            async for message in websocket:
                silence.deadline = trio.current_time() + SILENCE_LIMIT
                if message != "pong":
                    await websocket.send(message)
        nursery.cancel_scope.cancel()  # stop pinging
    await websocket.close(HEARTBEAT_TIMEOUT, f"nothing received for {SILENCE_LIMIT} s")


async def ping(seconds: float) -> None:
    while True:
        await trio.sleep(seconds)
        await websocket.send("ping")
