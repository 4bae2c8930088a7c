"""Refusing to run on an event loop other than Trio's.

An ASGI server may run the app on asyncio: Hypercorn does unless it is told ``-k trio`` (its
default worker class is asyncio), and so do uvicorn and daphne. trioweb's code calls Trio
throughout, so on asyncio nothing it does can work. Rather than start and then fail every
request with an ``AttributeError`` deep in Trio, the app says what is wrong, once per connection
and at startup:

* the lifespan reports ``lifespan.startup.failed`` with :data:`WRONG_LOOP`, so the server stops
  at once with that line (Hypercorn prints it and exits);
* a connection (when the server runs no lifespan) is logged as an error and answered with a 500
  (HTTP) or a refused handshake (websocket).

All of it uses only the ``receive``/``send`` awaitables the server gives, never Trio, since no
Trio loop runs. :func:`on_trio` is on every connection's path: it costs about 0.1 µs (sniffio
reads a thread-local that Trio sets).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sniffio

if TYPE_CHECKING:
    from ._types import Receive, Scope, Send

log = logging.getLogger("trioweb")

#: What the app says when a server runs it on an event loop other than Trio's.
WRONG_LOOP = (
    "trioweb apps need Trio's event loop, but this server runs them on {library}: serve the"
    " app with Hypercorn's trio worker (hypercorn -k trio module:app), or with trioweb run"
)


def on_trio() -> bool:
    """Whether the calling code runs on Trio's event loop (sync, cheap)."""
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def _library() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "an unknown event loop"


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``scope`` without Trio: a failed lifespan startup, a 500, or a refused handshake,
    each naming ``-k trio``. Awaits only ``receive``/``send``; raises what they raise (Hypercorn's
    lifespan ``send`` raises to report the failed startup)."""
    message = WRONG_LOOP.format(library=_library())
    kind = scope["type"]
    if kind == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.failed", "message": message})
        return
    log.error("%s", message)
    if kind == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1011, "reason": "wrong event loop"})
        return
    body = b"Internal Server Error"  # the log says why; the client need not know
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
