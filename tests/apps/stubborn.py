"""A websocket handler that swallows every ``trio.Cancelled`` in a loop, so that nothing can end
it: ``trioweb run`` must still exit on Ctrl+C, naming it."""

import sys
from contextlib import suppress

import trio

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)


@app.websocket("/ws")
async def stubborn() -> None:
    await websocket.accept()
    print("stubborn: accepted", file=sys.stderr, flush=True)
    while True:
        with suppress(BaseException):  # the bug this app is about: Cancelled swallowed
            await websocket.receive()
        # Until every trioweb call checkpoints, receive() on a closed websocket raises without
        # yielding: this checkpoint makes the loop yield, so that it cannot freeze the event
        # loop (and it swallows Cancelled too, or the loop would end here).
        with suppress(BaseException):
            await trio.lowlevel.checkpoint()
