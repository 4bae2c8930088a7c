"""The I/O edge: ASGI scope in, wrappers and nurseries around the pipeline, messages out.

Each connection runs in its own nursery (the connection nursery), owned here; what happens in it
is :mod:`trioweb._pipeline`'s, how a disconnect is noticed :mod:`trioweb._listener`'s.

``http``
    The pipeline's dispatch and the sending of its response run in the *handler scope*, which
    the app's disconnect listener cancels if the client leaves first. Then the pipeline's ending
    (teardown). A request whose dispatch cannot suspend
    (:func:`trioweb._pipeline.cannot_suspend`: a view and hooks without an ``await``) has
    nothing a cancellation could reach, so it runs without the scope and the listener's watch;
    its response is sent without them too, unless the body is streamed (the stream's code runs
    while it is sent).
``websocket``
    The handler runs in the connection nursery's body, so the nursery's scope is the handler
    scope; the app's :class:`~trioweb._listener.DisconnectListener` looks after the connection
    while it runs. Then the pipeline's ending (after hooks, close or rejection, teardown), and an
    unhandled error is re-raised for the server to log.
``lifespan``
    Owns the app nursery: the disconnect listener and ``before_serving`` start, background tasks
    live in the nursery until shutdown, then ``after_serving`` runs and the nursery is
    cancelled. The app nursery is supervised (:func:`trioweb._tasks.run_app_nursery`): a task
    that crashes it is reported, and a fresh one takes its place.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, final

import trio

from . import _pipeline
from ._ctx import bind_app, bind_request, bind_websocket
from ._gc import threshold_at_least
from ._listener import DisconnectListener, HttpWatch
from ._pipeline import Outcome
from ._request import Request
from ._servedby import warn_unless_protected
from ._tasks import run_app_nursery, task_error_sink
from ._types import Receive, Scope, Send
from ._websocket import Websocket

if TYPE_CHECKING:
    from ._app import TrioWeb

log = logging.getLogger("trioweb")


async def handle_http(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request: route, dispatch and send the response (in the handler scope,
    unless the dispatch cannot suspend), then end it."""
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
    guard = app._guard
    guard.http_in_flight += 1
    outcome = _NOTHING_YET
    answer: _Answer | None = None
    try:
        if _pipeline.cannot_suspend(app, request):
            # Nothing in the dispatch can wait, so nothing could cancel it: no handler scope and
            # no watch (they are a third of a small request's cost). Only a streamed body runs
            # the view's code while it is sent, and gets them for that.
            outcome = await _pipeline.dispatch_request(app, request)
            assert outcome.response is not None
            if outcome.response.is_streamed:
                answer = _Answer(outcome)
                await _answer_watched(app, request, receive, send, answer)
            else:
                outcome = await _send_response(request, send, outcome)
        else:
            answer = _Answer()
            await _answer_watched(app, request, receive, send, answer)
    finally:  # also when the server cancels the connection: the ending is shielded
        guard.http_in_flight -= 1
        if answer is not None:
            outcome = answer.outcome
        await _pipeline.end_request(app, request, outcome)


_NOTHING_YET = Outcome()


@final
class _Answer:
    """What a watched request has come to, for its ending: also when the server cancels it
    half-way (the outcome of a dispatch whose response was being sent, say)."""

    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome = _NOTHING_YET) -> None:
        #: ``_NOTHING_YET`` until the dispatch has run (a dispatch never returns that object).
        self.outcome = outcome


async def _answer_watched(
    app: TrioWeb, request: Request, receive: Receive, send: Send, answer: _Answer
) -> None:
    """Dispatch (unless done) and send in the handler scope, which the app's disconnect
    listener cancels if the client leaves first; ``answer`` follows the outcome."""
    listener = app._disconnect_listener
    if listener is None:  # served without a lifespan: a listener of its own
        async with trio.open_nursery() as nursery:
            listener = DisconnectListener(app.config["DISCONNECT_LISTENER_DELAY"])
            nursery.start_soon(listener.run)
            await _answer_watched_by(listener, app, request, receive, send, answer)
            nursery.cancel_scope.cancel()
    else:
        await _answer_watched_by(listener, app, request, receive, send, answer)


