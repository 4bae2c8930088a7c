"""Jinja2 templates, rendered asynchronously.

The environment is built on first use from the app's ``templates/`` folder, then each registered
blueprint's ``template_folder``, in registration order. Templates see ``config``, ``request``,
``websocket`` (when bound), ``g`` and ``url_for``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from ._ctx import current_app, g, has_request_context, has_websocket_context, request, websocket
from ._helpers import url_for

if TYPE_CHECKING:
    from ._app import TrioWeb


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
    env.globals.update(url_for=url_for, config=app.config, g=g)
    return env


def _context(extra: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if has_request_context():
        context["request"] = request
    if has_websocket_context():
        context["websocket"] = websocket
    context.update(extra)
    return context


async def render_template(template_name_or_list: str | list[str | Any], **context: Any) -> str:
    """Render a template from the app's (or a blueprint's) template folders with ``context``.

    Raises ``jinja2.TemplateNotFound`` if no folder has it.
    """
    env = current_app.jinja_env
    template = env.get_or_select_template(template_name_or_list)
    return await template.render_async(_context(context))


async def render_template_string(source: str, **context: Any) -> str:
    """Render ``source`` as a template with ``context``."""
    template = current_app.jinja_env.from_string(source)
    return await template.render_async(_context(context))
