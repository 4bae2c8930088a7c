"""Echo: every message comes back exactly as it was sent.

Run it with ``trioweb run --app examples.echo:app`` and connect to ``ws://127.0.0.1:5000/ws``
with any websocket client, for instance ``python -m websockets ws://127.0.0.1:5000/ws``.

A text frame comes back as text and a binary frame as binary, empty frames included:
``websocket.receive()`` returns ``str`` or ``bytes`` as the client sent it, and ``send()``
picks the frame type from the type it is given.
"""

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)


@app.websocket("/ws")
async def echo() -> None:
    # Accepting is optional (the first receive or send accepts), but saying it makes the
    # handshake visible: before this line the handler could still reject with an HTTP response.
    await websocket.accept()
    # The loop ends only by cancellation: when the client leaves, trioweb cancels the handler,
    # and there is nothing to clean up here.
    async for message in websocket:
        await websocket.send(message)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