async def _answer_watched_by(
    listener: DisconnectListener,
    app: TrioWeb,
    request: Request,
    receive: Receive,
    send: Send,
    answer: _Answer,
) -> None:
    handler_scope = trio.CancelScope()
    watch = HttpWatch(request.body, receive, handler_scope)
    listener.watch_http(watch)
    try:
        try:
            with handler_scope:
                if answer.outcome is _NOTHING_YET:
                    answer.outcome = await _pipeline.dispatch_request(app, request)
                answer.outcome = await _send_response(request, send, answer.outcome)
        except Exception as error:  # what a disconnect's cancellation dragged out of a nursery
            log.exception("Error while answering %s %s", request.method, request.path)
            answer.outcome = Outcome(error=error)
    finally:
        stopped = listener.unwatch_http(watch)
        if stopped is not None:  # its listen task is cancelled: no task outlives a request
            with trio.CancelScope(shield=True):
                await stopped.wait()


async def _send_response(request: Request, send: Send, outcome: Outcome) -> Outcome:
    """Send the outcome's response; an error here (a streamed body that failed half-way) is
    logged and becomes the outcome."""
    assert outcome.response is not None
    try:
        await outcome.response.send(send, head=request.method == "HEAD")
    except Exception as error:
        log.exception("Error while answering %s %s", request.method, request.path)
        return Outcome(error=error)
    return outcome


async def handle_websocket(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one websocket: the pipeline's dispatch in the handler scope (the connection
    nursery's) under the disconnect listener's eye, then its ending. An unhandled error is
    re-raised for the server."""
    message = await receive()
    if message["type"] != "websocket.connect":
        raise RuntimeError(f"expected websocket.connect, got {message['type']!r}")
    ws = Websocket(scope, receive, send)
    bind_app(app)
    bind_websocket(ws)
    app.match_request(ws)
    outcome = Outcome()
    try:
        # The handler runs in the connection nursery's body, so the nursery's scope is the
        # handler scope: a disconnect cancels the handler and any listen task in one go.
        async with trio.open_nursery() as nursery:
            listener = app._disconnect_listener
            if listener is None:  # served without a lifespan: a listener of its own
                listener = DisconnectListener(app.config["DISCONNECT_LISTENER_DELAY"])
                nursery.start_soon(listener.run)
            inbox = ws._attach(nursery)
            listener.enroll(inbox, nursery)
            try:
                outcome = await _pipeline.dispatch_websocket(app, ws)
            finally:
                listener.withdraw(inbox)
                app._guard.release(ws)  # admitted by the pipeline (trioweb._guard)
                nursery.cancel_scope.cancel()
    except Exception as error:  # dragged out of the handler's nursery by a disconnect
        outcome = Outcome(close=(1011, "Internal Server Error"), error=error)
    except BaseException:  # the server cancels the connection (shutdown): end it, shielded
        await _pipeline.end_websocket(app, ws, Outcome(close=_GOING_AWAY))
        raise
    unhandled = await _pipeline.end_websocket(app, ws, outcome)
    if unhandled is not None:
        raise unhandled


_GOING_AWAY = (1001, "the server is shutting down")


async def handle_lifespan(app: TrioWeb, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the app's lifespan: startup, the app nursery while serving, then shutdown."""
    bind_app(app)
    warn_unless_protected(scope)
    app._task_errors = task_error_sink(scope)
    message = await receive()
    assert message["type"] == "lifespan.startup", message
    with threshold_at_least(app.config["GC_THRESHOLD"]):
        async with trio.open_nursery() as nursery:
            app.nursery = await nursery.start(run_app_nursery, app)
            app._disconnect_listener = listener = DisconnectListener(
                app.config["DISCONNECT_LISTENER_DELAY"]
            )
            nursery.start_soon(listener.run)
            try:
                await app.startup()
            except Exception as error:
                log.exception(
                    "startup failed (before_serving or while_serving); the app will not serve"
                )
                app.nursery = app._disconnect_listener = None
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
                log.exception("shutdown failed (after_serving or while_serving)")
                await send({"type": "lifespan.shutdown.failed", "message": _describe(error)})
                return
            finally:
                nursery.cancel_scope.cancel()
                app.nursery = app._disconnect_listener = None
    await send({"type": "lifespan.shutdown.complete"})


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))
