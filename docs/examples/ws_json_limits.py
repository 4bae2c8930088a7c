"""JSON from clients: tighter limits, answering what cannot be read, or closing with 1007."""

from trioweb import InvalidPayload, TrioWeb, websocket

app = TrioWeb(__name__)
# This API's messages are flat: refuse anything nested deeper than 8, and NaN either way.
app.config.update(JSON_MAX_DEPTH=8, JSON_ALLOW_NAN=False)


@app.websocket("/api")
async def api() -> None:
    while True:
        try:
            message = await websocket.receive_json()
        except InvalidPayload as error:  # a BadRequest: `except BadRequest` works too
            await websocket.send_json(error=error.description)
            continue  # the websocket is still open
        await websocket.send_json(echo=message)


@app.websocket("/strict")
async def strict() -> None:
    # Left uncaught, InvalidPayload closes the websocket with 1007 and its description.
    while True:
        await websocket.send_json(echo=await websocket.receive_json())
