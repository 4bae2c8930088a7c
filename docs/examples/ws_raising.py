"""Closing a websocket by raising: WebsocketException, and abort() after accept."""

from trioweb import TrioWeb, WebsocketException, abort, websocket

app = TrioWeb(__name__)

TOKENS = {"tok-ada": "ada"}
ROOMS = {"lobby", "kitchen"}
TOKEN_EXPIRED = 4001  # an application's own close code: 4000-4999


@app.websocket("/rooms")
async def rooms() -> None:
    await websocket.accept()
    user = TOKENS.get(websocket.args.get("token", ""))
    while True:
        command = await websocket.receive_json()
        if user is None:
            raise WebsocketException(TOKEN_EXPIRED, "log in again")
        if command.get("join") not in ROOMS:
            abort(404, f"no room {command.get('join')!r}")  # closes with 1008 and this reason
        await websocket.send_json(joined=command["join"], user=user)
