"""What an app and a blueprint both are: a place to register views, hooks and error handlers.

Registries (one for HTTP and websocket alike):

* ``hooks[(phase, kind)]``: ``phase`` is ``"before"``, ``"after"`` or ``"teardown"`` and ``kind``
  is ``"request"`` or ``"websocket"``; the functions run in registration order (``before``) or
  reverse order (``after``, ``teardown``), as in Flask.
* ``error_handlers[exception_class]``: an HTTP status code is registered as werkzeug's class for
  it (``404`` as ``NotFound``), so a lookup along the raised exception's MRO finds both.

Views and hooks must be ``async def``: a sync function would block every connection of the
worker, so registering one is a ``TypeError`` that says so.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias, TypeVar

from werkzeug.exceptions import default_exceptions

from ._pipeline import never_suspends
from ._types import ErrorHandler, ViewFunc

F = TypeVar("F", bound=Callable[..., Any])
Phase: TypeAlias = Literal["before", "after", "teardown"]
Kind: TypeAlias = Literal["request", "websocket"]


def require_async(func: Callable[..., Any], what: str) -> None:
    """Raise ``TypeError`` unless ``func`` is an async function (or has an async ``__call__``)."""
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004  (an async callable object is fine too)
    ):
        return
    name = str(getattr(func, "__qualname__", repr(func)))
    raise TypeError(
        f"{what} {name} must be an async function (async def): a sync function would block the"
        " whole worker. Run blocking work with trio.to_thread.run_sync."
    )


def exception_class(code_or_exception: int | type[BaseException]) -> type[BaseException]:
    """The class an error handler is registered under; an int is werkzeug's class for it."""
    if isinstance(code_or_exception, int):
        try:
            return default_exceptions[code_or_exception]
        except KeyError:
            raise ValueError(
                f"{code_or_exception} is not an HTTP error code werkzeug knows; register a"
                " handler for an HTTPException subclass instead"
            ) from None
    if isinstance(code_or_exception, type) and issubclass(code_or_exception, BaseException):
        return code_or_exception
    raise TypeError(f"{code_or_exception!r} is neither an HTTP status code nor an exception class")


def root_path_of(import_name: str) -> str:
    """The folder of the module or package ``import_name`` (Flask's rule for finding files)."""
    module = sys.modules.get(import_name)
    file = getattr(module, "__file__", None)
    if file is not None:
        return os.path.dirname(os.path.abspath(str(file)))
    return os.getcwd()


