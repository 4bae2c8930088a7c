"""The application: its registries (routes, hooks, error handlers, blueprints, lifespan
functions) and the ASGI entry point.

What happens to a connection is :mod:`trioweb._pipeline`'s (one pipeline for HTTP requests and
websockets); the I/O edge, :mod:`trioweb._asgi`, runs it for each ASGI scope.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import trio
from jinja2 import Environment
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from . import _asgi
from ._blueprints import Blueprint
from ._config import Config
from ._ctx import AppContext, unbind_connection
from ._eventloop import on_trio
from ._eventloop import refuse as refuse_off_trio
from ._guard import Guard, Stats
from ._helpers import send_from_directory
from ._origins import route_policy
from ._request import BaseRequest, Request
from ._response import Response, coerce_response
from ._routing import Router
from ._scaffold import Scaffold, require_async
from ._sessions import SecureCookieSessionInterface, SessionInterface
from ._tasks import report_task_error
from ._templating import TemplateRegistry
from ._types import LifespanHook, Receive, Scope, Send, ViewFunc

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig

    from ._listener import DisconnectListener
    from .testing import TestClient

log = logging.getLogger("trioweb")


class TrioWeb(TemplateRegistry, Scaffold):
    """A trioweb application, and the ASGI callable Hypercorn serves.

    ``import_name`` (normally ``__name__``) locates ``static/`` and ``templates/`` next to the
    module, as Flask does. Static files are served at ``static_url_path`` (``/static``).
    """

    request_class = Request
    response_class = Response
    #: Opens and saves :data:`~trioweb.session`; replace it (on the class or the app) with your
    #: own :class:`SessionInterface` to keep sessions elsewhere.
    session_interface: SessionInterface = SecureCookieSessionInterface()

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
        self.while_serving_funcs: list[Callable[[], AsyncGenerator[Any, None]]] = []
        self._while_serving_gens: list[tuple[str, AsyncGenerator[Any, None]]] = []
        self.jinja_filters: dict[str, Callable[..., Any]] = {}
        self.jinja_globals: dict[str, Any] = {}
        self.jinja_tests: dict[str, Callable[..., Any]] = {}
        #: The app nursery: open while the app is serving (or in ``async with test_client()``).
        #: A task in it that raises ends it (Trio cancels its other tasks): trioweb logs that at
        #: ``CRITICAL`` and puts a fresh nursery here (see :doc:`howto/lifespan`).
        self.nursery: trio.Nursery | None = None
        # The disconnect listener of the app's websockets, while the app is serving.
        self._disconnect_listener: DisconnectListener | None = None
        # Where the lifespan's ``trioweb.task_errors`` extension wants task errors (see _tasks).
        self._task_errors: list[Exception] | None = None
        # Websocket admission (origins, connection limit), idle sweeping, counters (_guard).
        self._guard = Guard()
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
    def secret_key(self) -> str | bytes | None:
        """``config["SECRET_KEY"]``: signs the session cookie."""
        key: str | bytes | None = self.config["SECRET_KEY"]
        return key

    @secret_key.setter
    def secret_key(self, value: str | bytes | None) -> None:
        self.config["SECRET_KEY"] = value

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

        For a websocket rule, ``allowed_origins`` (a list of origins) replaces the app's
        ``WEBSOCKET_ALLOWED_ORIGINS`` and its blueprint's ``websocket_allowed_origins`` for this
        route (see :doc:`howto/security`). Raises ``ValueError`` if ``endpoint`` already names
        another function or an origin is invalid.
        """
        if view_func is None:
            raise TypeError("add_url_rule() needs a view_func")
        require_async(view_func, "websocket handler" if websocket else "view")
        allowed_origins = options.pop("allowed_origins", None)
        policy = None
        if allowed_origins is not None:
            policy = route_policy(allowed_origins, websocket=websocket, rule=rule)
        endpoint = endpoint or view_func.__name__
        existing = self.view_functions.get(endpoint)
        if existing is not None and existing is not view_func:
            raise ValueError(
                f"endpoint {endpoint!r} is already used by {existing.__qualname__}; pass"
                " endpoint=... to give this view another name"
            )
        self.router.add(rule, endpoint, methods=methods, websocket=websocket, **options)
        self.view_functions[endpoint] = view_func
        if policy is not None:
            self._guard.route_origins[endpoint] = policy

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

    def app_context(self) -> AppContext:
        """An app context for code outside a connection (scripts, commands, tests, tasks):
        ``async with app.app_context():`` (or ``with``) binds :data:`current_app` and a fresh
        :data:`g`, and no request or websocket, until the block ends. :func:`url_for` then
        builds external URLs from ``SERVER_NAME``. Contexts nest; each restores what was bound
        before it."""
        return AppContext(self)

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
        other tasks; the test client raises it when it exits. Raises ``RuntimeError`` when the
        app is not serving.
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
        except Exception as error:
            report_task_error(self._task_errors, error, f"Background task {func!r}")

    def while_serving(
        self, func: Callable[[], AsyncGenerator[Any, None]]
    ) -> Callable[[], AsyncGenerator[Any, None]]:
        """Decorate an async generator function that yields once: the code before its ``yield``
        runs at startup, after the ``before_serving`` functions; the code after it at shutdown,
        after the ``after_serving`` functions (Quart's order). Several run in registration order
        at both ends.

        An exception in the first half fails startup, and the halves already started are
        closed (their ``finally`` blocks run); in the second half it fails shutdown, like
        ``after_serving``. A function that does not yield exactly once is a ``RuntimeError``.
        """
        if not inspect.isasyncgenfunction(func):
            raise TypeError(
                f"while_serving function {func.__qualname__} must be an async generator function"
                " (async def with one yield)"
            )
        self.while_serving_funcs.append(func)
        return func

    async def startup(self) -> None:
        """Run the ``before_serving`` functions, then the ``while_serving`` functions up to their
        ``yield`` (called by the lifespan). A checkpoint."""
        await trio.lowlevel.checkpoint()
        for func in self.before_serving_funcs:
            await func()
        self._while_serving_gens = []
        for gen_func in self.while_serving_funcs:
            gen = gen_func()
            try:
                await gen.__anext__()
            except BaseException as error:
                for _, started in reversed(self._while_serving_gens):
                    await started.aclose()
                self._while_serving_gens = []
                if isinstance(error, StopAsyncIteration):
                    raise RuntimeError(
                        f"while_serving function {gen_func.__qualname__} returned without"
                        " yielding: put one `yield` between its startup and its shutdown code"
                    ) from None
                raise
            self._while_serving_gens.append((gen_func.__qualname__, gen))

    async def shutdown(self) -> None:
        """Run the ``after_serving`` functions, then the rest of each ``while_serving`` function
        (called by the lifespan). A checkpoint."""
        await trio.lowlevel.checkpoint()
        gens, self._while_serving_gens = self._while_serving_gens, []
        try:
            for func in self.after_serving_funcs:
                await func()
        except BaseException:
            for _, gen in gens:  # their shutdown halves will not run: close them (finally blocks)
                await gen.aclose()
            raise
        for name, gen in gens:
            try:
                await gen.__anext__()
            except StopAsyncIteration:
                continue
            await gen.aclose()
            raise RuntimeError(
                f"while_serving function {name} yielded more than once: it must yield exactly once"
            )

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

    def make_response(self, value: Any) -> Response:
        """Coerce a view's return value into a :class:`Response` (not a checkpoint; the
        module-level :func:`trioweb.make_response` is the async form).

        Accepted: ``Response``, ``str``, ``bytes``, ``dict``/``list`` (JSON), an async iterable of
        chunks (streamed), each optionally in ``(body, status)``, ``(body, headers)`` or
        ``(body, status, headers)``. Anything else, ``None`` included, is a ``TypeError``.
        """
        return coerce_response(value, self.response_class)

    # Serving and testing -------------------------------------------------------------------------

    def stats(self) -> Stats:
        """A snapshot of this app's connections in this worker: websockets open, HTTP requests
        in flight, handshakes refused (overload, origin), websockets closed for idleness. Not a
        checkpoint; cheap enough to call from a metrics endpoint."""
        return self._guard.stats()

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
        ``certfile``, ``keyfile``, ...; they win over ``config``'s), ``access_log=False``
        turns the access log off, and ``layer=False`` serves with stock Hypercorn instead of
        trioweb's connection layer. Prints ``Running on <url>`` once it serves.

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
