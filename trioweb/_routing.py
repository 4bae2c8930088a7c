"""URL routing: a thin layer over werkzeug's :class:`~werkzeug.routing.Map`.

werkzeug does the matching, the converters and URL building; it also knows websocket rules
(``Rule(websocket=True)``), so a path can carry both an HTTP view and a websocket handler, an HTTP
request to a websocket-only path is a ``400`` and a wrong method a ``405`` with ``Allow``. This
module only adapts an ASGI scope to werkzeug's ``MapAdapter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.sansio.utils import host_is_trusted

from ._types import Scope

#: How many successful matches the router remembers (per app).
MATCH_CACHE_SIZE = 1024


class Router:
    """The app's URL map; :meth:`adapter` binds it to one connection's scope.

    :meth:`match` remembers successful matches by ``(path, method, websocket)``: werkzeug's
    matcher costs tens of microseconds, most of a websocket handshake's routing. Only maps whose
    rules ignore the host are cached, and adding a rule empties the cache. Errors (404, 405,
    redirects) are never cached, so unknown paths cannot fill it.
    """

    def __init__(self, *, strict_slashes: bool = True, host_matching: bool = False) -> None:
        self.url_map = Map(strict_slashes=strict_slashes, host_matching=host_matching)
        self._cache: dict[tuple[str, str, bool], tuple[Rule, Mapping[str, Any]]] = {}
        self._cacheable = not host_matching

    def add(
        self,
        rule: str,
        endpoint: str,
        *,
        methods: Iterable[str] | None,
        websocket: bool,
        **options: Any,
    ) -> Rule:
        """Add a rule; raises ``ValueError`` (from werkzeug) for a malformed rule string."""
        if websocket or methods is None:
            methods = ["GET"]
        if isinstance(methods, str):
            raise TypeError(
                f"methods must be a list of strings, not {methods!r}; use [{methods!r}]"
            )
        upper = {m.upper() for m in methods}
        # As in Flask: an HTTP rule answers OPTIONS itself unless its view handles it.
        automatic_options = not websocket and "OPTIONS" not in upper
        if automatic_options:
            upper.add("OPTIONS")
        url_rule = Rule(rule, endpoint=endpoint, methods=upper, websocket=websocket, **options)
        url_rule.provide_automatic_options = automatic_options  # type: ignore[attr-defined]
        self.url_map.add(url_rule)
        self._cache.clear()
        if url_rule.subdomain or url_rule.host:
            self._cacheable = False
        return url_rule

    def match(self, scope: Scope, method: str) -> tuple[Rule, Mapping[str, Any]]:
        """The rule and URL variables for ``scope``; raises werkzeug's routing errors (404, 405
        with ``Allow``, 400 for a websocket/HTTP mismatch, 308 for a missing slash)."""
        websocket = scope["type"] == "websocket"
        key = (path_in_app(scope), method, websocket)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rule, view_args = self.adapter(scope).match(
            method=method, return_rule=True, websocket=websocket
        )
        if self._cacheable:
            if len(self._cache) >= MATCH_CACHE_SIZE:
                del self._cache[next(iter(self._cache))]  # the oldest
            self._cache[key] = (rule, view_args)
        return rule, view_args

    def adapter(self, scope: Scope) -> MapAdapter:
        """Bind the map to an ASGI scope (``http`` or ``websocket``)."""
        websocket = scope["type"] == "websocket"
        scheme = scope.get("scheme") or ("ws" if websocket else "http")
        host = _host_of(scope)
        return self.url_map.bind(
            host,
            script_name=scope.get("root_path") or None,
            url_scheme=scheme,
            default_method="GET",
            path_info=path_in_app(scope),
            query_args=scope.get("query_string", b"").decode("latin-1"),
        )


def path_in_app(scope: Scope) -> str:
    """The scope's ``path`` below ``root_path``, as werkzeug wants it.

    ASGI servers (Hypercorn too) give the mount point in ``root_path`` and repeat it at the start
    of ``path``; a ``path`` that does not start with ``root_path`` is taken as already below it.
    A request target in absolute form (``GET http://host/path``, ``ws://host/path``), which
    HTTP/1.1 servers must accept (RFC 9112, 3.2.2) and Hypercorn passes on as the path, is
    routed on its path.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path") or ""
    if not root_path and path.startswith("/"):  # the usual case
        return path
    if not path.startswith("/"):
        path = _path_of_absolute_form(path)
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


def _path_of_absolute_form(target: str) -> str:
    scheme, separator, rest = target.partition("://")
    if not separator or not scheme.isalpha():
        return target  # "*" (OPTIONS *) or something no rule matches: left for a 404
    _, slash, path = rest.partition("/")
    return slash + path or "/"


def _host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = str(value.decode("latin-1"))
            if host_is_trusted(host, None):  # werkzeug's check of its characters and port
                return host
            break  # a Host with a path, userinfo or a bad port: never built into a URL
    server = scope.get("server")
    if server is None:
        return "localhost"
    host, port = server
    scheme = scope.get("scheme", "http")
    default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme)
    return str(host) if port in (None, default) else f"{host}:{port}"
