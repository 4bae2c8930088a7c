"""The I/O edge: ASGI scope in, wrappers and nurseries around the app's pipeline, messages out.

Each connection runs in its own nursery (the connection nursery), owned here:

``http``
    The view runs in the *handler scope*. A disconnect watcher sleeps ``DISCONNECT_WATCH_DELAY``
    seconds (most requests are answered by then, and it costs nothing), then buffers the body the
    view has not read and waits for ``http.disconnect``: if the client leaves before the response
    is sent, the handler scope is cancelled and the view sees ``trio.Cancelled``.
``websocket``
    The handler runs in the connection nursery's body, so the nursery's scope is the handler
    scope. The app's :class:`~trioweb._websocket.DisconnectSweeper` starts a listener in the
    nursery when the handler stays out of ``receive()``; a disconnect cancels the scope. After
    the handler, the edge ends what it left open: close 1000 (1011 after an error), the
    rejection response, or a 500.
``lifespan``
    Owns the app nursery: the disconnect sweeper and ``before_serving`` start, background tasks
    live in the nursery until shutdown, then ``after_serving`` runs and the nursery is
    cancelled. The app nursery is supervised (:func:`trioweb._tasks.run_app_nursery`): a task
    that crashes it is reported, and a fresh one takes its place.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

import attrs
import trio
from werkzeug.exceptions import InternalServerError

from ._ctx import bind_app, bind_request, bind_websocket
from ._errors import WebsocketClosed
from ._request import Request
from ._response import Response
from ._tasks import run_app_nursery, task_error_sink
from ._types import Receive, Scope, Send
from ._websocket import DisconnectSweeper, Websocket, WebsocketState

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
        try:
            with handler_scope:
                response = await app.full_dispatch_request(request)
                await response.send(send, head=request.method == "HEAD")
        except Exception as exc:
            # The pipeline answered what it could. What is left: a streamed body that failed
            # half-way, or an error that a disconnect's cancellation dragged out of a nursery.
            error = exc
            log.exception("Error while answering %s %s", request.method, request.path)
        nursery.cancel_scope.cancel()
    if error is None:
        error = request.unhandled_exception
    try:
        await app.do_teardown(request, "request", error)
    finally:
        request.close()


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
    app._task_errors = task_error_sink(scope)
    message = await receive()
    assert message["type"] == "lifespan.startup", message
    async with trio.open_nursery() as nursery:
        app.nursery = await nursery.start(run_app_nursery, app)
        app.disconnect_sweeper = sweeper = DisconnectSweeper(app.config["DISCONNECT_WATCH_DELAY"])
        nursery.start_soon(sweeper.run)
        try:
            await app.startup()
        except Exception as error:
            log.exception("before_serving failed; the app will not serve")
            app.nursery = app.disconnect_sweeper = None
            # Report before cancelling: a send in the cancelled nursery would never happen.
            await send({"type": "lifespan.startup.failed", "message": _describe(error)})
            nursery.cancel_scope.cancel()
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
            app.nursery = app.disconnect_sweeper = None
    await send({"type": "lifespan.shutdown.complete"})


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


async def handle_websocket(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one websocket: the pipeline in the handler scope (the connection nursery's), a
    listener beside it when the sweeper starts one, then the ending the handler left undecided
    (close 1000, close 1011 after an error, the rejection response, or a 500 for a handler that
    neither accepted nor rejected)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        raise RuntimeError(f"expected websocket.connect, got {message['type']!r}")
    ws = Websocket(scope, receive, send)
    bind_app(app)
    bind_websocket(ws)
    app.match_request(ws)
    outcome = Outcome(None, None)
    try:
        # The handler runs in the connection nursery's body, so the nursery's scope is the
        # handler scope: a disconnect cancels the handler and any listener in one go.
        async with trio.open_nursery() as nursery:
            ws.handler_scope = nursery.cancel_scope
            sweeper = app.disconnect_sweeper
            if sweeper is None:  # served without a lifespan: a sweeper of its own
                sweeper = DisconnectSweeper(app.config["DISCONNECT_WATCH_DELAY"])
                nursery.start_soon(sweeper.run)
            sweeper.enroll(ws, nursery)
            try:
                outcome = await app.full_dispatch_websocket(ws)
            finally:
                sweeper.withdraw(ws)
                nursery.cancel_scope.cancel()
    except Exception as error:  # dragged out of the handler's nursery by a disconnect
        outcome = Outcome(None, error)
    try:
        await _finish_websocket(app, ws, outcome)
    finally:
        unhandled = None if outcome.handled else outcome.error  # as for HTTP: handled is None
        await app.do_teardown(ws, "websocket", unhandled or ws.unhandled_exception)
    if outcome.error is not None and not outcome.handled:
        raise outcome.error


async def _finish_websocket(app: TrioWeb, ws: Websocket, outcome: Outcome) -> None:
    """Run the after_websocket hooks, then end what the handler left open: the rejection, or a
    close (1000, or 1011 after an error). Not shielded: a server that cancels the connection
    (at shutdown) cuts this short as it would anything else."""
    response = outcome.response
    if ws.state is WebsocketState.CONNECTING and response is None:
        if outcome.error is None:
            log.error(
                "websocket handler %s returned without accepting, closing or rejecting the"
                " connection; answering 500",
                ws.endpoint,
            )
        response = app.http_exception_response(InternalServerError())
    response = await app.process_response(ws, "websocket", response)
    try:
        if ws.state is WebsocketState.CONNECTING:
            await _reject(ws, response, app.response_class)
        elif ws.state is WebsocketState.CONNECTED:
            if outcome.error is not None:
                await ws.close(1011, "Internal Server Error")
            else:
                await ws.close(1000)
    except WebsocketClosed:
        pass


async def _reject(ws: Websocket, response: Response | None, response_class: type[Response]) -> None:
    """Answer the handshake with ``response``, or 403 where the server cannot send one."""
    if response is None:
        response = response_class(status=403)
    sent = await ws.reject(response.status_code, response.asgi_headers(), response.iter_encoded())
    if not sent and response.status_code != 403:
        log.warning(
            "the server has no websocket denial-response extension, so it answered 403"
            " instead of %s",
            response.status,
        )


@attrs.frozen
class Outcome:
    """How the websocket pipeline ended, for the edge to finish the connection."""

    #: The HTTP response to reject the handshake with (only before accept).
    response: Response | None
    #: The exception that ended the handler, if any.
    error: Exception | None
    #: Whether an error handler dealt with ``error`` (then it is not re-raised to the server).
    handled: bool = False
