"""Request bodies: read from ASGI ``receive`` with a size limit, then parsed by werkzeug.

Rules:

* The body is read lazily, in whichever task asks for it, and at most once; one reader at a time
  (the view, or the disconnect listener that drains what the view left unread), a second one
  waits for the first.
* ``MAX_CONTENT_LENGTH`` is enforced twice: up front against ``Content-Length`` and while the
  chunks arrive, so an oversized upload is refused with ``413`` after at most ``limit`` bytes have
  been buffered, never after all of them.
* A client that goes away mid-body raises werkzeug's ``ClientDisconnected`` (a ``400``).
* Form parsing (urlencoded and multipart) is werkzeug's :class:`~werkzeug.formparser.FormDataParser`
  over the buffered body, with the same limits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from io import BytesIO

import trio
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.sansio.utils import get_content_length

from ._types import Receive


class Body:
    """One request's body, read from ``receive`` on demand and kept. ``headers`` are the ASGI
    scope's, where ``Content-Length`` is read when the body is first read (most requests never
    read theirs, so building a ``Body`` costs a few attribute stores)."""

    __slots__ = (
        "_chunks",
        "_error",
        "_headers",
        "_lock",
        "_receive",
        "_size",
        "complete",
        "limit",
    )

    def __init__(
        self, receive: Receive, headers: Iterable[tuple[bytes, bytes]], *, limit: int | None
    ) -> None:
        self._receive = receive
        self._headers = headers
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock: trio.Lock | None = None  # made by the first reader
        self._error: Exception | None = None
        #: True once the last chunk (``more_body`` false) has arrived.
        self.complete = False

    async def read(self) -> bytes:
        """The whole body. Raises ``RequestEntityTooLarge`` past the limit (a checkpoint)."""
        await self._fill_alone()
        return b"".join(self._chunks)

    async def drain(self) -> bool:
        """Buffer what nobody has read yet, so ``receive`` only has the disconnect left.

        Returns whether the client disconnected meanwhile. Errors (too large, disconnected) are
        kept for the next :meth:`read`, not raised here; past the limit, the rest is left unread.
        """
        try:
            await self._fill_alone()
        except RequestEntityTooLarge:
            return False
        except ClientDisconnected:
            return True
        return False

    async def _fill_alone(self) -> None:
        # One reader at a time (the view, or the listener's listen task draining for it). A
        # free lock is taken without waiting: trio.Lock.acquire would yield to the scheduler even
        # then, a third of a small form's cost. _fill is a checkpoint on every path.
        lock = self._lock
        if lock is None:
            lock = self._lock = trio.Lock()
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()
        try:
            await self._fill()
        finally:
            lock.release()

    async def _fill(self) -> None:
        if self._error is None and not self.complete and self.limit is not None and not self._size:
            declared = declared_length(self._headers)
            if declared is not None and declared > self.limit:
                self._error = RequestEntityTooLarge()
        if self._error is not None or self.complete:
            await trio.lowlevel.checkpoint()
            if self._error is not None:
                raise self._error
            return
        while not self.complete:
            message = await self._receive()  # a checkpoint (ASGI's receive is one)
            if message["type"] == "http.disconnect":
                self._error = ClientDisconnected()
                raise self._error
            chunk = message.get("body", b"")
            self._size += len(chunk)
            if self.limit is not None and self._size > self.limit:
                self._chunks.clear()
                self._error = RequestEntityTooLarge()
                raise self._error
            if chunk:
                self._chunks.append(chunk)
            self.complete = not message.get("more_body", False)


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """``Content-Length`` as werkzeug's ``Request.content_length`` has it, read straight from the
    scope's headers (decoding them all as ``Headers`` costs more than the rest of the request)."""
    length = encoding = None
    for name, value in headers:
        name = name.lower()
        if name == b"content-length" and length is None:
            length = value.decode("latin-1")
        elif name == b"transfer-encoding" and encoding is None:
            encoding = value.decode("latin-1")
    return get_content_length(length, encoding)


def parse_form(
    body: bytes,
    mimetype: str,
    options: dict[str, str],
    *,
    max_content_length: int | None,
    max_form_memory_size: int | None,
    max_form_parts: int | None,
) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """Parse an urlencoded or multipart body; other content types give empty dicts.

    Raises ``RequestEntityTooLarge`` when a limit is exceeded and ``BadRequest`` for a malformed
    multipart body.
    """
    parser = _parser(max_content_length, max_form_memory_size, max_form_parts)
    try:
        _, form, files = parser.parse(BytesIO(body), mimetype, len(body), options)
    except ValueError as error:
        raise BadRequest(f"Malformed form body: {error}") from error
    return form, files


@functools.lru_cache(maxsize=16)
def _parser(
    max_content_length: int | None, max_form_memory_size: int | None, max_form_parts: int | None
) -> FormDataParser:
    """A parser for these limits (it keeps no state between parses: made once, not per form)."""
    return FormDataParser(
        max_content_length=max_content_length,
        max_form_memory_size=max_form_memory_size,
        max_form_parts=max_form_parts,
        silent=False,
    )
