"""Where the current app, request and websocket live: ContextVars behind werkzeug LocalProxies.

Rules:

* The app is bound in the lifespan task and in every connection task, so ``current_app`` works in
  views, hooks and background tasks.
* A request (or websocket) is bound in its connection task before any user code runs. Trio copies
  the spawning task's context into a child task, so tasks a handler starts in its own nurseries see
  the same request.
* Background tasks started on the app nursery are explicitly unbound (:func:`unbind_connection`):
  they outlive the connection that started them, so they must not see it.
* ``g`` is a plain namespace per connection (made on first use), for data the hooks and the
  view share. Outside a connection, an app context (:meth:`TrioWeb.app_context
  <trioweb.TrioWeb.app_context>`, :func:`copy_current_app_context`) binds a ``g`` of its own.
* The ``copy_current_*_context`` decorators capture what is bound when they are applied and bind
  it again around each call of the function they wrap, wherever it is awaited or started; on
  return the caller's bindings are restored (``ContextVar.reset``), so nothing leaks.

The per-connection path binds two ContextVars and nothing else; everything above costs only the
code that uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, final

import trio
from werkzeug.local import LocalProxy

if TYPE_CHECKING:
    from ._app import TrioWeb
    from ._request import Request
    from ._websocket import Websocket

_cv_app: ContextVar[TrioWeb | None] = ContextVar("trioweb.app", default=None)
_cv_request: ContextVar[Request | None] = ContextVar("trioweb.request", default=None)
_cv_websocket: ContextVar[Websocket | None] = ContextVar("trioweb.websocket", default=None)
#: ``g`` of an app context: only consulted when no connection is bound.
_cv_app_g: ContextVar[SimpleNamespace | None] = ContextVar("trioweb.g", default=None)

P = ParamSpec("P")
R = TypeVar("R")


def _lookup(var: ContextVar[Any], what: str, where: str) -> Any:
    value = var.get()
    if value is None:
        raise RuntimeError(
            f"Working outside of {what} context: {var.name.split('.')[1]} is only available"
            f" {where}."
        )
    return value


def _get_app() -> TrioWeb:
    return cast("TrioWeb", _lookup(_cv_app, "application", "while the app is serving or testing"))


def _get_request() -> Request:
    return cast(
        "Request",
        _lookup(_cv_request, "request", "in an HTTP view, its hooks and the tasks they start"),
    )


def _get_websocket() -> Websocket:
    return cast(
        "Websocket",
        _lookup(_cv_websocket, "websocket", "in a websocket handler, its hooks and their tasks"),
    )


def current_connection() -> Request | Websocket | None:
    """The request or websocket bound in this task, if any."""
    req = _cv_request.get()
    return req if req is not None else _cv_websocket.get()


def _get_g() -> SimpleNamespace:
    conn = current_connection()
    if conn is not None:
        return conn.g
    app_g = _cv_app_g.get()
    if app_g is None:
        raise RuntimeError(
            "Working outside of request or websocket context: g is only available while"
            " handling a request or a websocket, or inside `async with app.app_context():`."
        )
    return app_g


current_app: TrioWeb = cast("TrioWeb", LocalProxy(_get_app))
request: Request = cast("Request", LocalProxy(_get_request))


class _WebsocketProxy(LocalProxy):  # type: ignore[type-arg]
    """``LocalProxy`` with direct properties for the per-message methods.

    werkzeug's generic attribute lookup costs about 0.75 µs, twice per echoed message; these
    properties cost a third of that. Everything else goes through ``LocalProxy`` as usual.
    """

    __slots__ = ()

    receive = property(lambda self: _get_websocket().receive)
    send = property(lambda self: _get_websocket().send)
    receive_json = property(lambda self: _get_websocket().receive_json)
    send_json = property(lambda self: _get_websocket().send_json)


websocket: Websocket = cast("Websocket", _WebsocketProxy(_get_websocket))
g: SimpleNamespace = cast("SimpleNamespace", LocalProxy(_get_g))


def has_request_context() -> bool:
    """Whether a request is bound in the current task (``request`` is usable)."""
    return _cv_request.get() is not None


def has_websocket_context() -> bool:
    """Whether a websocket is bound in the current task (``websocket`` is usable)."""
    return _cv_websocket.get() is not None


def has_app_context() -> bool:
    """Whether an app is bound in the current task (``current_app`` is usable)."""
    return _cv_app.get() is not None


def bind_app(app: TrioWeb) -> None:
    _cv_app.set(app)


def bind_request(req: Request) -> None:
    _cv_request.set(req)


def bind_websocket(ws: Websocket) -> None:
    _cv_websocket.set(ws)


def unbind_connection() -> None:
    """Forget the request/websocket (and an app context's ``g``) in this task's context (for
    background tasks)."""
    _cv_request.set(None)
    _cv_websocket.set(None)
    _cv_app_g.set(None)


_Bindings = tuple["TrioWeb", "Request | None", "Websocket | None", "SimpleNamespace | None"]


@final
class AppContext:
    """What ``app.app_context()`` returns: ``async with`` (or ``with``) binds the app and a fresh
    ``g`` for the block, with no request or websocket, and restores what was bound before."""

    __slots__ = ("_app", "_tokens")

    def __init__(self, app: TrioWeb) -> None:
        self._app = app
        self._tokens: list[tuple[Token[Any], ...]] = []

    def __enter__(self) -> AppContext:
        self._tokens.append(_bind((self._app, None, None, SimpleNamespace())))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _reset(self._tokens.pop())

    async def __aenter__(self) -> AppContext:
        """Bind the context; a checkpoint (before binding, so a cancellation binds nothing)."""
        await trio.lowlevel.checkpoint()
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the previous bindings; then a checkpoint, unless the block raised."""
        self.__exit__(exc_type, exc, tb)
        if exc_type is None:
            await trio.lowlevel.checkpoint()


def _bind(bindings: _Bindings) -> tuple[Token[Any], ...]:
    app, req, ws, app_g = bindings
    return (
        _cv_app.set(app),
        _cv_request.set(req),
        _cv_websocket.set(ws),
        _cv_app_g.set(app_g),
    )


def _reset(tokens: tuple[Token[Any], ...]) -> None:
    app, req, ws, app_g = tokens
    _cv_app_g.reset(app_g)
    _cv_websocket.reset(ws)
    _cv_request.reset(req)
    _cv_app.reset(app)


def _rebinding(func: Callable[P, Awaitable[R]], bindings: _Bindings) -> Callable[P, Awaitable[R]]:
    @functools.wraps(func)
    async def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        tokens = _bind(bindings)
        try:
            return await func(*args, **kwargs)
        finally:
            _reset(tokens)

    return bound


def copy_current_app_context(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an async function so that it runs with the current app and ``g`` bound, wherever
    it is awaited or started later (a task in ``app.nursery``, ``add_background_task``).

    Call it where an app is bound: in a connection (then ``g`` is the connection's ``g``), in
    ``before_serving``, or in ``app.app_context()``. No request or websocket is bound in the
    call. Raises ``RuntimeError`` when no app is bound.
    """
    app = _cv_app.get()
    if app is None:
        raise RuntimeError(
            "copy_current_app_context() needs an app: apply it in a view, a hook, before_serving"
            " or inside `async with app.app_context():`, where the app it captures is bound."
        )
    conn = current_connection()
    app_g = conn.g if conn is not None else _cv_app_g.get()
    return _rebinding(func, (app, None, None, app_g if app_g is not None else SimpleNamespace()))


def copy_current_request_context(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an async function so that it runs with the current request (and app) bound,
    wherever it is awaited or started later, even after the request has ended.

    What came with the request line and headers stays readable, and ``g`` is the request's; the
    body only if it was read before the request ended. Raises ``RuntimeError`` outside an HTTP
    request.
    """
    req = _cv_request.get()
    if req is None:
        raise RuntimeError(
            "copy_current_request_context() needs a request: apply it in an HTTP view, its hooks"
            " or a task they started, where the request it captures is bound."
        )
    return _rebinding(func, (_get_app(), req, None, None))


def copy_current_websocket_context(
    func: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Decorate an async function so that it runs with the current websocket (and app) bound,
    wherever it is awaited or started later.

    It may ``send`` while the connection is open (``WebsocketClosed`` after it ended); only one
    task at a time may ``receive``. Raises ``RuntimeError`` outside a websocket.
    """
    ws = _cv_websocket.get()
    if ws is None:
        raise RuntimeError(
            "copy_current_websocket_context() needs a websocket: apply it in a websocket handler,"
            " its hooks or a task they started, where the websocket it captures is bound."
        )
    return _rebinding(func, (_get_app(), None, ws, None))
