"""pytest fixtures for trioweb apps (loaded automatically: trioweb registers a pytest11 plugin).

They build on an ``app`` fixture that the project defines (it returns its ``TrioWeb``), and run in
pytest-trio's trio mode:

``client``
    ``async with app.test_client()``: the app's lifespan runs around the test.
``live_server``
    The app served by real Hypercorn (trio worker) on 127.0.0.1, port 0, for the test's length;
    a :class:`LiveServer` with the URL and a helper that opens a trio-websocket connection.

Both fixtures are async, so only a test that pytest-trio runs can use them. Before such a test is
set up, and before any ``async def`` test that pytest-trio will not run, the plugin checks that
pytest-trio is installed and runs the test (trio mode, or a ``trio`` marker), and otherwise fails
the test with a message that says which lines to add, instead of pytest's generic complaint about
async functions with no plugin to run them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from inspect import iscoroutinefunction
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

#: The fixtures of this plugin; both are async and need a test that pytest-trio runs.
ASYNC_FIXTURES = ("client", "live_server")

#: What turns pytest-trio's trio mode on, for the message of a test it will not run.
TRIO_MODE_LINES = """\
    # pyproject.toml
    [tool.pytest.ini_options]
    trio_mode = true

    # or pytest.ini (tox.ini, setup.cfg: [tool:pytest])
    [pytest]
    trio_mode = true"""

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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that uses :data:`ASYNC_FIXTURES`, or is ``async def``, when pytest-trio will
    not run it, with a message that says how to fix the configuration.

    Runs before any fixture is set up. Tests that another async plugin claims (an ``asyncio`` or
    ``anyio`` marker, pytest-asyncio's auto mode) are left alone unless they use the fixtures.
    """
    if not isinstance(item, pytest.Function) or item.get_closest_marker("trio") is not None:
        return
    fixtures = [name for name in ASYNC_FIXTURES if name in item.fixturenames]
    is_async = iscoroutinefunction(item.obj)
    if not fixtures and (not is_async or _claimed_by_another_plugin(item)):
        return
    config = item.config
    if not config.pluginmanager.hasplugin("trio"):
        pytest.fail(
            f"{item.name} needs pytest-trio to run, which is not installed: "
            "pip install pytest-trio, then turn its trio mode on:\n\n"
            f"{TRIO_MODE_LINES}",
            pytrace=False,
        )
    uses = f"uses trioweb's {' and '.join(fixtures)} fixture" if fixtures else ""
    if is_async:
        pytest.fail(
            f"{item.name} {uses or 'is an async def test'}, but pytest-trio's trio mode is off "
            "and the test has no trio marker, so nothing would run it. Turn trio mode on:\n\n"
            f"{TRIO_MODE_LINES}\n\n"
            "or mark the test with @pytest.mark.trio.",
            pytrace=False,
        )
    hint = "" if config.getini("trio_mode") else f", and turn trio mode on:\n\n{TRIO_MODE_LINES}"
    pytest.fail(
        f"{item.name} {uses}, which is async: make the test an async def{hint}",
        pytrace=False,
    )


def _claimed_by_another_plugin(item: pytest.Function) -> bool:
    """Whether an ``async def`` test is for another async plugin to run."""
    if any(item.get_closest_marker(name) is not None for name in ("asyncio", "anyio")):
        return True
    try:
        return bool(item.config.getini("asyncio_mode") == "auto")
    except ValueError:  # pytest-asyncio is not installed
        return False


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
