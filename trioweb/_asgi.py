"""The I/O edge: ASGI scope in, wrappers and nurseries around the app's pipeline, messages out.

Each connection runs in its own nursery (the connection nursery), owned here:

``http``
    The view runs in the *handler scope*. A disconnect watcher sleeps ``DISCONNECT_WATCH_DELAY``
    seconds (most requests are answered by then, and it costs nothing), then buffers the body the
    view has not read and waits for ``http.disconnect``: if the client leaves before the response
    is sent, the handler scope is cancelled and the view sees ``trio.Cancelled``.
``lifespan``
    Owns the app nursery: ``before_serving`` functions run, background tasks live in the nursery
    until shutdown, then ``after_serving`` runs and the nursery is cancelled.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

import trio

from ._ctx import bind_app, bind_request
from ._request import Request
from ._types import Receive, Scope, Send

if TYPE_CHECKING:
    from ._app import TrioWeb

log = logging.getLogger("trioweb")


async def handle_http(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request: route, run the pipeline in the handler scope, send the response."""
    config = app.config
    request = Request(
        scope,
        receive,
        max_content_length=config["MAX_CONTENT_LENGTH"],
        max_form_memory_size=config["MAX_FORM_MEMORY_SIZE"],
        max_form_parts=config["MAX_FORM_PARTS"],
    )
    bind_app(app)
    bind_request(request)
    app.match_request(request)
    handler_scope = trio.CancelScope()
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            _watch_http_disconnect,
            request,
            receive,
            handler_scope,
            config["DISCONNECT_WATCH_DELAY"],
        )
        with handler_scope:
            try:
                response = await app.full_dispatch_request(request)
                await response.send(send, head=request.method == "HEAD")
            except Exception as exc:  # the pipeline answered what it could; log the rest
                error = exc
                log.exception(
                    "Error while sending the response to %s %s", request.method, request.path
                )
        nursery.cancel_scope.cancel()
    await app.do_teardown(request, "request", error)


async def _watch_http_disconnect(
    request: Request, receive: Receive, handler_scope: trio.CancelScope, delay: float
) -> None:
    await trio.sleep(delay)
    disconnected = await request.body.drain()
    while not disconnected:
        disconnected = (await receive())["type"] == "http.disconnect"
    handler_scope.cancel()


async def handle_lifespan(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the app's lifespan: startup, the app nursery while serving, then shutdown."""
    bind_app(app)
    message = await receive()
    assert message["type"] == "lifespan.startup", message
    async with trio.open_nursery() as nursery:
        app.nursery = nursery
        try:
            await app.startup()
        except Exception as error:
            log.exception("before_serving failed; the app will not serve")
            nursery.cancel_scope.cancel()
            await send({"type": "lifespan.startup.failed", "message": _describe(error)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown", message
        try:
            await app.shutdown()
        except Exception as error:
            log.exception("after_serving failed")
            await send({"type": "lifespan.shutdown.failed", "message": _describe(error)})
            return
        finally:
            nursery.cancel_scope.cancel()
            app.nursery = None
    await send({"type": "lifespan.shutdown.complete"})


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


async def handle_websocket(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Placeholder until websockets land: refuse the handshake."""
    await receive()
    await send({"type": "websocket.close", "code": 1000})
    del app
