"""Jinja2 templates, rendered asynchronously.

The environment is built on first use from the app's ``templates/`` folder, then each registered
blueprint's ``template_folder``, in registration order. Templates see ``config``, ``request``,
``websocket`` (when bound), ``g``, ``session``, ``url_for`` and ``get_flashed_messages``, then
the app's filters, globals and tests (``app.template_filter`` ...; those registered after the
environment exists are added to it directly, see :meth:`TrioWeb.add_template_filter
<trioweb.TrioWeb.add_template_filter>`).

Before each render the context processors run: the app's, then those of the blueprints of the
view being handled, outermost first; the names given to ``render_template`` win over theirs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import trio
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from ._ctx import (
    _get_app,
    current_connection,
    g,
    has_request_context,
    has_websocket_context,
    request,
    websocket,
)
from ._helpers import url_for
from ._sessions import get_flashed_messages, session

if TYPE_CHECKING:
    from ._app import TrioWeb

F = TypeVar("F", bound=Callable[..., Any])


class TemplateRegistry:
    """The app's template filters, globals and tests (:class:`~trioweb.TrioWeb` inherits these
    methods). Registered in dicts the environment is made from; once it exists, added to it
    directly as well."""

    jinja_filters: dict[str, Callable[..., Any]]
    jinja_globals: dict[str, Any]
    jinja_tests: dict[str, Callable[..., Any]]

    def _add_jinja(
        self, kind: Literal["filters", "globals", "tests"], name: str, value: Any
    ) -> None:
        getattr(self, f"jinja_{kind}")[name] = value
        env = self.__dict__.get("jinja_env")
        if env is not None:  # made already: add it there too, so templates see it at once
            getattr(env, kind)[name] = value

    def template_filter(self, name: str | None = None) -> Callable[[F], F]:
        """Decorate a function as a Jinja2 filter (``{{ value|name }}``), named after the function
        unless ``name`` is given. Filters are plain functions, called while rendering."""

        def decorator(func: F) -> F:
            self.add_template_filter(func, name)
            return func

        return decorator

    def add_template_filter(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`template_filter`; works before and after the first
        template was rendered."""
        self._add_jinja("filters", name or func.__name__, func)

    def template_global(self, name: str | None = None) -> Callable[[F], F]:
        """Decorate a function so that every template can call it (``{{ name() }}``)."""

        def decorator(func: F) -> F:
            self.add_template_global(func, name)
            return func

        return decorator

    def add_template_global(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`template_global`."""
        self._add_jinja("globals", name or func.__name__, func)

    def template_test(self, name: str | None = None) -> Callable[[F], F]:
        """Decorate a function returning a bool as a Jinja2 test (``{% if value is name %}``)."""

        def decorator(func: F) -> F:
            self.add_template_test(func, name)
            return func

        return decorator

    def add_template_test(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`template_test`."""
        self._add_jinja("tests", name or func.__name__, func)


def create_environment(app: TrioWeb) -> Environment:
    """The app's Jinja2 environment (async rendering, HTML autoescaping)."""
    loaders: list[BaseLoader] = []
    for folder in app.template_folders():
        loaders.append(FileSystemLoader(folder))
    auto_reload = app.config["TEMPLATES_AUTO_RELOAD"]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(),
        enable_async=True,
        auto_reload=app.debug if auto_reload is None else bool(auto_reload),
    )
    env.globals.update(
        url_for=url_for,
        config=app.config,
        g=g,
        session=session,
        get_flashed_messages=get_flashed_messages,
    )
    env.filters.update(app.jinja_filters)
    env.globals.update(app.jinja_globals)
    env.tests.update(app.jinja_tests)
    return env


async def _context(app: TrioWeb, extra: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if has_request_context():
        context["request"] = request
    if has_websocket_context():
        context["websocket"] = websocket
    processors = list(app.context_processors)
    conn = current_connection()
    if conn is not None:
        for name in reversed(conn.blueprints):
            processors.extend(app.blueprints[name].context_processors)
    for processor in processors:
        values = processor()
        if inspect.isawaitable(values):
            values = await values
        context.update(values)
    context.update(extra)
    return context


async def render_template(template_name_or_list: str | list[str | Any], **context: Any) -> str:
    """Render a template from the app's (or a blueprint's) template folders with ``context``.

    Raises ``jinja2.TemplateNotFound`` if no folder has it. A checkpoint (rendering itself
    does not yield).
    """
    await trio.lowlevel.checkpoint()
    app = _get_app()
    template = app.jinja_env.get_or_select_template(template_name_or_list)
    return await template.render_async(await _context(app, context))


async def render_template_string(source: str, **context: Any) -> str:
    """Render ``source`` as a template with ``context``. A checkpoint."""
    await trio.lowlevel.checkpoint()
    app = _get_app()
    template = app.jinja_env.from_string(source)
    return await template.render_async(await _context(app, context))
