"""pytest fixtures for trioweb apps (loaded automatically: trioweb registers a pytest11 plugin).

They build on an ``app`` fixture that the project defines (it returns its ``TrioWeb``), and run in
pytest-trio's trio mode:

``client``
    ``async with app.test_client()``: the app's lifespan runs around the test.
``live_server``
    The app served by real Hypercorn (trio worker) on 127.0.0.1, port 0, for the test's length;
    a :class:`LiveServer` with the URL and a helper that opens a trio-websocket connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, final

import attrs
import pytest
import trio

from .._serving import serve
from ._client import TestClient
from ._util import lone_exception_unwrapped

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from .._app import TrioWeb

#: Seconds the live server gets to shut down (``after_serving`` included) after a test.
SHUTDOWN_TIMEOUT = 10


@final
@attrs.frozen
class LiveServer:
    """A running server: ``url`` is ``http://127.0.0.1:<port>``, ``ws_url`` its ``ws://`` twin."""

    url: str

    @property
    def ws_url(self) -> str:
        """The server's base URL with the ``ws`` scheme."""
        return "ws" + self.url.removeprefix("http")

    def websocket(self, path: str, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        """``async with live_server.websocket("/ws") as conn:`` opens a trio-websocket
        connection to ``path`` (``kwargs`` such as ``subprotocols`` and ``extra_headers`` go to
        ``trio_websocket.wrap_client_stream``). A rejected handshake raises
        ``trio_websocket.ConnectionRejected``. The socket is closed on the way out, whatever
        happened (trio-websocket's own ``open_websocket_url`` leaves a rejected one open).
        Needs trio-websocket installed."""
        return _open_websocket(self.url, path, kwargs)


@asynccontextmanager
async def _open_websocket(url: str, path: str, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
    from trio_websocket import wrap_client_stream

    host, _, port = url.removeprefix("http://").rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    with lone_exception_unwrapped():
        async with stream, trio.open_nursery() as nursery:
            conn = await wrap_client_stream(nursery, stream, host, path, **kwargs)
            try:
                yield conn
            finally:
                await conn.aclose()


@pytest.fixture
async def client(app: TrioWeb) -> AsyncIterator[TestClient]:
    """A test client for the project's ``app`` fixture, its lifespan running."""
    async with app.test_client() as test_client:
        yield test_client


@pytest.fixture
async def live_server(app: TrioWeb) -> AsyncIterator[LiveServer]:
    """The project's ``app`` served by Hypercorn's trio worker on 127.0.0.1, port 0."""
    stop = trio.Event()

    async def shutdown_trigger() -> None:
        await stop.wait()

    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            partial(serve, app, host="127.0.0.1", port=0, shutdown_trigger=shutdown_trigger)
        )
        yield LiveServer(url)
        stop.set()
        nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_TIMEOUT
