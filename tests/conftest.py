"""Fixtures shared by the tests: a deadline for every test, and the ASGI peer of ``_asgi_peer`` for
the few tests that must drive an app by hand (streamed bodies, disconnects) rather than through the
test client."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import _asgi_peer
import _servers
import _valkey
import pytest
import trio
from _asgi_peer import ASGIPeer, Message
from _servers import SERVERS

from trioweb import serve
from trioweb.testing import pytest_plugin
from trioweb.testing.pytest_plugin import LiveServer

#: Seconds of Trio's clock (virtual under ``autojump_clock``) any async test may take.
DEADLINE = 5


@pytest.fixture(autouse=True)
def _deadline(request: pytest.FixtureRequest) -> None:
    """Run every async test inside ``trio.fail_after(DEADLINE)``: a hung test fails with
    ``trio.TooSlowError`` instead of hanging the run. A ``@pytest.mark.deadline(seconds)``
    test gets that bound instead (the slow tests with 100 clients or 1,000 connections).

    This is a sync fixture that wraps the test function, because an autouse *async* fixture
    would silently never run: pytest-trio only runs the async fixtures a test names in its
    signature (python-trio/pytest-trio#123).
    """
    test = request.node.obj
    if not inspect.iscoroutinefunction(test):
        return
    marker = request.node.get_closest_marker("deadline")
    deadline = DEADLINE if marker is None else marker.args[0]

    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        with trio.fail_after(deadline):
            return await test(*args, **kwargs)

    request.node.obj = bounded


@pytest.fixture
def http_scope() -> Callable[..., Message]:
    """A factory for ASGI ``http`` scopes: ``http_scope("/path", method="POST", headers=[...])``;
    keyword arguments that are not parameters replace scope keys (``server=None``)."""
    return _asgi_peer.http_scope


@pytest.fixture
def asgi_peer() -> Callable[..., ASGIPeer]:
    """A factory for :class:`ASGIPeer`: ``asgi_peer([{"type": "http.request", ...}, ...])``."""
    return ASGIPeer


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server an end-to-end test runs against: ``"stock"`` (Hypercorn's trio worker) or
    ``"layer"`` (trioweb's connection layer). See tests/_servers.py.

    ``_e2e.served`` and the plugin's ``live_server`` serve with it for the test's length."""
    kind = str(request.param)
    monkeypatch.setattr(_servers, "current", kind)
    kwargs = _servers.serve_kwargs(kind)
    if kwargs:
        monkeypatch.setattr(pytest_plugin, "serve", functools.partial(serve, **kwargs))
    return kind


@pytest.fixture
async def live_server(server: str, live_server: LiveServer) -> LiveServer:
    """The plugin's ``live_server``, once per server (stock Hypercorn, the layer)."""
    return live_server


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[_valkey.Valkey]:
    """A real Valkey server on 127.0.0.1 and a free port (see tests/_valkey.py): skipped
    without a server binary (a failure under ``CI=true``), always stopped afterwards."""
    async with _valkey.running_valkey(tmp_path) as server:
        yield server
