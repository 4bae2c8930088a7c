"""Sending and receiving independently: a ticker task and a command task in one nursery."""

import trio

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)


class Settings:
    """What the client may change while it listens."""

    def __init__(self) -> None:
        self.interval = 1.0


@app.websocket("/ticks")
async def ticks() -> None:
    await websocket.accept()
    settings = Settings()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_ticks, settings)
        nursery.start_soon(receive_commands, settings, nursery.cancel_scope)
    # Both tasks are done: the client sent "stop".
    await websocket.close(1000, "stopped")


async def send_ticks(settings: Settings) -> None:
    count = 0
    while True:
        await trio.sleep(settings.interval)
        count += 1
        await websocket.send_json(tick=count)


async def receive_commands(settings: Settings, tasks: trio.CancelScope) -> None:
    async for message in websocket:
        command, _, argument = str(message).partition(" ")
        if command == "stop":
            tasks.cancel()  # ends send_ticks, and this task at its next checkpoint
        elif command == "interval" and 0.1 <= _to_float(argument) <= 60:
            settings.interval = float(argument)
            await websocket.send_json(interval=settings.interval)
        else:
            await websocket.send_json(error="commands: 'interval <0.1 to 60>', 'stop'")


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
