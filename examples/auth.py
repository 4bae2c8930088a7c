"""Authentication: reject a websocket with an HTTP response before accepting it.

Run it with ``trioweb run --app examples.auth:app``. Try it with curl and a websocket client:

* ``curl -u alice:wonderland http://127.0.0.1:5000/me`` (HTTP, Basic auth)
* ``ws://127.0.0.1:5000/ws`` with ``Authorization: Bearer s3cret-token-of-bob``
* ``ws://127.0.0.1:5000/rooms/lobby?token=open-sesame`` (a token in the query string)

Until a handler accepts, a websocket is an HTTP GET request, so it can be answered like one:
abort with a status or return a response value, and the client gets that HTTP response instead
of a websocket. Two ways to guard handlers are shown:

``login_required``
    A decorator for both HTTP views and websocket handlers. No usable credentials: ``401`` with a
    ``WWW-Authenticate`` challenge. Credentials that do not match: ``403``. On success the user
    name is in ``g.user``.
``before_websocket`` on a blueprint
    A hook that guards every websocket of the blueprint; it checks a ``?token=`` query argument,
    because browsers cannot set headers on a websocket handshake. (Query strings end up in access
    logs: use short-lived tokens there.)
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from werkzeug.datastructures import Authorization, WWWAuthenticate

from trioweb import Blueprint, TrioWeb, abort, g, has_websocket_context, request, websocket

P = ParamSpec("P")
R = TypeVar("R")

#: Passwords by user name; a real app keeps password hashes (werkzeug.security) in a database.
PASSWORDS = {"alice": "wonderland"}
#: Users by API token.
TOKENS = {"s3cret-token-of-bob": "bob"}
#: The token the rooms blueprint wants in ``?token=``.
ROOM_TOKEN = "open-sesame"

REALM = "trioweb examples"

app = TrioWeb(__name__)


def _user_for(auth: Authorization) -> str | None:
    """The user these credentials belong to, or ``None`` if they do not match anyone's."""
    if auth.type == "basic" and auth.username is not None and auth.password is not None:
        expected = PASSWORDS.get(auth.username)
        # compare_digest takes as long for a near miss as for a wild guess.
        if expected is not None and secrets.compare_digest(auth.password, expected):
            return auth.username
        return None
    if auth.type == "bearer" and auth.token is not None:
        for token, user in TOKENS.items():
            if secrets.compare_digest(auth.token, token):
                return user
    return None


def login_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | tuple[str, int]]]:
    """Run ``view`` only for a known user (then in ``g.user``); answer 401 or 403 otherwise.

    Works on HTTP views and websocket handlers alike. For a websocket it must run before the
    handler accepts, which it does: it wraps the whole handler.
    """

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | tuple[str, int]:
        # The same decorator guards both kinds of view: ask which one is running.
        conn = websocket if has_websocket_context() else request
        auth = conn.authorization
        if auth is None:
            # No (or unreadable) credentials: say which schemes would work.
            abort(
                401,
                www_authenticate=[
                    WWWAuthenticate("basic", {"realm": REALM}),
                    WWWAuthenticate("bearer", {"realm": REALM}),
                ],
            )
        user = _user_for(auth)
        if user is None:
            # Returning a response value works as well as abort(): before accept, it becomes
            # the HTTP response that turns the websocket down.
            return "Forbidden", 403
        g.user = user
        return await view(*args, **kwargs)

    return wrapper


@app.route("/me")
@login_required
async def me() -> dict[str, str]:
    return {"user": g.user}


@app.websocket("/ws")
@login_required
async def private_echo() -> None:
    await websocket.accept()
    await websocket.send_json({"hello": g.user})
    async for message in websocket:
        await websocket.send(message)


rooms = Blueprint("rooms", __name__, url_prefix="/rooms")


@rooms.before_websocket
async def require_room_token() -> tuple[str, int] | None:
    # Runs before every websocket handler of this blueprint (and only of this blueprint).
    # Returning None lets the handler run; returning a response value rejects the handshake.
    token = websocket.args.get("token")
    if token is None or not secrets.compare_digest(token, ROOM_TOKEN):
        return "A valid ?token= is required", 403
    return None


@rooms.websocket("/<name>")
async def room(name: str) -> None:
    await websocket.accept()
    await websocket.send_json({"room": name})
    async for message in websocket:
        await websocket.send(message)


app.register_blueprint(rooms)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
