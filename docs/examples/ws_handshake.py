"""Websocket handshakes: accept with a subprotocol and headers, or answer with an HTTP response."""

import secrets

from werkzeug.exceptions import NotFound

from trioweb import TrioWeb, abort, websocket

app = TrioWeb(__name__)
# Pages of the app's own origin may open its websockets; so may these (see the security page).
app.config["WEBSOCKET_ALLOWED_ORIGINS"] = ["https://chat.example.com"]

#: Clients older than this are asked to update before they may connect.
MIN_CLIENT_VERSION = 2
ROOMS = {"lobby", "trio"}
ADMIN_PASSWORD = "correct horse battery staple"
#: The versions of the chat protocol the server speaks, best first.
SUBPROTOCOLS = ["chat.v2", "chat.v1"]


@app.before_websocket
async def check_client_version() -> tuple[str, int] | None:
    version = websocket.args.get("v", type=int)
    if version is not None and version < MIN_CLIENT_VERSION:
        return f"Update the app: version {MIN_CLIENT_VERSION} or newer may connect", 426
    return None


@app.websocket("/chat")
async def chat() -> tuple[str, int] | None:
    offered = websocket.requested_subprotocols
    spoken = [name for name in SUBPROTOCOLS if name in offered]
    if not spoken:
        return f"Offer one of these subprotocols: {', '.join(SUBPROTOCOLS)}", 400
    await websocket.accept(headers={"X-Chat-Server": "trioweb"}, subprotocol=spoken[0])
    await websocket.send(f"Welcome! We speak {websocket.subprotocol}.")
    async for message in websocket:
        await websocket.send(message)
    return None


@app.websocket("/admin")
async def admin() -> tuple[str, int] | None:
    auth = websocket.authorization
    if auth is None or auth.password is None:
        abort(401)
    if not secrets.compare_digest(auth.password, ADMIN_PASSWORD):
        return "Invalid password", 403
    await websocket.accept()
    await websocket.send(f"Hello, {auth.username}.")
    return None


@app.websocket("/rooms/<name>")
async def room(name: str) -> None:
    if name not in ROOMS:
        raise NotFound(f"There is no room called {name!r}.")
    await websocket.send(f"You are in {name}.")
