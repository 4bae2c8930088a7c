"""Ticker: sending and receiving independently, in two tasks of one nursery.

Run it with ``trioweb run --app examples.ticker:app`` and connect to
``ws://127.0.0.1:5000/ticks``. The server sends ``{"tick": 1}``, ``{"tick": 2}``, ... every
``TICK_INTERVAL`` seconds (1 by default), whatever the client does. Meanwhile the client may send:

``interval 0.5``
    tick every 0.5 seconds from the next tick on;
``stop``
    the server closes the websocket with code 1000.

``GET /listeners`` lists who is connected.

The handler owns both tasks through its nursery, so neither can outlive the connection. When the
client leaves, trioweb cancels the handler: both tasks get ``trio.Cancelled``, the nursery waits
for them, and the handler's cleanup runs. The comments below show where each kind of cleanup goes.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import trio

from trioweb import TrioWeb, current_app, websocket

log = logging.getLogger(__name__)

app = TrioWeb(__name__)
app.config["TICK_INTERVAL"] = 1.0


@dataclass
class Listener:
    """One connected client and its settings."""

    id: int
    interval: float
    ticks: int = 0


@dataclass
class Presence:
    """Who is listening right now.

    It stands in for a store shared by several server processes (Redis, a database), which is
    why its methods are async: leaving takes an ``await``, and that matters for the cleanup.
    """

    online: set[int] = field(default_factory=set)

    async def join(self, listener_id: int) -> None:
        await trio.lowlevel.checkpoint()  # a round trip to the store
        self.online.add(listener_id)

    async def leave(self, listener_id: int) -> None:
        await trio.lowlevel.checkpoint()  # a round trip to the store
        self.online.discard(listener_id)


presence = Presence()
_ids = itertools.count(1)


@app.route("/listeners")
async def listeners() -> dict[str, list[int]]:
    return {"online": sorted(presence.online)}


@app.websocket("/ticks")
async def ticks() -> None:
    await websocket.accept()
    listener = Listener(next(_ids), float(current_app.config["TICK_INTERVAL"]))
    await presence.join(listener.id)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_ticks, listener)
            nursery.start_soon(receive_commands, listener, nursery.cancel_scope)
        # Reached only after "stop": receive_commands cancelled the nursery, which ended both
        # tasks, and that cancellation stops at the nursery. Close explicitly to give a reason
        # (returning would close with 1000 and no reason).
        await websocket.close(1000, "stopped by the client")
    except* trio.Cancelled:
        # The client left. Cancelled came out of the nursery, so it arrives wrapped in an
        # exception group: a plain `except trio.Cancelled:` would not match it here, while
        # `except*` does. Do synchronous bookkeeping here, and always re-raise.
        log.info("listener %d left after %d ticks", listener.id, listener.ticks)
        raise
    finally:
        # Runs however the handler ends: stop, disconnect, or an error. The handler may already
        # be cancelled, and then every unshielded `await` raises Cancelled at once: without the
        # shield, presence.leave() would never reach the store and the listener would stay
        # "online" forever. A shield also blocks the server's shutdown, so keep the work short
        # and, if it talks to the network, bound it with trio.move_on_after inside the shield.
        with trio.CancelScope(shield=True):
            await presence.leave(listener.id)


async def send_ticks(listener: Listener) -> None:
    try:
        while True:
            # The interval is read afresh each time, so a change applies from the next tick.
            await trio.sleep(listener.interval)
            listener.ticks += 1
            await websocket.send_json({"tick": listener.ticks})
    except trio.Cancelled:
        # Inside the task itself nothing has wrapped Cancelled yet, so a plain except works
        # (but a `finally:` does the same job and cannot forget to re-raise).
        log.debug("ticker of listener %d stopped", listener.id)
        raise


async def receive_commands(listener: Listener, stop: trio.CancelScope) -> None:
    while True:
        message = await websocket.receive()
        if message == "stop":
            # Cancel the nursery, not just this task: the ticker must stop too. Closing is left
            # to the handler, after both tasks are done, so no tick can follow the close.
            stop.cancel()
            return
        command, _, argument = message.partition(" ") if isinstance(message, str) else ("", "", "")
        if command == "interval":
            try:
                interval = float(argument)
            except ValueError:
                interval = 0.0
            if not 0.01 <= interval <= 3600:
                await websocket.send_json({"error": "interval takes seconds, from 0.01 to 3600"})
                continue
            listener.interval = interval
            await websocket.send_json({"interval": interval})
        else:
            await websocket.send_json({"error": "commands are 'interval <seconds>' and 'stop'"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
