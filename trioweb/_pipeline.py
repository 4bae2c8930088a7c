"""The pipeline: everything between routing and the connection's end, for HTTP requests and
websockets alike (``kind`` is ``"request"`` or ``"websocket"``).

Two stages, each one function per kind; the I/O edge (:mod:`trioweb._asgi`) runs them and does
only the ASGI work in between (nurseries, the disconnect listener, sending a response):

*Dispatch*, in the handler scope (a disconnect cancels it): the ``before_<kind>`` hooks (the app,
then blueprints from outer to inner; a returned value short-circuits), the view or handler, error
handlers, response coercion; for HTTP also the ``after_request`` hooks, since they shape the
response the edge then sends. It returns an :class:`Outcome`: what to answer and what went wrong.

*Ending*, after the handler scope, shielded from cancellation and bounded by ``TEARDOWN_TIMEOUT``
(so a server that cancels the connection at shutdown still gets its cleanup): for a websocket the
``after_websocket`` hooks and whatever the handler left open (the rejection response; a close,
1000 or the error's code; a 500 for a handler that never answered the handshake), then for both
kinds the ``teardown_<kind>`` hooks, whose own errors are logged, and the request body's files are
closed.

Errors. An error handler is looked up along the exception's MRO, innermost blueprint first, then
the app. For an exception group (nurseries raise them routinely) a handler registered for the
group's own class wins, else the first leaf, depth first, that has a handler (along its MRO, so a
handler for ``Exception`` takes the first leaf), as quart-trio does; a group holding one exception
is that exception.
Before accept, an error becomes the HTTP response that rejects the handshake. After accept:

* :class:`~trioweb.WebsocketException` closes with its code and reason;
* an HTTP error (``abort(403)``) closes with 1008 (4xx) or 1011 (5xx) and its description,
  :class:`~trioweb.InvalidPayload` (from ``receive_json``) with 1007;
* ``WebsocketClosed`` (the connection is already gone) ends the handler quietly;
* anything else runs its handler if it has one, closes with 1011 and, unhandled, is logged with
  its traceback and re-raised to the server.
"""

from __future__ import annotations

import dis
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

import attrs
import trio
from werkzeug.exceptions import HTTPException, InternalServerError

from ._errors import WebsocketClosed, WebsocketException, http_error_close_code, lone_exception
from ._guard import admit_websocket
from ._response import Response, from_http_exception
from ._sessions import save_session
from ._websocket import WebsocketState

if TYPE_CHECKING:
    from ._app import TrioWeb
    from ._request import BaseRequest, Request
    from ._scaffold import Kind, Phase, Scaffold
    from ._types import ErrorHandler
    from ._websocket import Websocket

log = logging.getLogger("trioweb")

_CONNECTING = WebsocketState.CONNECTING
_CONNECTED = WebsocketState.CONNECTED


@attrs.define
class Outcome:
    """How a connection's dispatch ended, for its ending. A value: never changed once made
    (``attrs.evolve`` makes another). Not frozen, since a frozen attrs class takes three times
    as long to make, and every request makes one."""

    #: HTTP: the response to send. Websocket: the HTTP response that rejects the handshake
    #: (before accept only).
    response: Response | None = None
    #: Websocket, after accept: the close code and reason to end with, if it is still open.
    close: tuple[int, str] = (1000, "")
    #: What ended the view or handler, if not a return.
    error: BaseException | None = None
    #: Whether ``error`` was dealt with (an error handler, an HTTP error page, a deliberate
    #: close): then teardown hooks get ``None``, and the server is not told.
    handled: bool = False

    @property
    def unhandled(self) -> BaseException | None:
        """The error the teardown hooks see and the server is told of, if any."""
        return None if self.handled else self.error


# Dispatch -----------------------------------------------------------------------------------------


async def dispatch_request(app: TrioWeb, request: Request) -> Outcome:
    """Hooks, view, error handlers and ``after_request`` hooks for one HTTP request; the
    response is always set.

    The ``after_request`` hooks see every response, error pages included (as in Flask); if one
    of them raises, the error's response is sent without running them again.
    """
    scaffolds = _scopes(app, request)
    try:
        value = None
        if _has(scaffolds, "before", "request"):
            value = await _preprocess(scaffolds, "request")
        if value is None:
            value = await _view(app, request)
        outcome = Outcome(app.make_response(value))
    except Exception as error:
        outcome = await _error_response(app, request, error)
    response = outcome.response
    assert response is not None
    try:
        if _has(scaffolds, "after", "request"):
            response = await _process_response(scaffolds, "request", response)
        save_session(app, request, response)
    except Exception as error:
        return await _error_response(app, request, error)
    if response is outcome.response:  # as after_request hooks usually return it
        return outcome
    return attrs.evolve(outcome, response=response)


