"""A ``login_required`` decorator that guards HTTP views and websocket handlers alike."""

import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from trioweb import TrioWeb, abort, g, has_websocket_context, request, websocket

P = ParamSpec("P")
R = TypeVar("R")

app = TrioWeb(__name__)

#: API tokens and their users; a real app would look them up in its database.
TOKENS = {"tok-ada-7f3a": "ada", "tok-grace-91c2": "grace"}


def user_for(token: str) -> str | None:
    for known, user in TOKENS.items():
        if secrets.compare_digest(token, known):
            return user
    return None


def login_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run ``view`` for a known user only, with the user's name in ``g.user``; else 401."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        connection = websocket if has_websocket_context() else request
        auth = connection.authorization
        if auth is not None and auth.type == "bearer":
            token = auth.token
        else:
            # Browsers cannot set headers on a websocket handshake: accept ?token= as well.
            token = connection.args.get("token")
        user = user_for(token) if token is not None else None
        if user is None:
            abort(401)
        g.user = user
        return await view(*args, **kwargs)

    return wrapper


@app.get("/me")
@login_required
async def me() -> dict[str, str]:
    return {"user": g.user}


@app.websocket("/inbox")
@login_required
async def inbox() -> None:
    await websocket.accept()
    await websocket.send_json({"user": g.user, "unread": 0})
    async for message in websocket:
        await websocket.send_json({"user": g.user, "echo": message})
