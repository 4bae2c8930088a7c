"""Receiving and sending messages: text, binary and JSON."""

import hashlib
from typing import Any

from werkzeug.exceptions import BadRequest

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)


@app.websocket("/echo")
async def echo() -> None:
    async for message in websocket:
        await websocket.send(message)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@app.websocket("/sum")
async def running_sum() -> None:
    total = 0.0
    while True:
        try:
            numbers = await websocket.receive_json()
        except BadRequest:
            await websocket.send_json(error="that was not JSON")
            continue
        if not isinstance(numbers, list) or not all(is_number(n) for n in numbers):
            await websocket.send_json(error="send a list of numbers, like [1, 2.5]")
            continue
        total += sum(numbers)
        await websocket.send_json(total=total, count=len(numbers))


@app.websocket("/sha256")
async def sha256() -> None:
    while True:
        message = await websocket.receive()
        if isinstance(message, str):
            await websocket.close(1003, "send binary frames; text is not hashed")
            return
        await websocket.send(hashlib.sha256(message).hexdigest())
