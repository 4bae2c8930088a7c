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
  view share.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from werkzeug.local import LocalProxy

if TYPE_CHECKING:
    from ._app import TrioWeb
    from ._request import Request
    from ._websocket import Websocket

_cv_app: ContextVar[TrioWeb | None] = ContextVar("trioweb.app", default=None)
_cv_request: ContextVar[Request | None] = ContextVar("trioweb.request", default=None)
_cv_websocket: ContextVar[Websocket | None] = ContextVar("trioweb.websocket", default=None)


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
    if conn is None:
        raise RuntimeError(
            "Working outside of request or websocket context: g is only available while"
            " handling a request or a websocket."
        )
    return conn.g


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


def bind_app(app: TrioWeb) -> None:
    _cv_app.set(app)


def bind_request(req: Request) -> None:
    _cv_request.set(req)


def bind_websocket(ws: Websocket) -> None:
    _cv_websocket.set(ws)


def unbind_connection() -> None:
    """Forget the request/websocket in this task's context (for background tasks)."""
    _cv_request.set(None)
    _cv_websocket.set(None)
