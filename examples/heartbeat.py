"""Heartbeat: notice a client that has gone silent, even when the network does not say so.

Run it with ``trioweb run --app examples.heartbeat:app`` and connect to
``ws://127.0.0.1:5000/ws``. Messages are echoed back. When the client has sent nothing for
``HEARTBEAT_INTERVAL`` seconds (30 by default), the server sends the text ``ping``, and the
client must answer ``pong`` within another interval; if it does not, the server closes the
websocket with code 4000, reason ``heartbeat timeout``.

A client whose machine sleeps or whose network drops sends no close frame, and TCP may take many
minutes to notice; this is how an app finds out sooner. Websocket ping/pong *frames* are answered
by the client's websocket library and are not visible to the app, so a heartbeat the app controls
(here: text messages) is also a check that the client application itself is alive.

``trio.move_on_after`` bounds each wait. Cancelling ``websocket.receive()`` this way loses no
message: a message that has not been returned stays queued for the next ``receive()``.
"""

from __future__ import annotations

import trio

from trioweb import TrioWeb, current_app, websocket

#: The close code for a missed heartbeat: 4000-4999 are codes for the application to define.
HEARTBEAT_TIMEOUT = 4000

app = TrioWeb(__name__)
app.config["HEARTBEAT_INTERVAL"] = 30.0


@app.websocket("/ws")
async def echo_with_heartbeat() -> None:
    interval = float(current_app.config["HEARTBEAT_INTERVAL"])
    await websocket.accept()
    while True:
        message = await receive_within(interval)
        if message is not None:
            await websocket.send(message)
            continue
        # Quiet for a whole interval: ask the client to show it is still there.
        await websocket.send("ping")
        if not await pong_within(interval):
            await websocket.close(HEARTBEAT_TIMEOUT, "heartbeat timeout")
            return


async def receive_within(seconds: float) -> str | bytes | None:
    """The next message, or ``None`` if none comes within ``seconds``."""
    with trio.move_on_after(seconds):
        return await websocket.receive()
    return None


async def pong_within(seconds: float) -> bool:
    """Whether the client answers ``pong`` within ``seconds``; other messages that arrive
    meanwhile are echoed as usual, but do not count as the answer."""
    with trio.move_on_after(seconds):
        while True:
            message = await websocket.receive()
            if message == "pong":
                return True
            await websocket.send(message)
    return False


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
