"""Fixtures shared by the tests: a deadline for every test, and an ASGI peer for the few tests that
must drive an app by hand (streamed bodies, disconnects) rather than through the test client."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import trio

Message = dict[str, Any]


#: Seconds of Trio's clock (virtual under ``autojump_clock``) any async test may take.
DEADLINE = 5


@pytest.fixture(autouse=True)
def _deadline(request: pytest.FixtureRequest) -> None:
    """Run every async test inside ``trio.fail_after(DEADLINE)``: a hung test fails with
    ``trio.TooSlowError`` instead of hanging the run.

    This is a sync fixture that wraps the test function, because an autouse *async* fixture
    would silently never run: pytest-trio only runs the async fixtures a test names in its
    signature (python-trio/pytest-trio#123).
    """
    test = request.node.obj
    if not inspect.iscoroutinefunction(test):
        return

    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        with trio.fail_after(DEADLINE):
            return await test(*args, **kwargs)

    request.node.obj = bounded


def _http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
    query_string: bytes = b"",
    **extra: Any,
) -> Message:
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    scope.update(extra)
    return scope


@pytest.fixture
def http_scope() -> Callable[..., Message]:
    """A factory for ASGI ``http`` scopes: ``http_scope("/path", method="POST", headers=[...])``;
    keyword arguments that are not parameters replace scope keys (``server=None``)."""
    return _http_scope


class ASGIPeer:
    """A hand-driven ASGI server side: ``receive`` hands out the queued messages, then waits for
    :meth:`disconnect`; ``send`` records what the app sends."""

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        self.inbox = list(messages)
        self.received = 0
        self.sent: list[Message] = []
        self.gone = trio.Event()

    def disconnect(self) -> None:
        """From now on (once the queued messages are used up) ``receive`` says the client left."""
        self.gone.set()

    async def receive(self) -> Message:
        await trio.lowlevel.checkpoint()
        if self.received < len(self.inbox):
            self.received += 1
            return self.inbox[self.received - 1]
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(message)

    @property
    def status(self) -> int:
        """The status of the response the app started."""
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        """The response's headers."""
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        """The concatenated body chunks the app sent."""
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


@pytest.fixture
def asgi_peer() -> Callable[..., ASGIPeer]:
    """A factory for :class:`ASGIPeer`: ``asgi_peer([{"type": "http.request", ...}, ...])``."""
    return ASGIPeer
