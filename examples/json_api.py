"""A JSON API over a websocket, and what to do with messages that break its rules.

Run it with ``trioweb run --app examples.json_api:app`` and connect to
``ws://127.0.0.1:5000/api``. Each message is a JSON object with a ``"type"``; an optional ``"id"``
is copied into the reply so the client can match replies to requests:

* ``{"type": "ping", "id": 1}`` → ``{"type": "pong", "id": 1}``
* ``{"type": "sum", "values": [1, 2, 3]}`` → ``{"type": "result", "value": 6}``
* ``{"type": "average", "values": [1, 2]}`` → ``{"type": "result", "value": 1.5}``

Each kind of bad input ends differently:

* not JSON: close 1003 ("unsupported data"); on ``/api/lenient`` instead, an
  ``{"type": "error"}`` reply, and the websocket stays open;
* JSON that breaks the API's rules (not an object, no ``"type"``, an unknown type, values that are
  not numbers): close 1008 ("policy violation") with the reason;
* a bug in the server: nothing catches it, so trioweb closes with 1011 and the server logs the
  traceback.

The bug is real: ``{"type": "average", "values": []}`` divides by zero.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import BadRequest

from trioweb import TrioWeb, websocket

UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008

app = TrioWeb(__name__)


class PolicyViolation(Exception):
    """The message is JSON but breaks the API's rules; the text is the close reason."""


@app.websocket("/api")
async def api() -> None:
    await serve_api(lenient=False)


@app.websocket("/api/lenient")
async def lenient_api() -> None:
    await serve_api(lenient=True)


async def serve_api(*, lenient: bool) -> None:
    """Answer messages until the client leaves or breaks a rule.

    With ``lenient``, a message that is not JSON gets an error reply instead of closing.
    """
    await websocket.accept()
    while True:
        try:
            message = await websocket.receive_json()
        except BadRequest:
            # receive_json() raises BadRequest for a message that is not JSON; the websocket
            # is still open, so either choice below is possible.
            if lenient:
                await websocket.send_json({"type": "error", "error": "messages must be JSON"})
                continue
            await websocket.close(UNSUPPORTED_DATA, "messages must be JSON")
            return
        try:
            reply = answer(message)
        except PolicyViolation as violation:
            await websocket.close(POLICY_VIOLATION, str(violation))
            return
        # Any other exception (the average of nothing, say) is not caught: it ends the handler,
        # trioweb closes with 1011 "Internal Server Error", and the server logs it.
        if isinstance(message.get("id"), int | str):
            reply["id"] = message["id"]
        await websocket.send_json(reply)


def answer(message: Any) -> dict[str, Any]:
    """The reply to ``message``; raises :class:`PolicyViolation` if it breaks the API's rules."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise PolicyViolation('each message must be an object with a "type"')
    kind = message["type"]
    if kind == "ping":
        return {"type": "pong"}
    if kind in ("sum", "average"):
        values = _numbers(message.get("values"))
        total = sum(values)
        return {"type": "result", "value": total if kind == "sum" else total / len(values)}
    raise PolicyViolation(f"unknown message type {kind[:40]!r}")


def _numbers(values: Any) -> list[int | float]:
    if not isinstance(values, list) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in values
    ):
        raise PolicyViolation('"values" must be a list of numbers')
    return list(values)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