async def dispatch_websocket(app: TrioWeb, ws: Websocket) -> Outcome:
    """Hooks, handler and error handlers for one websocket (see the module's rules on errors).

    Before accept, a returned value is the HTTP response that rejects the handshake. After
    accept, the handler's return value is ignored, with a warning if it is not ``None``.
    """
    refusal = admit_websocket(app, ws)  # origin and connection limit, before any hook
    if refusal is not None:
        return Outcome(refusal, handled=True)
    try:
        value = await _preprocess(_scopes(app, ws), "websocket")
        if value is None:
            value = await _view(app, ws)
        if value is None:
            return Outcome()
        if ws.state is _CONNECTING:
            return Outcome(app.make_response(value))
        log.warning(
            "websocket handler of %r returned %s after accepting; the value is ignored (a"
            " returned value only rejects a handshake that was not accepted yet)",
            ws.endpoint,
            _short_repr(value),
        )
        return Outcome()
    except Exception as raised:
        if ws.state is _CONNECTING:
            if isinstance(_lone(raised), WebsocketException):
                return Outcome(app.response_class(status=403), error=raised, handled=True)
            return await _error_response(app, ws, raised)
        return await _error_close(app, ws, raised)


async def _preprocess(scaffolds: Sequence[Scaffold], kind: Kind) -> Any:
    for scaffold in scaffolds:
        for func in scaffold.hooks[("before", kind)]:
            value = await func()
            if value is not None:
                return value
    return None


def _view(app: TrioWeb, conn: BaseRequest) -> Awaitable[Any]:
    """The view's (or handler's) call, to be awaited; raises the routing error, if any."""
    if conn.routing_exception is not None:
        raise conn.routing_exception
    rule = conn.url_rule
    assert rule is not None
    if conn.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
        return _automatic_options(app, conn)
    return app.view_functions[rule.endpoint](**(conn.view_args or {}))


async def _automatic_options(app: TrioWeb, conn: BaseRequest) -> Response:
    await trio.lowlevel.checkpoint()
    response = app.response_class()
    response.allow.update(conn.url_adapter.allowed_methods())
    return response


async def _process_response(scaffolds: Sequence[Scaffold], kind: Kind, response: Any) -> Any:
    for scaffold in reversed(scaffolds):
        for func in reversed(scaffold.hooks[("after", kind)]):
            response = await func(response)
    return response


def _has(scaffolds: Sequence[Scaffold], phase: Phase, kind: Kind) -> bool:
    """Whether any of ``scaffolds`` has ``phase`` hooks for ``kind`` (most apps have none, and
    then no coroutine is made for them)."""
    key = (phase, kind)
    for scaffold in scaffolds:  # noqa: SIM110 (a loop: any() over a generator costs 0.3 us)
        if scaffold.hooks[key]:
            return True
    return False


def _scopes(app: TrioWeb, conn: BaseRequest) -> Sequence[Scaffold]:
    """The app, then the connection's blueprints from outermost to innermost (worked out once
    per connection)."""
    scaffolds = conn._scaffolds
    if scaffolds is None:
        names = conn.blueprints
        if not names:
            scaffolds = app._app_only
        else:
            scaffolds = (app, *(app.blueprints[name] for name in reversed(names)))
        conn._scaffolds = scaffolds
    return scaffolds


# Requests that cannot wait ------------------------------------------------------------------------


def cannot_suspend(app: TrioWeb, request: Request) -> bool:
    """Whether :func:`dispatch_request` cannot suspend for ``request``: its view, and every
    ``before_request`` and ``after_request`` hook and error handler that could run for it, is a
    coroutine function without a single ``await``, ``async with`` or ``async for`` (see
    :func:`never_suspends`). Then the dispatch runs to its end without a checkpoint, so nothing
    could cancel it: it needs no handler scope, and no disconnect watch. A few dict lookups."""
    if request.routing_exception is None:
        rule = request.url_rule
        assert rule is not None
        if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return False
        if not never_suspends(app.view_functions[rule.endpoint]):
            return False
    for scaffold in _scopes(app, request):  # noqa: SIM110 (a loop: any() costs a generator)
        if scaffold._requests_may_wait:  # worked out as its hooks and handlers are registered
            return False
    return True


