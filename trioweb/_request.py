"""The request object: werkzeug's sans-IO request plus an async body.

Everything about the request line and headers (``args``, ``headers``, ``cookies``,
``authorization``, ``content_type``, ``url``, ...) is werkzeug's
:class:`werkzeug.sansio.request.Request`, built from the ASGI scope. The body is read from ASGI
``receive`` only when asked for (:meth:`Request.get_data`), under ``MAX_CONTENT_LENGTH``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import cached_property
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, final

import trio
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.sansio.request import Request as SansIORequest

from . import _json
from ._ctx import _cv_app
from ._errors import InvalidPayload
from ._formparser import Body, parse_form
from ._routing import Router, path_in_app
from ._types import Receive, Scope

if TYPE_CHECKING:
    from werkzeug.routing import MapAdapter, Rule

    from ._scaffold import Scaffold


def headers_from_scope(scope: Scope) -> Headers:
    """ASGI's list of byte pairs as werkzeug ``Headers`` (latin-1, as HTTP/1.1 has it).

    The pairs go into the list as they are: werkzeug's per-value check (no newline) guards the
    headers an app sets, and costs more than the rest of the decoding; a request's come from
    the server's parser, which has refused such lines already (h11 and h2 both do).
    """
    headers = Headers()
    headers._list = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    ]
    return headers


_LAZY: Any = Headers()  # a marker: "not decoded yet"


class BaseRequest(SansIORequest):
    """What HTTP requests and websockets share: the scope's data and the matched route."""

    # Slots keep a websocket's per-connection memory down (werkzeug's attributes stay in the
    # instance dict, which a few dozen more entries would double).
    __slots__ = (
        "_headers",
        "_scaffolds",
        "router",
        "routing_exception",
        "scope",
        "url_rule",
        "view_args",
    )

    _headers: Headers
    # Set by trioweb._sessions, in the instance dict, only for a connection that uses the session
    # (not slots: 16 bytes on every connection, websockets included, for something most skip).
    _session: Any
    _flashes: Any

    def __init__(self, scope: Scope) -> None:
        client = scope.get("client")
        server = scope.get("server")
        self.scope = scope
        super().__init__(  # positional, in the order of werkzeug's signature (cheaper)
            scope.get("method", "GET"),  # method
            scope.get("scheme", "http"),  # scheme
            (server[0], server[1]) if server is not None else None,  # server
            scope.get("root_path", ""),  # root_path
            path_in_app(scope),  # path
            scope.get("query_string", b""),  # query_string
            _LAZY,  # headers: made from the scope on first use (see ``headers``)
            client[0] if client is not None else None,  # remote_addr
        )
        #: The matched :class:`werkzeug.routing.Rule`, or ``None`` before matching or on a 404.
        self.url_rule: Rule | None = None
        #: The URL's variables, as passed to the view.
        self.view_args: dict[str, Any] | None = None
        #: The app's router, set when the connection is matched.
        self.router: Router | None = None
        #: The routing error (404, 405, ...) to raise once the ``before_*`` hooks have run.
        self.routing_exception: Exception | None = None
        #: The app and the blueprints whose hooks and error handlers apply, outermost first (set
        #: by the pipeline on first use).
        self._scaffolds: tuple[Scaffold, ...] | None = None

    @property
    def headers(self) -> Headers:
        """The request's headers (werkzeug ``Headers``), decoded from the scope on first use."""
        headers = self._headers
        if headers is _LAZY:
            headers = self._headers = headers_from_scope(self.scope)
        return headers

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    @property
    def url_root(self) -> str:
        """Flask's name for ``root_url``: scheme, host and root path, with a trailing slash
        (``"http://example.com/app/"``)."""
        return self.root_url

    @property
    def script_root(self) -> str:
        """Flask's name for ``root_path``: the path the app is mounted at (``"/app"``, or
        ``""`` at the root)."""
        return self.root_path

    @cached_property
    def g(self) -> SimpleNamespace:
        """This connection's ``g``: a namespace the hooks, the view and its tasks share."""
        return SimpleNamespace()

    @cached_property
    def url_adapter(self) -> MapAdapter:
        """The URL map bound to this connection (``url_for`` builds with it); made on first use."""
        assert self.router is not None, "the connection has not been routed"
        return self.router.adapter(self.scope)

    @property
    def endpoint(self) -> str | None:
        """The matched endpoint name (``"blueprint.view"`` for blueprint views)."""
        return self.url_rule.endpoint if self.url_rule is not None else None

    @property
    def blueprint(self) -> str | None:
        """The name of the blueprint the matched endpoint belongs to, if any."""
        endpoint = self.endpoint
        if endpoint is not None and "." in endpoint:
            return endpoint.rpartition(".")[0]
        return None

    @property
    def blueprints(self) -> list[str]:
        """The blueprint and its parents, innermost first (``["parent.child", "parent"]``)."""
        name = self.blueprint
        if name is None:
            return []
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