class Scaffold:
    """Registration shared by :class:`~trioweb.TrioWeb` and :class:`~trioweb.Blueprint`."""

    def __init__(
        self,
        import_name: str,
        *,
        static_folder: str | None = "static",
        static_url_path: str | None = None,
        template_folder: str | None = "templates",
        root_path: str | None = None,
    ) -> None:
        self.import_name = import_name
        self.root_path = root_path if root_path is not None else root_path_of(import_name)
        self.static_folder = (
            os.path.join(self.root_path, static_folder) if static_folder is not None else None
        )
        self.static_url_path = static_url_path
        self.template_folder = (
            os.path.join(self.root_path, template_folder) if template_folder is not None else None
        )
        self.hooks: dict[tuple[Phase, Kind], list[Callable[..., Any]]] = {
            (phase, kind): []
            for phase in ("before", "after", "teardown")
            for kind in ("request", "websocket")
        }
        self.error_handlers: dict[type[BaseException], ErrorHandler] = {}
        # Whether one of its before/after_request hooks or error handlers could suspend (see
        # trioweb._pipeline.cannot_suspend): then every request under it gets a handler scope.
        # Set at registration, never cleared (a replaced error handler leaves it set: more
        # scopes than needed, never fewer).
        self._requests_may_wait = False
        #: Functions returning a dict of names for templates (see :meth:`context_processor`).
        self.context_processors: list[Callable[[], Any]] = []

    # Routes -----------------------------------------------------------------------------------

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
        """Register ``view_func`` for ``rule`` (a werkzeug rule string such as ``/u/<int:id>``)."""
        raise NotImplementedError

    def route(
        self,
        rule: str,
        *,
        methods: Iterable[str] | None = None,
        endpoint: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorate an async view for ``rule``; ``methods`` defaults to ``["GET"]`` (plus HEAD,
        which werkzeug adds to GET; OPTIONS is not added). The endpoint defaults to the
        function's name."""

        def decorator(func: F) -> F:
            self.add_url_rule(rule, endpoint, func, methods=methods, **options)
            return func

        return decorator

    def get(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["GET"])``."""
        return self.route(rule, methods=["GET"], **options)

    def post(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["POST"])``."""
        return self.route(rule, methods=["POST"], **options)

    def put(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["PUT"])``."""
        return self.route(rule, methods=["PUT"], **options)

    def patch(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["PATCH"])``."""
        return self.route(rule, methods=["PATCH"], **options)

    def delete(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["DELETE"])``."""
        return self.route(rule, methods=["DELETE"], **options)

    def websocket(
        self,
        rule: str,
        *,
        endpoint: str | None = None,
        allowed_origins: Iterable[str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorate an async websocket handler for ``rule``.

        ``allowed_origins``: the origins whose pages may open it besides the app's own
        (``["https://app.example.com", "https://*.example.com"]``, ``["*"]`` for any), instead
        of the blueprint's ``websocket_allowed_origins`` or ``WEBSOCKET_ALLOWED_ORIGINS``.
        Raises ``ValueError`` for an invalid origin.
        """
        if allowed_origins is not None:
            options["allowed_origins"] = allowed_origins

        def decorator(func: F) -> F:
            self.add_url_rule(rule, endpoint, func, websocket=True, **options)
            return func

        return decorator

    # Hooks -------------------------------------------------------------------------------------

    def _hook(self, phase: Phase, kind: Kind, func: F) -> F:
        require_async(func, f"{phase}_{kind} function")
        self.hooks[(phase, kind)].append(func)
        if kind == "request" and phase != "teardown" and not never_suspends(func):
            self._requests_may_wait = True
        return func

    def before_request(self, func: F) -> F:
        """Run ``func()`` before each HTTP view; if it returns a value other than ``None``, that
        value is the response and the view does not run."""
        return self._hook("before", "request", func)

    def after_request(self, func: F) -> F:
        """Run ``func(response)`` on each HTTP response, error pages included; it returns the
        response to send."""
        return self._hook("after", "request", func)

    def teardown_request(self, func: F) -> F:
        """Run ``func(exc)`` when each HTTP request ends, whatever happened; ``exc`` is the
        unhandled exception or ``None``. Its errors are logged and ignored."""
        return self._hook("teardown", "request", func)

    def before_websocket(self, func: F) -> F:
        """Run ``func()`` before each websocket handler; a returned value rejects the handshake
        with that HTTP response."""
        return self._hook("before", "websocket", func)

    def after_websocket(self, func: F) -> F:
        """Run ``func(response)`` after each websocket handler; ``response`` is the HTTP
        response that refuses the handshake, or ``None`` once the websocket was accepted; it
        returns the response to use."""
        return self._hook("after", "websocket", func)

    def teardown_websocket(self, func: F) -> F:
        """Run ``func(exc)`` when each websocket ends, whatever happened (a disconnect too)."""
        return self._hook("teardown", "websocket", func)

    # Errors ------------------------------------------------------------------------------------

    def errorhandler(self, code_or_exception: int | type[BaseException]) -> Callable[[F], F]:
        """Handle an HTTP status code or an exception class (and its subclasses) with
        ``func(error)``, which returns a response value."""

        def decorator(func: F) -> F:
            self.register_error_handler(code_or_exception, func)
            return func

        return decorator

    def register_error_handler(
        self, code_or_exception: int | type[BaseException], func: ErrorHandler
    ) -> None:
        """The non-decorator form of :meth:`errorhandler`."""
        require_async(func, "error handler")
        self.error_handlers[exception_class(code_or_exception)] = func
        if not never_suspends(func):
            self._requests_may_wait = True

    # Templates ---------------------------------------------------------------------------------

    def context_processor(self, func: F) -> F:
        """Run ``func()`` before each template is rendered and add the names of the dict it
        returns to the template's context (the arguments of ``render_template`` win).

        ``func`` may be ``async def`` (awaited) or a plain function (which must not block). An
        app's apply to every template; a blueprint's only while one of its views (or its
        nested blueprints' views) is handled.
        """
        self.context_processors.append(func)
        return func
