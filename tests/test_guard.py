"""Websocket admission and limits: WEBSOCKET_MAX_CONNECTIONS refuses with 503 and Retry-After
before any hook or handler, the count goes back down however a connection ends,
WEBSOCKET_IDLE_TIMEOUT closes silent websockets with 1001, and app.stats() shows it all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, ws_scope
from _e2e import served
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from trioweb import Stats, TrioWeb, WebsocketClosed, websocket
from trioweb._guard import OVERLOAD_WARNING_INTERVAL, RETRY_AFTER, Guard, _close_idle
from trioweb._websocket import Websocket, WebsocketState
from trioweb.testing import TestClient, WebsocketDisconnectError, WebsocketResponseError


def held_app(**config: Any) -> tuple[TrioWeb, list[str]]:
    """An app whose /hold handler greets, then echoes until the client leaves; hooks and
    handler runs are recorded."""
    app = TrioWeb(__name__)
    app.config.update(config)
    ran: list[str] = []

    @app.before_websocket
    async def before() -> None:
        ran.append("before")

    @app.websocket("/hold")
    async def hold() -> None:
        ran.append("handler")
        await websocket.send("hello")
        async for message in websocket:
            await websocket.send(message)

    return app, ran


async def refused(client: TestClient, path: str = "/hold") -> Any:
    """The response that refuses a handshake to ``path``."""
    with pytest.raises(WebsocketResponseError) as refusal:
        async with client.websocket(path):
            pass  # pragma: no cover
    return refusal.value.response


# Overload -------------------------------------------------------------------------------------


async def test_beyond_the_limit_a_handshake_gets_503_before_any_hook() -> None:
    """With WEBSOCKET_MAX_CONNECTIONS open, the next handshake gets 503 with Retry-After and
    runs no hook or handler; once one ends, a new one is admitted."""
    app, ran = held_app(WEBSOCKET_MAX_CONNECTIONS=2)
    async with app.test_client() as client:
        async with client.websocket("/hold") as first, client.websocket("/hold") as second:
            assert [await first.receive(), await second.receive()] == ["hello", "hello"]
            assert app.stats().websockets_open == 2
            ran.clear()
            response = await refused(client)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == str(RETRY_AFTER)
            assert ran == []
            assert app.stats().websockets_refused_overload == 1
        async with client.websocket("/hold") as third:
            assert await third.receive() == "hello"
            assert app.stats().websockets_open == 1
    assert app.stats() == Stats(
        websockets_open=0,
        http_requests_in_flight=0,
        websockets_refused_overload=1,
        websockets_refused_origin=0,
        websockets_closed_idle=0,
    )


async def test_no_limit_with_none() -> None:
    """WEBSOCKET_MAX_CONNECTIONS = None admits any number."""
    app, _ = held_app(WEBSOCKET_MAX_CONNECTIONS=None)
    async with (
        app.test_client() as client,
        client.websocket("/hold") as one,
        client.websocket("/hold") as two,
    ):
        assert [await one.receive(), await two.receive()] == ["hello", "hello"]
        assert app.stats().websockets_open == 2


def test_the_default_limit_admits_the_bench_hold() -> None:
    """The default admits the bench's hold scenario (10,000 idle + 500 active) on one worker."""
    app = TrioWeb(__name__)
    assert app.config["WEBSOCKET_MAX_CONNECTIONS"] >= 10_500
    assert app.config["WEBSOCKET_IDLE_TIMEOUT"] is None


