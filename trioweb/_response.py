"""The response object: werkzeug's sans-IO response plus a body trioweb can send over ASGI.

A body is either bytes, known up front (``Content-Length`` is set), or an async iterable of
``bytes``/``str`` chunks that is streamed as it is produced (a generator, a file). Headers,
status, cookies and caching helpers are werkzeug's :class:`werkzeug.sansio.response.Response`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import trio
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.sansio.response import Response as SansIOResponse
from werkzeug.utils import get_content_type

from . import _json
from ._ctx import _cv_app
from ._types import HeadersValue, Send


class Response(SansIOResponse):
    """An HTTP response.

    ``response`` is ``str`` (encoded as UTF-8), ``bytes``, an async iterable of chunks (streamed,
    no ``Content-Length``) or ``None`` (empty). ``status`` is an ``int`` or a status line such as
    ``"404 NOT FOUND"``; the default is ``200`` and ``text/html; charset=utf-8``.
    """

    default_mimetype = "text/html"
    _headers: Headers | None  # None while a plain body's headers have not been asked for
    _mimetype: str  # a plain body's, for its headers
    _data: bytes | None  # None while the body is a stream
    _stream: AsyncIterable[bytes | str] | None

    def __init__(
        self,
        response: str | bytes | AsyncIterable[bytes | str] | None = None,
        status: int | str | None = None,
        headers: HeadersValue | None = None,
        mimetype: str | None = None,
        content_type: str | None = None,
    ) -> None:
        plain_type = self.default_mimetype if mimetype is None else mimetype
        if (
            headers is None
            and content_type is None
            and plain_type
            and (type(response) is str or type(response) is bytes)
        ):
            # The usual case (a view returned a string, or a Response of a string and a
            # mimetype): the two headers are known, so they are made only if somebody looks at
            # them (``headers``), and are otherwise sent as ASGI byte pairs straight away
            # (``asgi_headers``). The same headers, in the same order, as werkzeug's general
            # path makes.
            data = response.encode() if isinstance(response, str) else response
            _content_type(plain_type)  # raises now, as werkzeug would, for a bad one
            self._headers = None
            self._mimetype = plain_type
            if status is None:
                self._status, self._status_code = _status_pair(self.default_status)
            else:
                self.status = status
            self._data = data
            self._stream = None
            return
        self._headers = None
        super().__init__(status, _headers(headers), mimetype, content_type)
        self._data = b""
        self._stream = None
        if isinstance(response, AsyncIterable):
            self._data = None
            self._stream = response
        elif response is not None:
            self.set_data(response)

    @property
    def headers(self) -> Headers:
        """The response's headers (werkzeug ``Headers``)."""
        headers = self._headers
        if headers is None:  # a plain body's, not made yet
            headers = self._headers = Headers()
            headers._list = [
                ("Content-Type", _content_type(self._mimetype)),
                ("Content-Length", str(len(self._data or b""))),
            ]
        return headers

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    @property
    def is_streamed(self) -> bool:
        """Whether the body is an async iterable whose length is unknown until it is sent."""
        return self._stream is not None

    def set_data(self, value: str | bytes) -> None:
        """Replace the body and set ``Content-Length``."""
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"a response body must be str or bytes, not {type(value).__name__}")
        self._data = bytes(value)
        self._stream = None
        self.headers["Content-Length"] = str(len(self._data))

    async def get_data(self, as_text: bool = False) -> Any:
        """The whole body; a streamed body is consumed (and kept) by this call. A checkpoint."""
        if self._data is None:
            self.set_data(b"".join([chunk async for chunk in self.iter_encoded()]))
        else:
            await trio.lowlevel.checkpoint()
        assert self._data is not None
        return self._data.decode() if as_text else self._data

    async def get_json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` if it is not JSON."""
        return _json.loads(await self.get_data())

    async def iter_encoded(self) -> AsyncIterator[bytes]:
        """The body as byte chunks (a streamed body can be iterated once)."""
        if self._stream is None:
            if self._data:
                yield self._data
            return
        stream, self._stream = self._stream, None
        try:
            async for chunk in stream:
                yield chunk.encode() if isinstance(chunk, str) else chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def send(self, send: Send, *, head: bool = False) -> None:
        """Send this response over ASGI; ``head`` sends the headers only (for ``HEAD``)."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.asgi_headers(),
            }
        )
        if head or self._stream is None:
            body = b"" if head or self._data is None else self._data
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        async for chunk in self.iter_encoded():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as ASGI's list of latin-1 byte pairs."""
        if self._headers is None:  # a plain body's, untouched
            return [
                (b"content-type", _ascii_content_type(self._mimetype)),
                (b"content-length", b"%d" % len(self._data or b"")),
            ]
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self._headers
        ]


@functools.lru_cache(maxsize=256)
def _content_type(mimetype: str) -> str:
    """The ``Content-Type`` werkzeug makes of ``mimetype`` (``; charset=utf-8`` for text), checked
    as werkzeug checks a header value (``ValueError`` for a newline)."""
    headers = Headers()
    headers["Content-Type"] = get_content_type(mimetype, "utf-8")
    return headers["Content-Type"]


@functools.lru_cache(maxsize=256)
def _ascii_content_type(mimetype: str) -> bytes:
    return _content_type(mimetype).encode("latin-1")


@functools.cache
def _status_pair(status: int | str) -> tuple[str, int]:
    """werkzeug's status line and code for a class's ``default_status`` (parsed once)."""
    parsed = SansIOResponse(status=status)
    return parsed.status, parsed.status_code


def _headers(value: HeadersValue | None) -> Headers | None:
    if value is None or isinstance(value, Headers):
        return value
    return Headers(value)


def from_http_exception(error: HTTPException, response_class: type[Response]) -> Response:
    """werkzeug's rendering of an HTTP error (status, headers such as ``Allow``, body)."""
    rendered = error.get_response()
    if isinstance(rendered, Response):  # abort(response)
        return rendered
    return response_class(rendered.get_data(), rendered.status_code, Headers(rendered.headers))


def json_body(value: Any) -> str:
    """``value`` as JSON for a response body, with the current app's ``JSON_ALLOW_NAN``.

    Raises ``TypeError`` or ``ValueError`` for what cannot be sent (see :func:`_json.dumps`).
    """
    app = _cv_app.get()
    return _json.dumps(value, allow_nan=app is None or app.config["JSON_ALLOW_NAN"])


def coerce_response(value: Any, response_class: type[Response]) -> Response:
    """Coerce a view's return value into a :class:`Response`.

    Accepted: ``Response``, ``str``, ``bytes``, ``dict``/``list`` (JSON), an async iterable of
    chunks (streamed), each optionally in ``(body, status)``, ``(body, headers)`` or
    ``(body, status, headers)``. Anything else, ``None`` included, is a ``TypeError``.
    """
    kind = type(value)  # the usual cases first
    if kind is str or kind is bytes:
        return response_class(value)
    if kind is dict:
        return response_class(json_body(value), mimetype="application/json")
    status: int | str | None = None
    headers: Any = None
    if isinstance(value, tuple):
        if len(value) == 3:
            value, status, headers = value
        elif len(value) == 2:
            value, extra = value
            if isinstance(extra, Headers | dict | list):
                headers = extra
            else:
                status = extra
        else:
            raise TypeError(
                "a view's tuple must be (body, status), (body, headers) or"
                f" (body, status, headers), not a {len(value)}-tuple"
            )
    if isinstance(value, Response):
        response = value
    elif isinstance(value, str | bytes | AsyncIterable):
        response = response_class(value)
    elif isinstance(value, dict | list):
        response = response_class(json_body(value), mimetype="application/json")
    elif value is None:
        raise TypeError(
            "the view returned None; return a response value such as a string, a dict or a Response"
        )
    elif inspect.iscoroutine(value):
        value.close()  # never awaited: close it, so Python does not warn about it later
        raise TypeError(
            f"the view returned a coroutine ({value.__qualname__}) instead of a response: did you"
            " forget await?"
        )
    else:
        raise TypeError(
            f"a view cannot return a {type(value).__name__}; return str, bytes, dict, list,"
            " a Response or a (body, status, headers) tuple"
        )
    if status is not None:
        if isinstance(status, str):
            response.status = status
        else:
            response.status_code = status
    if headers:
        response.headers.update(headers)
    return response
