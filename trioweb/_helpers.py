"""Helpers for views: ``url_for``, ``abort``, ``redirect``, ``jsonify``, ``make_response`` and
sending files (which the static route uses)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, NoReturn, cast
from urllib.parse import quote

import trio
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import abort as _werkzeug_abort
from werkzeug.sansio.http import is_resource_modified
from werkzeug.security import safe_join
from werkzeug.utils import redirect as _werkzeug_redirect

from . import _json
from ._ctx import current_app, current_connection
from ._response import Response, json_body

if TYPE_CHECKING:
    pass

_CHUNK = 64 * 1024


def abort(code: int | Response, *args: Any, **kwargs: Any) -> NoReturn:
    """Stop the view (or hook) and answer with an HTTP error.

    ``abort(404)`` raises werkzeug's ``NotFound``; ``abort(401, "why")`` sets the description;
    ``abort(response)`` answers with that response as is. Error handlers see the exception.
    """
    _werkzeug_abort(code, *args, **kwargs)


def redirect(location: str, code: int = 302) -> Response:
    """A redirect response to ``location`` (``302`` unless ``code`` says otherwise)."""
    response: Any = _werkzeug_redirect(location, code, Response)  # type: ignore[arg-type]
    return cast(Response, response)


def jsonify(*args: Any, **kwargs: Any) -> Response:
    """A JSON response: one argument as is, several as a list, keyword arguments as an object."""
    return Response(json_body(_json.jsonable(*args, **kwargs)), mimetype="application/json")


async def make_response(*args: Any) -> Response:
    """Turn a view's return value (or ``(body, status, headers)`` arguments) into a response.

    Async, as in Quart, and so a checkpoint."""
    value: Any = args[0] if len(args) == 1 else args
    await trio.lowlevel.checkpoint()
    return current_app.make_response(value)


def url_for(
    endpoint: str,
    *,
    _anchor: str | None = None,
    _method: str | None = None,
    _scheme: str | None = None,
    _external: bool | None = None,
    **values: Any,
) -> str:
    """The URL of ``endpoint`` with ``values`` filled in (unknown values become the query string).

    ``".view"`` means the current blueprint's ``view``. URLs are relative unless ``_external``
    (or ``_scheme``); outside a request, the app's ``SERVER_NAME`` is used and URLs are external.
    Raises werkzeug's ``BuildError`` when no rule matches.
    """
    app = current_app
    conn = current_connection()
    if conn is not None:
        adapter = app.url_adapter_for(conn)
        if endpoint.startswith("."):
            blueprint = conn.blueprint
            endpoint = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
        external = _scheme is not None if _external is None else _external
    else:
        adapter = app.url_adapter_for(None)
        endpoint = endpoint.removeprefix(".")
        external = True if _external is None else _external
    if _scheme is not None and not external:
        raise ValueError("_scheme only makes sense for external URLs; pass _external=True")
    url = adapter.build(
        endpoint,
        values,
        method=_method,
        url_scheme=_scheme,
        force_external=external,
    )
    if _anchor is not None:
        url += "#" + quote(_anchor, safe="%!#$&'()*+,/:;=?@")
    return url


async def send_file(
    path: str | os.PathLike[str],
    *,
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    max_age: int | None = None,
    conditional: bool = True,
) -> Response:
    """A response that streams a file from disk in 64 KiB chunks, read in a worker thread.

    Sets ``Content-Type`` (guessed from the name unless given), ``Content-Length``,
    ``Last-Modified`` and an ``ETag``; with ``conditional`` a matching ``If-None-Match`` or
    ``If-Modified-Since`` gives ``304``. Raises ``NotFound`` if it is not a regular file.
    """
    file_path = trio.Path(path)
    try:
        stat = await file_path.stat()
    except (OSError, ValueError):  # ValueError: a NUL in the path (``%00`` from a client)
        raise NotFound() from None
    if not S_ISREG(stat.st_mode):
        raise NotFound()
    name = download_name or file_path.name
    if mimetype is None:
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(_read_file(file_path), mimetype=mimetype)
    response.headers["Content-Length"] = str(stat.st_size)
    response.last_modified = stat.st_mtime  # type: ignore[assignment]
    response.set_etag(f"{stat.st_mtime_ns:x}-{stat.st_size:x}")
    if as_attachment:
        response.headers.set("Content-Disposition", "attachment", filename=name)
    if max_age is not None:
        response.cache_control.public = True
        response.cache_control.max_age = max_age
    conn = current_connection()
    if conditional and conn is not None:
        headers = conn.headers
        modified = is_resource_modified(
            http_if_none_match=headers.get("If-None-Match"),
            http_if_modified_since=headers.get("If-Modified-Since"),
            etag=response.get_etag()[0],
            last_modified=response.last_modified,
        )
        if not modified:
            not_modified = Response(status=304, headers=response.headers)
            del not_modified.headers["Content-Length"]
            return not_modified
    return response


async def send_from_directory(
    directory: str | os.PathLike[str], path: str, **kwargs: Any
) -> Response:
    """:func:`send_file` for ``path`` inside ``directory``; ``NotFound`` if it would escape it."""
    joined = safe_join(os.fspath(directory), path)
    if joined is None:
        await trio.lowlevel.checkpoint()
        raise NotFound()
    return await send_file(joined, **kwargs)


async def _read_file(path: trio.Path) -> AsyncIterator[bytes]:
    async with await path.open("rb") as file:
        while chunk := await file.read(_CHUNK):
            yield chunk
