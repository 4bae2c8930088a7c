"""The application: registries, the one dispatch pipeline, and the ASGI entry point.

The pipeline is the same for HTTP requests and websockets (``kind`` is ``"request"`` or
``"websocket"``): route match, ``before_<kind>`` hooks (app first, then blueprints outer to
inner; a returned value short-circuits), the view, error handlers looked up along the
exception's MRO (innermost blueprint first, then the app), response coercion, ``after_<kind>``
hooks, and ``teardown_<kind>`` hooks, which always run. What is HTTP- or websocket-specific
(sending, accepting, closing) lives at the I/O edge, in :mod:`trioweb._asgi`.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import trio
from jinja2 import Environment
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import MapAdapter

from . import _asgi
from ._asgi import Outcome
from ._blueprints import Blueprint
from ._config import Config
from ._ctx import unbind_connection
from ._errors import WebsocketClosed
from ._eventloop import on_trio
from ._eventloop import refuse as refuse_off_trio
from ._helpers import send_from_directory
from ._request import BaseRequest, Request
from ._response import Response, coerce_response, from_http_exception
from ._routing import Router
from ._scaffold import Kind, Scaffold, require_async
from ._types import LifespanHook, Receive, Scope, Send, ViewFunc
from ._websocket import DisconnectSweeper, Websocket, WebsocketState

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig

    from .testing import TestClient

log = logging.getLogger("trioweb")


class TrioWeb(Scaffold):
    """A trioweb application, and the ASGI callable Hypercorn serves.

    ``import_name`` (normally ``__name__``) locates ``static/`` and ``templates/`` next to the
    module, as Flask does. Static files are served at ``static_url_path`` (``/static``).
    """

    request_class = Request
    response_class = Response

    def __init__(
        self,
        import_name: str,
        *,
        static_url_path: str | None = None,
        static_folder: str | None = "static",
        template_folder: str | None = "templates",
        root_path: str | None = None,
    ) -> None:
        super().__init__(
            import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        self.name = import_name
        self.config = Config()
        self.router = Router()
        self.url_map = self.router.url_map
        self.view_functions: dict[str, ViewFunc] = {}
        self.blueprints: dict[str, Blueprint] = {}
        self._app_only = (self,)
        self.before_serving_funcs: list[LifespanHook] = []
        self.after_serving_funcs: list[LifespanHook] = []
        #: The app nursery: open while the app is serving (or in ``async with test_client()``).
        self.nursery: trio.Nursery | None = None
        #: Looks after the websockets' disconnect detection while the app is serving.
        self.disconnect_sweeper: DisconnectSweeper | None = None
        self.logger = log
        if self.static_folder is not None:
            self.add_static_route(self.static_url_path or "/static", "static", self)

    def __repr__(self) -> str:
        return f"<TrioWeb {self.name!r}>"

    @property
    def debug(self) -> bool:
        """``config["DEBUG"]``: tracebacks in 500 responses, template auto-reload."""
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value

    @property
    def testing(self) -> bool:
        """``config["TESTING"]``."""
        return bool(self.config["TESTING"])

    @testing.setter
    def testing(self, value: bool) -> None:
        self.config["TESTING"] = value

    # Registration ------------------------------------------------------------------------------

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ViewFunc | None = None,
        *,
        methods: Iterable[str] | None = None,
        websocket: bool = False,
        **options: Any,
    ) -> None:
        """Register ``view_func`` (``async def``) at ``rule`` under ``endpoint``.

        Raises ``ValueError`` if ``endpoint`` already names another function.
        """
        if view_func is None:
            raise TypeError("add_url_rule() needs a view_func")
        require_async(view_func, "websocket handler" if websocket else "view")
        endpoint = endpoint or view_func.__name__
        existing = self.view_functions.get(endpoint)
        if existing is not None and existing is not view_func:
            raise ValueError(
                f"endpoint {endpoint!r} is already used by {existing.__qualname__}; pass"
                " endpoint=... to give this view another name"
            )
        self.router.add(rule, endpoint, methods=methods, websocket=websocket, **options)
        self.view_functions[endpoint] = view_func

    def add_static_route(self, url_path: str, endpoint: str, owner: Scaffold) -> None:
        """Serve ``owner.static_folder`` at ``{url_path}/<path:filename>``."""
        folder = owner.static_folder
        assert folder is not None

        async def static(filename: str) -> Response:
            return await send_from_directory(
                folder, filename, max_age=self.config["SEND_FILE_MAX_AGE_DEFAULT"]
            )

        static.__name__ = endpoint
        self.add_url_rule(f"{url_path.rstrip('/')}/<path:filename>", endpoint, static)

    def register_blueprint(
        self, blueprint: Blueprint, *, url_prefix: str | None = None, name: str | None = None
    ) -> None:
        """Add ``blueprint``'s routes, hooks and error handlers to the app.

        ``url_prefix`` overrides the blueprint's; ``name`` registers it under another name
        (needed to register the same blueprint twice).
        """
        blueprint.register(self, url_prefix=url_prefix, name=name)

    def template_folders(self) -> list[str]:
        """The app's template folder, then each blueprint's, as far as they exist."""
        folders = [self.template_folder] + [bp.template_folder for bp in self.blueprints.values()]
        return [folder for folder in folders if folder is not None and os.path.isdir(folder)]

    @cached_property
    def jinja_env(self) -> Environment:
        """The Jinja2 environment, created on first use (register blueprints before that)."""
        from ._templating import create_environment

        return create_environment(self)

    # Lifespan -------------------------------------------------------------------------------------

    def before_serving(self, func: LifespanHook) -> LifespanHook:
        """Run ``await func()`` once per worker before it accepts connections.

        The app nursery is open, so ``func`` may start background tasks. If it raises, the
        worker does not serve: Hypercorn exits non-zero and prints the error.
        """
        require_async(func, "before_serving function")
        self.before_serving_funcs.append(func)
        return func

    def after_serving(self, func: LifespanHook) -> LifespanHook:
        """Run ``await func()`` once per worker at shutdown, before background tasks are
        cancelled."""
        require_async(func, "after_serving function")
        self.after_serving_funcs.append(func)
        return func

    def add_background_task(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``func(*args)`` in the app nursery; it runs until it returns or shutdown.

        It does not see the request or websocket it was started from (they end before it does);
        ``current_app`` works. An exception it raises is logged and does not stop the server or
        other tasks. Raises ``RuntimeError`` when the app is not serving.
        """
        if self.nursery is None:
            raise RuntimeError(
                "add_background_task() needs the app to be serving: call it from a view, a hook"
                " or before_serving (in tests, inside `async with app.test_client()`)"
            )
        self.nursery.start_soon(self._run_background, func, args, name=func)

    async def _run_background(self, func: Callable[..., Awaitable[Any]], args: Any) -> None:
        unbind_connection()
        try:
            await func(*args)
        except Exception:
            log.exception("Background task %r failed", func)

    async def startup(self) -> None:
        """Run the ``before_serving`` functions (called by the lifespan)."""
        for func in self.before_serving_funcs:
            await func()

    async def shutdown(self) -> None:
        """Run the ``after_serving`` functions (called by the lifespan)."""
        for func in self.after_serving_funcs:
            await func()

    # The pipeline --------------------------------------------------------------------------------

    def match_request(self, conn: BaseRequest) -> None:
        """Match ``conn`` against the URL map; a routing error is kept for after the hooks."""
        conn.router = self.router
        try:
            rule, view_args = self.router.match(conn.scope, conn.method)
        except HTTPException as error:
            conn.routing_exception = error
        else:
            conn.url_rule = rule
            conn.view_args = dict(view_args)

    def url_adapter_for(self, conn: BaseRequest | None) -> MapAdapter:
        """The adapter ``url_for`` builds with: the connection's, else one for ``SERVER_NAME``."""
        if conn is not None:
            return conn.url_adapter
        server_name = self.config["SERVER_NAME"]
        if server_name is None:
            raise RuntimeError(
                "url_for() outside a request needs config['SERVER_NAME'] (for example"
                " 'example.com') to build external URLs"
            )
        return self.url_map.bind(
            server_name,
            script_name=self.config["APPLICATION_ROOT"],
            url_scheme=self.config["PREFERRED_URL_SCHEME"],
        )

    def _scopes(self, conn: BaseRequest) -> Sequence[Scaffold]:
        """The app, then the connection's blueprints from outermost to innermost."""
        names = conn.blueprints
        if not names:
            return self._app_only
        return [self, *(self.blueprints[name] for name in reversed(names))]

    async def preprocess(self, conn: BaseRequest, kind: Kind) -> Any:
        """Run the ``before_<kind>`` hooks; the first value that is not ``None`` is returned."""
        for scaffold in self._scopes(conn):
            for func in scaffold.hooks[("before", kind)]:
                value = await func()
                if value is not None:
                    return value
        return None

    async def dispatch(self, conn: BaseRequest) -> Any:
        """Raise the routing error, or run the view with the URL's variables."""
        if conn.routing_exception is not None:
            raise conn.routing_exception
        rule = conn.url_rule
        assert rule is not None
        if conn.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            response = self.response_class()
            response.allow.update(conn.url_adapter.allowed_methods())
            return response
        return await self.view_functions[rule.endpoint](**(conn.view_args or {}))

    async def full_dispatch_request(self, request: Request) -> Response:
        """Hooks, view and error handlers for one HTTP request; always returns a response.

        The ``after_request`` hooks see every response, error pages included (as in Flask); if
        one of them raises, the error's response is sent without running them again.
        """
        try:
            value = await self.preprocess(request, "request")
            if value is None:
                value = await self.dispatch(request)
            response = self.make_response(value)
        except Exception as error:
            response = await self.handle_exception(request, error)
        try:
            processed: Response = await self.process_response(request, "request", response)
        except Exception as error:
            return await self.handle_exception(request, error)
        return processed

    async def full_dispatch_websocket(self, ws: Websocket) -> Outcome:
        """Hooks, handler and error handlers for one websocket.

        Before accept, a returned value or an exception becomes the HTTP response that rejects
        the handshake (an unhandled exception a logged 500). After accept, the handler's return
        value is ignored, and an exception goes to its error handler (whose value is ignored);
        the edge then closes with 1011 and re-raises an unhandled one to the server, which logs
        it. ``WebsocketClosed`` escaping the handler is a normal end.
        """
        try:
            value = await self.preprocess(ws, "websocket")
            if value is None:  # self.dispatch(ws), inlined: a frame less for every connection
                if ws.routing_exception is not None:
                    raise ws.routing_exception
                assert ws.url_rule is not None
                value = await self.view_functions[ws.url_rule.endpoint](**(ws.view_args or {}))
            if value is None or ws.state is not WebsocketState.CONNECTING:
                return Outcome(None, None)
            return Outcome(self.make_response(value), None)
        except Exception as raised:
            error = _unwrap(raised)
            if ws.state is WebsocketState.CONNECTING:
                return Outcome(await self.handle_exception(ws, error), None)
            if isinstance(error, WebsocketClosed):
                return Outcome(None, None)
            handler = self.find_error_handler(ws, error)
            if handler is None:
                return Outcome(None, error)
            try:
                await handler(error)
            except Exception as handler_error:
                return Outcome(None, handler_error)
            return Outcome(None, error, handled=True)

    async def process_response(self, conn: BaseRequest, kind: Kind, response: Any) -> Any:
        """Run the ``after_<kind>`` hooks (innermost first, each scope's in reverse order)."""
        for scaffold in reversed(self._scopes(conn)):
            for func in reversed(scaffold.hooks[("after", kind)]):
                response = await func(response)
        return response

    async def do_teardown(self, conn: BaseRequest, kind: Kind, error: BaseException | None) -> None:
        """Run every ``teardown_<kind>`` hook; their own errors are logged, not raised."""
        for scaffold in reversed(self._scopes(conn)):
            for func in reversed(scaffold.hooks[("teardown", kind)]):
                try:
                    await func(error)
                except Exception:
                    log.exception("teardown_%s function %r failed", kind, func)

    def find_error_handler(self, conn: BaseRequest, error: BaseException) -> Any:
        """The handler for ``error``: innermost blueprint first, each along the error's MRO."""
        for scaffold in reversed(self._scopes(conn)):
            handlers = scaffold.error_handlers
            if not handlers:
                continue
            for cls in type(error).__mro__:
                handler = handlers.get(cls)
                if handler is not None:
                    return handler
        return None

    async def handle_exception(self, conn: BaseRequest, error: Exception) -> Response:
        """Turn an exception from hooks or the view into a response.

        A group with a single leaf is unwrapped. An HTTP error goes to its handler or becomes
        werkzeug's error page; anything else is logged with its traceback and goes to the 500
        handler, or becomes a 500 page that shows the traceback only when ``DEBUG``.
        """
        error = _unwrap(error)
        try:
            handler = self.find_error_handler(conn, error)
            if handler is not None:
                return self.make_response(await handler(error))
            if isinstance(error, HTTPException):
                return self.http_exception_response(error)
        except Exception as handler_error:
            log.exception("error handler failed while handling %r", error)
            error = handler_error
        log.error(
            "Exception on %s %s",
            conn.method,
            conn.path,
            exc_info=(type(error), error, error.__traceback__),
        )
        conn.unhandled_exception = error
        server_error = InternalServerError(original_exception=error)
        handler = self.find_error_handler(conn, server_error)
        if handler is not None and not isinstance(error, InternalServerError):
            try:
                return self.make_response(await handler(server_error))
            except Exception:
                log.exception("500 error handler failed")
        if self.debug:
            return self.response_class(
                "".join(traceback.format_exception(error)), 500, mimetype="text/plain"
            )
        return self.http_exception_response(server_error)

    def http_exception_response(self, error: HTTPException) -> Response:
        """werkzeug's rendering of an HTTP error (status, headers such as ``Allow``, body)."""
        return from_http_exception(error, self.response_class)

    def make_response(self, value: Any) -> Response:
        """Coerce a view's return value into a :class:`Response`.

        Accepted: ``Response``, ``str``, ``bytes``, ``dict``/``list`` (JSON), an async iterable of
        chunks (streamed), each optionally in ``(body, status)``, ``(body, headers)`` or
        ``(body, status, headers)``. Anything else, ``None`` included, is a ``TypeError``.
        """
        return coerce_response(value, self.response_class)

    # Serving and testing -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if not on_trio():  # served on asyncio, say: fail at once, naming -k trio
            await refuse_off_trio(scope, receive, send)
            return
        kind = scope["type"]
        if kind == "http":
            await _asgi.handle_http(self, scope, receive, send)
        elif kind == "websocket":
            await _asgi.handle_websocket(self, scope, receive, send)
        elif kind == "lifespan":
            await _asgi.handle_lifespan(self, scope, receive, send)
        else:
            raise ValueError(f"unknown ASGI scope type {kind!r}")

    def test_client(self, *, timeout: float = 5.0) -> TestClient:
        """An in-process ASGI client; use as ``async with app.test_client() as client:``.

        Every wait of the client is bounded by ``timeout`` seconds.
        """
        from .testing import TestClient

        return TestClient(self, timeout=timeout)

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        debug: bool | None = None,
        config: HypercornConfig | None = None,
        access_log: bool = True,
        **settings: Any,
    ) -> None:
        """Serve on Hypercorn's trio worker until Ctrl+C or SIGTERM (for development; blocks).

        Takes what ``trioweb run`` takes: ``host``/``port`` (``127.0.0.1:5000`` unless
        ``config`` binds elsewhere), ``debug`` sets ``DEBUG``, ``config`` is a
        :class:`hypercorn.config.Config`, ``settings`` are Hypercorn's settings by name
        (``graceful_timeout=1``, ``keep_alive_timeout``, ``websocket_max_message_size``,
        ``certfile``, ``keyfile``, ...; they win over ``config``'s), and ``access_log=False``
        turns the access log off. Prints ``Running on <url>`` once it serves.

        After Ctrl+C the process ends within ``graceful_timeout + shutdown_timeout + 1`` seconds
        (14 by default), whatever the app does: a task still running then is named in an error
        line, and the process exits with status 1. A second Ctrl+C exits at once. Raises
        :class:`~trioweb.LifespanError` if ``before_serving``/``after_serving`` fails,
        ``OSError`` if the address cannot be bound, ``TypeError`` for an unknown setting.
        """
        from ._serving import run

        if debug is not None:
            self.debug = debug
        run(self, host=host, port=port, config=config, access_log=access_log, **settings)


def _unwrap(error: Exception) -> Exception:
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