@pytest.mark.deadline(60)  # virtual seconds (autojump_clock)
async def test_the_overload_warning_comes_at_most_once_per_interval(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each refusal is counted; the WARNING comes at most once per interval and says how many
    were refused since the previous one."""
    app, _ = held_app(WEBSOCKET_MAX_CONNECTIONS=0)
    async with app.test_client() as client:
        for _ in range(3):
            assert (await refused(client)).status_code == 503
        await trio.sleep(OVERLOAD_WARNING_INTERVAL)
        assert (await refused(client)).status_code == 503
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "WEBSOCKET_MAX_CONNECTIONS (0)" in warnings[0]
    assert "1 refused since the last such line (1 in all)" in warnings[0]
    assert "3 refused since the last such line (4 in all)" in warnings[1]
    assert app.stats().websockets_refused_overload == 4


# The count ------------------------------------------------------------------------------------


def ending_app() -> tuple[TrioWeb, trio.Event]:
    """/ws/<how> accepts, says so, then ends as ``how`` says once the client sends a message."""
    app = TrioWeb(__name__)
    accepted = trio.Event()

    @app.websocket("/ws/<how>")
    async def ws(how: str) -> None:
        if how == "raise-before-accept":
            raise RuntimeError("boom")
        await websocket.accept()
        accepted.set()
        await websocket.send("accepted")
        await websocket.receive()
        if how == "raise":
            raise RuntimeError("boom")
        if how == "close":
            await websocket.close(1000)
        # "return": returning ends it with 1000
        # "wait": the client never sends, the handler waits

    return app, accepted


@pytest.mark.parametrize("how", ["return", "close", "raise"])
async def test_the_count_goes_down_when_the_handler_ends(how: str) -> None:
    """Returning, closing or raising (1011) gives the slot back."""
    app, _ = ending_app()
    async with app.test_client() as client:
        raises = pytest.raises(RuntimeError, match="boom") if how == "raise" else nullcontext()
        with raises:
            async with client.websocket(f"/ws/{how}") as ws:
                assert await ws.receive() == "accepted"
                assert app.stats().websockets_open == 1
                await ws.send("end")
                with pytest.raises(WebsocketDisconnectError):
                    await ws.receive()
        assert app.stats().websockets_open == 0


async def test_the_count_goes_down_when_the_client_leaves_or_the_handshake_fails() -> None:
    """A client that closes, and a handler that raises before accept (500), give it back."""
    app, _ = ending_app()
    async with app.test_client() as client:
        async with client.websocket("/ws/wait") as ws:
            assert await ws.receive() == "accepted"
            assert app.stats().websockets_open == 1
        assert app.stats().websockets_open == 0
        assert (await refused(client, "/ws/raise-before-accept")).status_code == 500
        assert app.stats().websockets_open == 0


async def test_the_count_goes_down_when_the_server_cancels_the_connection() -> None:
    """A connection the server cancels from outside (a shutdown's deadline) gives it back."""
    app, accepted = ending_app()
    async with app.test_client():  # the lifespan
        peer = ASGIPeer([{"type": "websocket.connect"}])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.serve, app, ws_scope("/ws/wait"))
            await accepted.wait()
            assert app.stats().websockets_open == 1
            peer.cancel_scope.cancel()
        assert app.stats().websockets_open == 0
        assert peer.sent[-1] == {
            "type": "websocket.close",
            "code": 1001,
        }  # the ending's close (spec 2.0: no reason)


async def test_http_requests_in_flight_are_counted() -> None:
    """stats() counts HTTP requests being answered."""
    app = TrioWeb(__name__)
    seen: list[int] = []

    @app.get("/")
    async def index() -> str:
        seen.append(app.stats().http_requests_in_flight)
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
    assert seen == [1]
    assert app.stats().http_requests_in_flight == 0


# Idle timeout ---------------------------------------------------------------------------------


def idle_app(**config: Any) -> tuple[TrioWeb, list[Any]]:
    """/echo echoes and records how it ended; /deaf accepts and never receives."""
    app = TrioWeb(__name__)
    app.config.update({"WEBSOCKET_IDLE_TIMEOUT": 10.0, **config})
    ended: list[Any] = []

    @app.websocket("/echo")
    async def echo() -> None:
        await websocket.accept()
        try:
            async for message in websocket:
                await websocket.send(message)
        except trio.Cancelled:
            ended.append("cancelled")
            raise
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await websocket.send("too late")
                except WebsocketClosed as closed:
                    ended.append((closed.code, closed.reason))

    @app.websocket("/deaf")
    async def deaf() -> None:
        await websocket.accept()
        await trio.sleep_forever()

    @app.websocket("/slow")
    async def slow() -> None:
        await trio.sleep(30)  # before accepting: not idle, not open yet
        await websocket.send("hi")
        await trio.sleep_forever()

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        ended.append(("teardown", error))

    return app, ended


@pytest.mark.deadline(120)  # virtual seconds (autojump_clock)
async def test_a_silent_client_is_closed_after_the_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No message from the client for WEBSOCKET_IDLE_TIMEOUT seconds: closed with 1001 and
    "idle for 10 s"; each message pushes it back. The handler is cancelled as for a disconnect,
    then sees WebsocketClosed(1001), and the teardown runs."""
    app, ended = idle_app()
    async with app.test_client(timeout=100) as client, client.websocket("/echo") as ws:
        start = trio.current_time()
        for _ in range(3):
            await trio.sleep(8)
            await ws.send("ping")
            assert await ws.receive() == "ping"
        last = trio.current_time()
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
        idle = trio.current_time() - last
        assert (closed.value.code, closed.value.reason) == (1001, "idle for 10 s")
        assert 10 <= idle <= 10 + 2 * 2.5, idle
        assert last - start == 24
    assert ended == ["cancelled", (1001, "idle for 10 s"), ("teardown", None)]
    assert app.stats().websockets_closed_idle == 1
    assert app.stats().websockets_open == 0


@pytest.mark.deadline(120)  # virtual seconds (autojump_clock)
async def test_messages_a_handler_has_not_received_yet_count_as_life(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The client's messages count when the handler is not receiving (the disconnect listener
    reads them for it); silence then closes it all the same."""
    app, _ = idle_app()
    async with app.test_client(timeout=100) as client, client.websocket("/deaf") as ws:
        for _ in range(3):
            await trio.sleep(8)
            await ws.send("still here")
        last = trio.current_time()
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
        assert closed.value.code == 1001
        assert trio.current_time() - last >= 10


@pytest.mark.deadline(120)  # virtual seconds (autojump_clock)
async def test_the_idle_clock_starts_at_accept(autojump_clock: trio.testing.MockClock) -> None:
    """A handshake that takes longer than the timeout to accept is not closed for it."""
    app, _ = idle_app()
    async with app.test_client(timeout=100) as client, client.websocket("/slow") as ws:
        accepted = trio.current_time()
        assert await ws.receive() == "hi"
        with pytest.raises(WebsocketDisconnectError):
            await ws.receive()
        assert trio.current_time() - accepted >= 10
        assert accepted >= 30


@pytest.mark.deadline(300)  # virtual seconds (autojump_clock)
async def test_turning_the_idle_timeout_off_stops_the_sweeper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Set to None, nothing is closed any more; set again, the next handshake starts the
    sweeper again."""
    app, _ = idle_app()
    async with app.test_client(timeout=1000) as client:
        async with client.websocket("/echo") as ws:
            app.config["WEBSOCKET_IDLE_TIMEOUT"] = None
            await trio.sleep(100)
            await ws.send("alive")
            assert await ws.receive() == "alive"
        assert not app._guard.sweeping
        app.config["WEBSOCKET_IDLE_TIMEOUT"] = 5
        async with client.websocket("/echo") as ws:
            with pytest.raises(WebsocketDisconnectError) as closed:
                await ws.receive()
            assert closed.value.reason == "idle for 5 s"
    assert app.stats().websockets_closed_idle == 1


async def test_without_a_lifespan_there_is_no_sweeper() -> None:
    """Served without a lifespan (no app nursery), websockets are admitted but not swept."""
    app, _ = idle_app()
    peer = ASGIPeer([{"type": "websocket.connect"}])
    peer.disconnect({"type": "websocket.disconnect", "code": 1000})
    await peer.serve(app, ws_scope("/echo"))
    assert not app._guard.sweeping
    assert peer.sent[0]["type"] == "websocket.accept"


async def test_the_idle_close_leaves_a_websocket_that_closed_meanwhile_alone() -> None:
    """The close task does nothing to a websocket that is no longer open, and a transport that
    breaks during the close still cancels the handler."""
    guard = Guard()
    peer = ASGIPeer(fail_sends={"websocket.close": trio.BrokenResourceError()})
    closed = Websocket(ws_scope(), peer.receive, peer.send)
    closed.state = WebsocketState.CLOSED
    await _close_idle(closed, guard, "idle for 1 s")
    assert guard.closed_idle == 0
    broken = Websocket(ws_scope(), peer.receive, peer.send)
    broken.state = WebsocketState.CONNECTED
    with trio.CancelScope() as scope:
        broken._scope = scope
        await _close_idle(broken, guard, "idle for 1 s")
    assert scope.cancelled_caught
    assert guard.closed_idle == 1
    assert broken.close_code == 1001


# End to end ---------------------------------------------------------------------------------


async def _handshake(port: int) -> tuple[trio.SocketStream, bytes, bytes]:
    """A handshake to /hold by hand: the stream, the response head and what followed it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        (
            "GET /hold HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return stream, head, rest


@pytest.mark.usefixtures("server")
async def test_a_real_server_answers_503_beyond_the_limit() -> None:
    """Served by Hypercorn (stock and layer): with the one allowed websocket open, the next
    handshake gets 503 with Retry-After; the shutdown that ends the first gives its slot back."""
    app, ran = held_app(WEBSOCKET_MAX_CONNECTIONS=1)
    async with served(app) as client:
        port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
        first, head, rest = await _handshake(port)
        assert head.startswith(b"HTTP/1.1 101"), head
        while len(rest) < 7:  # the handler's "hello": it was admitted
            rest += await first.receive_some()
        assert rest == b"\x81\x05hello"
        assert app.stats().websockets_open == 1
        second, head, _ = await _handshake(port)
        assert head.startswith(b"HTTP/1.1 503"), head
        assert f"retry-after: {RETRY_AFTER}".encode() in head.lower()
        assert ran == ["before", "handler"]
        await second.aclose()
    await first.aclose()
    assert app.stats().websockets_open == 0
    assert app.stats().websockets_refused_overload == 1


@asynccontextmanager
async def ws_client(port: int, path: str) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket connection on a TCP stream this helper closes (trio-websocket leaves its
    socket open when the server closes first)."""
    async with (
        await trio.open_tcp_stream("127.0.0.1", port) as stream,
        trio.open_nursery() as nursery,
    ):
        conn = await wrap_client_stream(nursery, stream, "127.0.0.1", path)
        try:
            yield conn
        finally:
            await conn.aclose()


@pytest.mark.usefixtures("server")
async def test_a_real_server_closes_an_idle_websocket_with_1001() -> None:
    """Served by Hypercorn (stock and layer): a client silent for WEBSOCKET_IDLE_TIMEOUT gets a
    close frame with 1001 and the reason; one that keeps talking does not."""
    app, _ = idle_app(WEBSOCKET_IDLE_TIMEOUT=0.5)
    async with served(app) as client:
        port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
        async with ws_client(port, "/echo") as talker:
            async with ws_client(port, "/echo") as silent:
                for _ in range(4):  # 0.8 s of talk on one, silence on the other
                    await talker.send_message("ping")
                    assert await talker.get_message() == "ping"
                    await trio.sleep(0.2)
                with pytest.raises(ConnectionClosed) as closed:
                    await silent.get_message()
                assert closed.value.reason.code == 1001
                assert closed.value.reason.reason == "idle for 0.5 s"
            await talker.send_message("still here")
            assert await talker.get_message() == "still here"
    assert app.stats().websockets_closed_idle == 1