def never_suspends(func: Callable[..., Any]) -> bool:
    """Whether calling and awaiting ``func`` can never suspend: it is a plain ``async def``
    function whose body has no suspension point (no ``YIELD_VALUE`` instruction, which every
    ``await``, ``async with``, ``async for`` and async comprehension compiles to). Anything
    else (a method, a ``functools.partial``, a callable object, a sync function returning an
    awaitable) may suspend. Worked out once per function."""
    if type(func) is not FunctionType:
        return False
    known = _NEVER_SUSPENDS.get(func)
    if known is None:
        known = _code_never_suspends(func.__code__)
        if len(_NEVER_SUSPENDS) >= 4096:  # functions made at run time: stay bounded
            _NEVER_SUSPENDS.clear()
        _NEVER_SUSPENDS[func] = known
    return known


_NEVER_SUSPENDS: dict[FunctionType, bool] = {}

#: Instructions of an ``await`` (and of ``async with``/``async for``), any of which may suspend.
_SUSPENDING = frozenset(
    {"YIELD_VALUE", "SEND", "GET_AWAITABLE", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT"}
)


def _code_never_suspends(code: CodeType) -> bool:
    if not code.co_flags & inspect.CO_COROUTINE:
        return False
    return not any(instruction.opname in _SUSPENDING for instruction in dis.get_instructions(code))


# Errors -------------------------------------------------------------------------------------------


def find_error_handler(
    app: TrioWeb, conn: BaseRequest, error: BaseException
) -> tuple[ErrorHandler, BaseException] | None:
    """The handler for ``error`` and the exception it is to be given (a group's leaf), or
    ``None`` (see the module's rules)."""
    scaffolds = [s for s in reversed(_scopes(app, conn)) if s.error_handlers]
    if not scaffolds:
        return None
    error = _lone(error)
    if not isinstance(error, BaseExceptionGroup):
        handler = _lookup(scaffolds, type(error).__mro__)
        return None if handler is None else (handler, error)
    group_classes = [cls for cls in type(error).__mro__ if issubclass(cls, BaseExceptionGroup)]
    handler = _lookup(scaffolds, group_classes)
    if handler is not None:
        return handler, error
    for leaf in _leaves(error):
        handler = _lookup(scaffolds, type(leaf).__mro__)
        if handler is not None:
            return handler, leaf
    return None


def _lookup(scaffolds: list[Scaffold], classes: Sequence[type]) -> ErrorHandler | None:
    for scaffold in scaffolds:
        handlers = scaffold.error_handlers
        for cls in classes:
            handler = handlers.get(cls)
            if handler is not None:
                return handler
    return None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


async def _error_response(app: TrioWeb, conn: BaseRequest, error: BaseException) -> Outcome:
    """Turn an exception from hooks or the view into a response.

    An HTTP error goes to its handler or becomes werkzeug's error page; anything else is logged
    with its traceback and goes to the 500 handler, or becomes a 500 page that shows the
    traceback only when ``DEBUG``.
    """
    found = find_error_handler(app, conn, error)
    try:
        if found is not None:
            handler, leaf = found
            return Outcome(app.make_response(await handler(leaf)), error=leaf, handled=True)
        lone = _lone(error)
        if isinstance(lone, HTTPException):
            return Outcome(from_http_exception(lone, app.response_class), error=lone, handled=True)
    except Exception as handler_error:
        log.exception("error handler failed while handling %r", error)
        error = handler_error
    log.error(
        "Exception on %s %s",
        conn.method,
        conn.path,
        exc_info=(type(error), error, error.__traceback__),
    )
    server_error = InternalServerError(original_exception=error)
    found = find_error_handler(app, conn, server_error)
    if found is not None and not isinstance(error, InternalServerError):
        try:
            return Outcome(app.make_response(await found[0](server_error)), error=error)
        except Exception:
            log.exception("500 error handler failed")
    if app.debug:
        page = "".join(traceback.format_exception(error))
        return Outcome(app.response_class(page, 500, mimetype="text/plain"), error=error)
    return Outcome(from_http_exception(server_error, app.response_class), error=error)


async def _error_close(app: TrioWeb, ws: Websocket, raised: Exception) -> Outcome:
    """The close for an exception that ended an accepted websocket's handler."""
    error = _lone(raised)
    if isinstance(error, WebsocketClosed):
        return Outcome()
    handled = False
    found = find_error_handler(app, ws, raised)
    if found is not None:
        handler, error = found
        try:
            await handler(error)
        except Exception as handler_error:
            return Outcome(close=_INTERNAL_ERROR, error=handler_error)
        handled = True
    if isinstance(error, WebsocketException):
        return Outcome(close=(error.code, error.reason), error=error, handled=True)
    if isinstance(error, HTTPException):
        code = http_error_close_code(error)
        reason = _truncate(error.description or error.name)
        log.info("websocket %s closed with %d: %s %s", ws.path, code, error.code, error.name)
        return Outcome(close=(code, reason), error=error, handled=True)
    return Outcome(close=_INTERNAL_ERROR, error=error, handled=handled)


def _lone(error: BaseException) -> BaseException:
    return lone_exception(error) if isinstance(error, BaseExceptionGroup) else error


_INTERNAL_ERROR = (1011, "Internal Server Error")


def _truncate(reason: str, limit: int = 123) -> str:
    """``reason`` cut to at most ``limit`` bytes of UTF-8 (a close reason's limit)."""
    data = reason.encode()
    if len(data) <= limit:
        return reason
    return data[: limit - 3].decode(errors="ignore") + "..."


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# Ending -------------------------------------------------------------------------------------------


async def end_request(app: TrioWeb, request: Request, outcome: Outcome) -> None:
    """Run the ``teardown_request`` hooks and close the request's files (shielded, bounded)."""
    try:
        if _has(_scopes(app, request), "teardown", "request"):
            with _ending(app, request):
                await _teardown(app, request, "request", outcome.unhandled)
    finally:
        request.close()


async def end_websocket(app: TrioWeb, ws: Websocket, outcome: Outcome) -> BaseException | None:
    """Run the ``after_websocket`` hooks, end what the handler left open, run the
    ``teardown_websocket`` hooks (shielded, bounded). Returns the unhandled error that ended an
    accepted websocket, for the server to log (one that became a 500 was logged already)."""
    if ws.state is _CONNECTING or ws.state is _CONNECTED or _has_hooks(app, ws, "websocket"):
        with _ending(app, ws):
            try:
                outcome = await _finish_websocket(app, ws, outcome)
            finally:
                await _teardown(app, ws, "websocket", outcome.unhandled)
    # else nothing is left that could wait (the usual end: the client left, no hooks), so no
    # shielded scope is paid for.
    return outcome.unhandled if outcome.response is None else None


def _has_hooks(app: TrioWeb, conn: BaseRequest, kind: Kind) -> bool:
    """Whether ``conn`` has ``after_<kind>`` or ``teardown_<kind>`` hooks to run."""
    scaffolds = _scopes(app, conn)
    return _has(scaffolds, "after", kind) or _has(scaffolds, "teardown", kind)


@contextmanager
def _ending(app: TrioWeb, conn: BaseRequest) -> Iterator[None]:
    timeout = app.config["TEARDOWN_TIMEOUT"]
    with trio.CancelScope(shield=True, deadline=trio.current_time() + timeout) as scope:
        yield
    if scope.cancelled_caught:
        log.warning(
            "the ending of %s %s (after and teardown hooks) took longer than TEARDOWN_TIMEOUT"
            " (%s s) and was cut short",
            conn.method,
            conn.path,
            timeout,
        )


async def _finish_websocket(app: TrioWeb, ws: Websocket, outcome: Outcome) -> Outcome:
    response = outcome.response
    if ws.state is _CONNECTING and response is None:
        if outcome.error is None:
            log.error(
                "websocket handler of %r returned without accepting, closing or rejecting the"
                " connection; answering 500",
                ws.endpoint,
            )
        response = from_http_exception(InternalServerError(), app.response_class)
    try:
        response = await _process_response(_scopes(app, ws), "websocket", response)
    except Exception as error:
        log.exception("after_websocket function failed")
        outcome = Outcome(close=_INTERNAL_ERROR, error=error)
        response = from_http_exception(InternalServerError(), app.response_class)
    try:
        if ws.state is _CONNECTING:
            await _reject(ws, response, app.response_class)
        elif ws.state is _CONNECTED:
            await ws.close(*outcome.close)
    except WebsocketClosed:
        pass
    return outcome


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


async def _teardown(
    app: TrioWeb, conn: BaseRequest, kind: Kind, error: BaseException | None
) -> None:
    for scaffold in reversed(_scopes(app, conn)):
        for func in reversed(scaffold.hooks[("teardown", kind)]):
            try:
                await func(error)
            except Exception:
                log.exception("teardown_%s function %r failed", kind, func)
