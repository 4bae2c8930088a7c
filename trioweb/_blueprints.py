"""Blueprints: a group of views, hooks and error handlers registered on an app later.

A blueprint records its routes and nested blueprints and replays them when registered, under its
``url_prefix`` and with endpoints named ``"blueprint.view"``. Its hooks and error handlers stay on
the blueprint; the app's pipeline consults them for requests whose endpoint is in the blueprint
(innermost blueprint first for error handlers and ``after``/``teardown`` hooks, app first for
``before`` hooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, final

from ._origins import OriginPolicy, route_policy
from ._scaffold import F, Scaffold, require_async
from ._types import ViewFunc

if TYPE_CHECKING:
    from ._app import TrioWeb


@final
class Blueprint(Scaffold):
    """A named group of routes, hooks and error handlers.

    ``url_prefix`` is prepended to every rule; ``static_folder`` (none by default) is served at
    ``{url_prefix}/static`` or ``static_url_path``; ``template_folder`` (none by default) is
    searched after the app's. ``websocket_allowed_origins`` (a list of origins) is the default
    ``allowed_origins`` of the blueprint's websocket routes and of its nested blueprints' that
    set none, instead of ``WEBSOCKET_ALLOWED_ORIGINS``. Names may not contain a dot; an invalid
    origin is a ``ValueError``.
    """

    def __init__(
        self,
        name: str,
        import_name: str,
        *,
        url_prefix: str | None = None,
        static_folder: str | None = None,
        static_url_path: str | None = None,
        template_folder: str | None = None,
        root_path: str | None = None,
        websocket_allowed_origins: Iterable[str] | None = None,
    ) -> None:
        if not name or "." in name:
            raise ValueError(f"a blueprint's name must be non-empty and without a dot: {name!r}")
        super().__init__(
            import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        self.name = name
        self.url_prefix = url_prefix
        #: The parsed ``websocket_allowed_origins``, or ``None`` (then the parent blueprint's, or
        #: the app's config, applies).
        self.websocket_allowed_origins: OriginPolicy | None = None
        if websocket_allowed_origins is not None:
            self.websocket_allowed_origins = OriginPolicy.parse(
                websocket_allowed_origins, f"websocket_allowed_origins of blueprint {name!r}"
            )
        self._routes: list[tuple[str, str | None, ViewFunc, dict[str, Any]]] = []
        self._children: list[tuple[Blueprint, dict[str, Any]]] = []
        self._app_setup: list[Callable[[TrioWeb], None]] = []
        self._registered = False

    def _check_not_registered(self, what: str) -> None:
        if self._registered:
            raise RuntimeError(
                f"cannot {what} on blueprint {self.name!r}: it is already registered on an app,"
                " which would never see it. Set up the blueprint before registering it."
            )

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
        """Record a route, added to the app (prefixed) when the blueprint is registered."""
        if view_func is None:
            raise TypeError("add_url_rule() on a blueprint needs a view_func")
        require_async(view_func, "websocket handler" if websocket else "view")
        if endpoint is not None and "." in endpoint:
            raise ValueError(f"a blueprint endpoint may not contain a dot: {endpoint!r}")
        options.update(methods=methods, websocket=websocket)
        if options.get("allowed_origins") is not None:  # invalid: say so now, not at registration
            options["allowed_origins"] = route_policy(
                options["allowed_origins"], websocket=websocket, rule=rule
            )
        self._check_not_registered("add a route")
        self._routes.append((rule, endpoint, view_func, options))

    def register_blueprint(self, blueprint: Blueprint, **options: Any) -> None:
        """Nest ``blueprint`` in this one: its name becomes ``"this.child"`` and its prefix is
        appended to this one's."""
        if blueprint is self:
            raise ValueError("a blueprint cannot be registered on itself")
        self._check_not_registered("nest a blueprint")
        self._children.append((blueprint, options))

    def register(
        self,
        app: TrioWeb,
        *,
        url_prefix: str | None = None,
        name: str | None = None,
        name_prefix: str = "",
    ) -> None:
        """Add this blueprint's routes (and its children's) to ``app``; called by
        :meth:`TrioWeb.register_blueprint`."""
        local_name = name if name is not None else self.name
        full_name = f"{name_prefix}.{local_name}".lstrip(".")
        if full_name in app.blueprints:
            raise ValueError(
                f"a blueprint named {full_name!r} is already registered; pass name=... to"
                " register it again under another name"
            )
        first_on_app = all(registered is not self for registered in app.blueprints.values())
        app.blueprints[full_name] = self
        self._registered = True
        if first_on_app:  # registered again under another name: the app has these already
            for setup in self._app_setup:
                setup(app)
        prefix = url_prefix if url_prefix is not None else self.url_prefix
        if self.static_folder is not None:
            static_path = self.static_url_path or "/static"
            app.add_static_route(_join(prefix, static_path), f"{full_name}.static", self)
        for rule, endpoint, view_func, options in self._routes:
            app.add_url_rule(
                _join(prefix, rule),
                f"{full_name}.{endpoint or view_func.__name__}",
                view_func,
                **options,
            )
        for child, child_options in self._children:
            child_prefix = _join(prefix, child_options.get("url_prefix") or child.url_prefix)
            child.register(
                app,
                url_prefix=child_prefix,
                name=child_options.get("name"),
                name_prefix=full_name,
            )

    # For the whole app ---------------------------------------------------------------------------

    def _on_app(self, what: str, setup: Callable[[TrioWeb], None]) -> None:
        self._check_not_registered(what)
        self._app_setup.append(setup)

    def app_context_processor(self, func: F) -> F:
        """:meth:`TrioWeb.context_processor <trioweb.TrioWeb.context_processor>` for every
        template of the app, once the blueprint is registered."""
        self._on_app(
            "add an app context processor", lambda app: app.context_processors.append(func)
        )
        return func

    def app_template_filter(self, name: str | None = None) -> Callable[[F], F]:
        """:meth:`TrioWeb.template_filter <trioweb.TrioWeb.template_filter>` for the app."""

        def decorator(func: F) -> F:
            self.add_app_template_filter(func, name)
            return func

        return decorator

    def add_app_template_filter(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`app_template_filter`."""
        self._on_app("add a template filter", lambda app: app.add_template_filter(func, name))

    def app_template_global(self, name: str | None = None) -> Callable[[F], F]:
        """:meth:`TrioWeb.template_global <trioweb.TrioWeb.template_global>` for the app."""

        def decorator(func: F) -> F:
            self.add_app_template_global(func, name)
            return func

        return decorator

    def add_app_template_global(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`app_template_global`."""
        self._on_app("add a template global", lambda app: app.add_template_global(func, name))

    def app_template_test(self, name: str | None = None) -> Callable[[F], F]:
        """:meth:`TrioWeb.template_test <trioweb.TrioWeb.template_test>` for the app."""

        def decorator(func: F) -> F:
            self.add_app_template_test(func, name)
            return func

        return decorator

    def add_app_template_test(self, func: Callable[..., Any], name: str | None = None) -> None:
        """The non-decorator form of :meth:`app_template_test`."""
        self._on_app("add a template test", lambda app: app.add_template_test(func, name))


def _join(prefix: str | None, rule: str | None) -> str:
    if not prefix:
        return rule or ""
    if not rule:
        return prefix
    return f"{prefix.rstrip('/')}/{rule.lstrip('/')}"
