"""The HTTP stream of the layer: Hypercorn 0.18's ``HTTPStream``, and one deviation (issue 10):

* **A request Hypercorn cannot decode gets 400.** Its streams decode the path as ASCII (over
  HTTP/2 the path may hold any byte: h11 refuses such a request line, h2 lets it through) and,
  when ``server_names`` is set, the ``Host`` header as UTF-8: a byte they cannot read raised
  ``UnicodeDecodeError`` out of the connection (an ERROR with a traceback; over HTTP/2 every
  stream of the connection ended). The layer answers 400 naming what it could not read and logs
  it at INFO; the stream ends (over HTTP/1.1 the connection closes, as the response says). The
  websocket handshake does the same, for more headers (:mod:`._ws`).

The check costs a look at each header's value per request (``bytes.isascii``), nothing per
message.
"""

from __future__ import annotations

import logging
from typing import Any

from hypercorn.protocol.events import Body, EndBody, Event, Request, Response, StreamClosed
from hypercorn.protocol.http_stream import HTTPStream as _StockHTTPStream

log = logging.getLogger("trioweb.layer")


class HTTPStream(_StockHTTPStream):
    """An HTTP request's stream (any HTTP version)."""

    async def handle(self, event: Event) -> None:
        """As stock's; a request it could not decode gets 400. A checkpoint."""
        if isinstance(event, Request) and not self.closed:
            undecodable = not_ascii(event, (), bool(self.config.server_names))
            if undecodable is not None:
                await refuse_undecodable(self, "request", undecodable)
                await self.send(StreamClosed(stream_id=self.stream_id))  # the stream ends
                return
        await super().handle(event)


def not_ascii(request: Request, names: tuple[bytes, ...], server_names: bool) -> str | None:
    """What of ``request`` Hypercorn would fail to decode, if anything: its method or path, a
    header in ``names`` (lower case) that is not ASCII, or (``server_names``: Hypercorn then
    reads it) the Host header."""
    if not request.raw_path.isascii():
        return "the path"
    if not request.method.isascii():  # the layer's HTTP/2 decodes it as latin-1
        return "the method"
    for name, value in request.headers:
        if not value.isascii():
            lowered = name.lower()
            if lowered in names or (server_names and lowered == b"host"):
                return f"the {name.decode('latin-1')} header"
    return None


async def refuse_undecodable(stream: Any, kind: str, what: str) -> None:
    """Answer ``stream``'s request with 400 saying that ``what`` is not ASCII, log it at INFO
    (a client's mistake) and close the stream. A checkpoint."""
    log.info("refused the %s of %s: %s is not ASCII", kind, stream.client, what)
    stream.closed = True
    body = f"Bad Request: {what} is not ASCII".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    await stream.send(Response(stream_id=stream.stream_id, status_code=400, headers=headers))
    await stream.send(Body(stream_id=stream.stream_id, data=body))
    await stream.send(EndBody(stream_id=stream.stream_id))