@final
class Request(BaseRequest):
    """An HTTP request, available as the global :data:`trioweb.request` in views and hooks."""

    __slots__ = (
        "_body",
        "_form",
        "_json",
        "_receive",
        "max_content_length",
        "max_form_memory_size",
        "max_form_parts",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        *,
        max_content_length: int | None = None,
        max_form_memory_size: int | None = None,
        max_form_parts: int | None = None,
    ) -> None:
        super().__init__(scope)
        self.max_content_length = max_content_length
        self.max_form_memory_size = max_form_memory_size
        self.max_form_parts = max_form_parts
        self._receive = receive
        self._body: Body | None = None
        self._form: tuple[MultiDict[str, str], MultiDict[str, FileStorage]] | None = None
        self._json: Any = _UNSET

    @property
    def body(self) -> Body:
        """The body as read so far from ASGI ``receive`` (made on first use: most requests never
        read theirs)."""
        body = self._body
        if body is None:
            body = self._body = Body(
                self._receive, self.scope["headers"], limit=self.max_content_length
            )
        return body

    async def get_data(self, as_text: bool = False) -> Any:
        """Read the whole body (once; later calls return the same bytes).

        Waits for the client to send it, so it is a checkpoint. Raises ``RequestEntityTooLarge``
        (413) past ``MAX_CONTENT_LENGTH``, checked while the body streams in, and
        ``ClientDisconnected`` (400) if the client leaves first. ``as_text`` decodes with the
        request's charset (UTF-8 unless stated), replacing undecodable bytes.
        """
        data = await self.body.read()
        if as_text:
            charset = self.mimetype_params.get("charset", "utf-8")
            return data.decode(charset, "replace")
        return data

    @property
    def data(self) -> Awaitable[bytes]:
        """``await request.data``: the body as bytes, like :meth:`get_data`."""
        return self.get_data()

    async def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """The body parsed as JSON.

        Unless ``force``, the content type must be JSON (``application/json`` or ``+json``),
        else ``415``. A body that cannot be read raises :class:`~trioweb.InvalidPayload` (a
        ``BadRequest``, 400) saying why: not JSON, not UTF-8, nested deeper than
        ``JSON_MAX_DEPTH``, a number over Python's digit limit, NaN when ``JSON_ALLOW_NAN`` is
        false. With ``silent`` both cases return ``None`` instead. A checkpoint.
        """
        if not (force or self.is_json):
            await trio.lowlevel.checkpoint()
            if silent:
                return None
            raise UnsupportedMediaType(
                "Did not attempt to load JSON data because the request Content-Type was not"
                " 'application/json'."
            )
        if self._json is _UNSET:
            data = await self.get_data()
            app = _cv_app.get()
            try:
                if app is None:
                    self._json = _json.parse(data)
                else:
                    self._json = _json.parse(
                        data,
                        max_depth=app.config["JSON_MAX_DEPTH"],
                        allow_nan=app.config["JSON_ALLOW_NAN"],
                    )
            except ValueError as error:
                if silent:
                    return None
                raise InvalidPayload(f"Failed to decode JSON object: {error}") from error
        else:
            await trio.lowlevel.checkpoint()
        return self._json

    @property
    def json(self) -> Awaitable[Any]:
        """``await request.json``: :meth:`get_json` with defaults."""
        return self.get_json()

    @property
    def form(self) -> Awaitable[MultiDict[str, str]]:
        """``await request.form``: urlencoded or multipart fields (empty for other types).

        Raises ``413`` past ``MAX_CONTENT_LENGTH``, ``MAX_FORM_MEMORY_SIZE`` or
        ``MAX_FORM_PARTS`` and ``400`` for a malformed multipart body.
        """
        return self._form_part(0)

    @property
    def files(self) -> Awaitable[MultiDict[str, FileStorage]]:
        """``await request.files``: the uploaded files of a multipart body."""
        return self._form_part(1)

    async def _form_part(self, index: int) -> Any:
        """The fields (0) or the files (1), the body read and parsed on first use. A checkpoint."""
        form = self._form
        if form is None:
            data = await self.body.read()
            form = self._form = parse_form(
                data,
                self.mimetype,
                self.mimetype_params,
                max_content_length=self.max_content_length,
                max_form_memory_size=self.max_form_memory_size,
                max_form_parts=self.max_form_parts,
            )
        else:
            await trio.lowlevel.checkpoint()
        return form[index]

    def close(self) -> None:
        """Close the uploaded files, which may be spooled to disk (trioweb calls this once the
        request's teardown hooks have run)."""
        if self._form is not None and self._form[1]:
            for _, file in self._form[1].items(multi=True):
                file.close()


class _Unset:
    pass


_UNSET: Any = _Unset()
