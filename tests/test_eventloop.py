"""Served on the wrong event loop (asyncio: Hypercorn without ``-k trio``), the app says so at
once, naming ``-k trio``, instead of failing every request deep inside Trio."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import trio
from _e2e import HYPERCORN, running

from trioweb import TrioWeb
from trioweb._eventloop import on_trio

Message = dict[str, Any]


def _run_on_asyncio(scope: Message, inbound: list[Message]) -> list[Message]:
    """Call a trioweb app with ``scope`` under asyncio (bounded); returns what it sent."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:  # never reached on asyncio
        return "unreachable"

    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(0)
        return inbound.pop(0)

    async def send(message: Message) -> None:
        await asyncio.sleep(0)
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    return sent


def test_lifespan_on_asyncio_fails_startup_naming_k_trio() -> None:
    """The lifespan reports startup failed, with a message that says to serve with -k trio."""
    sent = _run_on_asyncio({"type": "lifespan"}, [{"type": "lifespan.startup"}])
    assert [message["type"] for message in sent] == ["lifespan.startup.failed"]
    assert "runs them on asyncio" in sent[0]["message"]
    assert "hypercorn -k trio module:app" in sent[0]["message"]


@pytest.mark.parametrize(
    ("scope", "inbound", "expected"),
    [
        pytest.param(
            {"type": "http", "method": "GET", "path": "/"},
            [],
            [
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", b"21"),
                    ],
                },
                {"type": "http.response.body", "body": b"Internal Server Error"},
            ],
            id="http",
        ),
        pytest.param(
            {"type": "websocket", "path": "/"},
            [{"type": "websocket.connect"}],
            [{"type": "websocket.close", "code": 1011, "reason": "wrong event loop"}],
            id="websocket",
        ),
    ],
)
def test_connections_on_asyncio_are_refused_and_logged(
    scope: Message,
    inbound: list[Message],
    expected: list[Message],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a lifespan, each connection is answered (500, or the handshake refused) and an
    error naming -k trio is logged."""
    with caplog.at_level(logging.ERROR, logger="trioweb"):
        assert _run_on_asyncio(scope, inbound) == expected
    (record,) = caplog.records
    assert "hypercorn -k trio" in record.getMessage()


def test_on_trio_outside_any_event_loop_is_false() -> None:
    """Synchronous code runs on no event loop: not Trio's."""
    assert not on_trio()


async def test_on_trio_under_trio() -> None:
    """Under trio.run, the app is where it belongs."""
    assert on_trio()


def test_unknown_event_loop_is_named_as_such() -> None:
    """A loop sniffio cannot name is reported as an unknown one (a coroutine driven by hand)."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    coroutine = TrioWeb(__name__)({"type": "lifespan"}, receive, send)
    with pytest.raises(StopIteration):
        coroutine.send(None)
    assert "runs them on an unknown event loop" in sent[0]["message"]


async def test_hypercorn_without_k_trio_stops_at_once_naming_it() -> None:
    """``hypercorn module:app`` (asyncio worker) does not serve a trioweb app: it exits at once,
    printing the line that names -k trio. (Its status is 0 here: Hypercorn 0.18's supervisor
    loses the worker's status, see tests/test_cli.py.)"""
    with trio.fail_after(5):
        argv = ("tests.apps.basic:app", "--bind", "127.0.0.1:0")
        async with running(*HYPERCORN, *argv) as command:
            await command.finish()
    assert "runs them on asyncio: serve the app with Hypercorn's trio worker" in command.stderr
    assert "hypercorn -k trio module:app" in command.stderr
    assert "basic: before_serving ran" not in command.stderr
    assert "Running on" not in command.stderr


async def test_hypercorn_without_k_trio_and_no_supervisor_exits_non_zero() -> None:
    """With ``--workers 0`` (no supervisor), the failed startup is Hypercorn's exit status."""
    with trio.fail_after(5):
        argv = ("tests.apps.basic:app", "--bind", "127.0.0.1:0", "--workers", "0")
        async with running(*HYPERCORN, *argv) as command:
            assert await command.finish() != 0
    assert "hypercorn -k trio module:app" in command.stderr
