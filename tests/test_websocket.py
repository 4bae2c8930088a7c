"""The websocket object and its lifecycle: messages, the disconnect watcher, closing, errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, ws_scope

from trioweb import TrioWeb, WebsocketClosed, WebsocketState, websocket
from trioweb._websocket import MAX_PENDING
from trioweb.testing import WebsocketDisconnectError, WebsocketResponseError


async def test_watcher_queues_messages_for_a_busy_handler_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Messages that arrive while the handler is busy elsewhere are received later, in order."""
    app = TrioWeb(__name__)
    release = trio.Event()

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await release.wait()  # busy for longer than the watcher's delay
        await websocket.send_json([await websocket.receive() for _ in range(4)])

    async with app.test_client() as client, client.websocket("/ws") as conn:
        for message in ["one", "two", "three"]:
            await conn.send(message)
        await trio.sleep(1)  # the handler's wait, on the virtual clock: a listener takes over
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        await conn.send("four")  # taken over from the watcher by receive()
        assert await conn.receive_json() == ["one", "two", "three", "four"]


async def test_receive_takes_over_from_a_listening_watcher(autojump_clock: trio.abc.Clock) -> None:
    """A receive() that starts while the watcher listens gets the next message, not the watcher."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)
        for _ in range(3):
            await websocket.send(await websocket.receive())

    async with app.test_client() as client, client.websocket("/ws") as conn:
        for message in ["a", "b", "c"]:
            await conn.send(message)
            assert await conn.receive() == message


async def test_a_handler_that_does_not_receive_applies_backpressure(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Inbound buffering is bounded (watcher queue plus server queue); then the client waits."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep_forever()

    async with app.test_client(timeout=1) as client, client.websocket("/ws") as conn:
        await trio.sleep(1)
        for index in range(MAX_PENDING + 10):
            await conn.send(str(index))
        with pytest.raises(trio.TooSlowError, match="did not take a message"):
            await conn.send("one too many")
    # Leaving with the queue full tears the connection down instead of hanging.


async def test_two_tasks_cannot_receive_at_once() -> None:
    """A second concurrent receive() raises trio.BusyResourceError."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(websocket.receive)
            await trio.testing.wait_all_tasks_blocked()
            try:
                await websocket.receive()
            except trio.BusyResourceError as error:
                await websocket.send(str(error))
            nursery.cancel_scope.cancel()

    async with app.test_client() as client, client.websocket("/ws") as conn:
        assert await conn.receive() == "another task is already receiving on this websocket"


@pytest.mark.parametrize(
    "error", [trio.BrokenResourceError(), trio.ClosedResourceError(), trio.BusyResourceError()]
)
async def test_a_transport_error_on_send_is_a_disconnect(error: BaseException) -> None:
    """A server send that fails cancels the handler like a disconnect and never leaks."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await websocket.send("hello")
        finally:
            seen.append(websocket.close_code)

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(("teardown", error))

    failing = {"websocket.send": error, "websocket.close": error}
    peer = ASGIPeer([{"type": "websocket.connect"}], fail_sends=failing)
    await app(ws_scope(), peer.receive, peer.send)
    assert seen == [1006, ("teardown", None)]


async def test_after_a_disconnect_shielded_cleanup_gets_websocket_closed() -> None:
    """Once cancelled by a disconnect, receive/send in a shielded cleanup raise WebsocketClosed."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await websocket.receive()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                for operation in (websocket.receive(), websocket.send("x")):
                    try:
                        await operation
                    except WebsocketClosed as closed:
                        seen.append((closed.code, closed.reason))
            raise

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.close(4001, "leaving")
    assert seen == [(4001, "leaving"), (4001, "leaving")]


async def test_a_disconnect_before_accept_cancels_a_slow_hook(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A client that gives up during a slow before_websocket hook cancels it."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.before_websocket
    async def slow_auth() -> None:
        try:
            await trio.sleep_forever()
        finally:
            seen.append("hook cancelled")

    @app.websocket("/ws")
    async def ws() -> None:
        seen.append("handler ran")  # pragma: no cover

    peer = ASGIPeer([{"type": "websocket.connect"}])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, ws_scope(), peer.receive, peer.send)
        await trio.sleep(1)
        await peer.to_app.send({"type": "websocket.disconnect", "code": 1006})
    assert seen == ["hook cancelled"]
    assert peer.sent == []


async def test_closing_rules() -> None:
    """accept is idempotent; close validates its code; a closed socket refuses everything."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        assert websocket.state is WebsocketState.CONNECTING
        await websocket.accept()
        await websocket.accept()
        for code, reason in [(1005, ""), (999, ""), (2000, ""), (1000, "x" * 124)]:
            with pytest.raises(ValueError, match=r"close code|123 bytes"):
                await websocket.close(code, reason)
        await websocket.close(3000, "done")
        await websocket.close(1000)  # already closed: nothing happens
        assert websocket.state is WebsocketState.CLOSED
        for operation in (websocket.accept(), websocket.receive(), websocket.send("x")):
            with pytest.raises(WebsocketClosed) as closed:
                await operation
            seen.append((closed.value.code, closed.value.reason))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
        assert (closed.value.code, closed.value.reason) == (3000, "done")
        assert (conn.close_code, conn.close_reason) == (3000, "done")
    assert seen == [(3000, "done")] * 3


async def test_a_rejected_websocket_refuses_messages() -> None:
    """After close() before accept (a 403), the handler cannot send or accept."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.close(1000)
        assert websocket.state is WebsocketState.REJECTED
        for operation in (websocket.accept(), websocket.send("x")):
            with pytest.raises(WebsocketClosed, match="rejected"):
                await operation
            seen.append("refused")

    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as rejected:
            async with client.websocket("/ws"):
                pass  # pragma: no cover
    assert rejected.value.response.status_code == 403
    assert seen == ["refused", "refused"]


async def test_without_the_denial_extension_a_rejection_is_a_403(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server without websocket.http.response answers 403, and the lost status is logged."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> Any:
        return "no entry", 401

    peer = ASGIPeer([{"type": "websocket.connect"}])
    with caplog.at_level(logging.WARNING, "trioweb"):
        await app(ws_scope(extensions={}), peer.receive, peer.send)
    assert peer.sent == [{"type": "websocket.close", "code": 1000}]
    assert "instead of 401 UNAUTHORIZED" in caplog.text


async def test_the_test_client_reraises_the_handlers_exception() -> None:
    """An exception after accept closes 1011 and reaches the test, from receive or on exit."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.send("hi")
        raise KeyError("lost")

    async def receive_twice(client: Any) -> None:
        async with client.websocket("/ws") as conn:
            assert await conn.receive() == "hi"
            await conn.receive()

    async def leave_after_one(client: Any) -> None:
        async with client.websocket("/ws") as conn:
            assert await conn.receive() == "hi"

    async with app.test_client() as client:
        with pytest.raises(KeyError, match="lost"):
            await receive_twice(client)
        with pytest.raises(KeyError, match="lost"):
            await leave_after_one(client)


async def test_an_error_handler_after_accept_runs_and_the_socket_closes_1011() -> None:
    """A handled error after accept runs its handler, closes 1011 and is not re-raised."""
    app = TrioWeb(__name__)
    handled: list[str] = []

    @app.errorhandler(LookupError)
    async def lookup_failed(error: LookupError) -> str:
        handled.append(repr(error))
        return "ignored after accept"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise KeyError("k")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert closed.value.code == 1011
    assert handled == ["KeyError('k')"]


async def test_the_test_client_bounds_every_wait(autojump_clock: trio.abc.Clock) -> None:
    """A handler that never answers or never sends makes the test fail with TooSlowError."""
    app = TrioWeb(__name__)

    @app.websocket("/silent")
    async def silent() -> None:
        await websocket.accept()
        await trio.sleep_forever()

    @app.websocket("/stuck")
    async def stuck() -> None:
        await trio.sleep_forever()

    async with app.test_client(timeout=2) as client:
        async with client.websocket("/silent") as conn:
            with pytest.raises(trio.TooSlowError, match="sent nothing within 2"):
                await conn.receive()
        with pytest.raises(trio.TooSlowError):
            async with client.websocket("/stuck"):
                pass  # pragma: no cover


async def test_subprotocol_and_accept_headers_reach_the_client() -> None:
    """accept(subprotocol=..., headers=...) is what the client sees."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept(headers={"X-Room": "7"}, subprotocol="v2")
        await websocket.send(websocket.subprotocol or "")

    async with app.test_client() as client:
        connect = client.websocket("/ws", subprotocols=["v1", "v2"])
        async with connect as c:
            assert c.subprotocol == "v2"
            assert c.accept_headers["X-Room"] == "7"
            assert await c.receive() == "v2"


async def test_a_cancelled_receive_keeps_a_queued_message(autojump_clock: trio.abc.Clock) -> None:
    """receive() cancelled before it runs leaves the watcher's queued message for the next one."""
    app = TrioWeb(__name__)
    got: list[str | bytes] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)  # not receiving: a listener queues what arrives
        with trio.move_on_after(0):
            got.append(await websocket.receive())
        got.append(await websocket.receive())
        await websocket.close(1000)

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send("hello")
        with pytest.raises(WebsocketDisconnectError):
            await conn.receive()
    assert got == ["hello"]


async def test_leaving_async_for_early_is_clean() -> None:
    """Breaking out of `async for message in websocket` leaves nothing unfinished behind."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        async for message in websocket:
            if message == "stop":
                break
        await websocket.close(1000, "bye")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send("stop")
        with pytest.raises(WebsocketDisconnectError, match="bye"):
            await conn.receive()


async def test_leaving_with_a_full_queue_does_not_cancel_the_test(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that never receives: leaving tears the app down, the test goes on, it is logged."""
    app = TrioWeb(__name__)
    cleaned_up = trio.Event()

    @app.websocket("/silent")
    async def silent() -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up.set()

    async with app.test_client() as client:
        async with client.websocket("/silent") as conn:
            await trio.sleep(1)
            for _ in range(MAX_PENDING + 10):
                await conn.send("x")
        assert cleaned_up.is_set()
        await trio.lowlevel.checkpoint()  # the test itself was not cancelled
    assert "a disconnect will not be noticed" in caplog.text


async def test_an_error_handler_failing_after_accept_is_reraised() -> None:
    """An error handler that itself fails: the socket closes 1011 and the new error surfaces."""
    app = TrioWeb(__name__)

    @app.errorhandler(KeyError)
    async def broken_handler(error: KeyError) -> str:
        raise RuntimeError("handler broke")

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise KeyError("k")

    async with app.test_client() as client:
        with pytest.raises(RuntimeError, match="handler broke"):
            async with client.websocket("/ws") as conn:
                await conn.receive()


async def test_a_listener_started_too_late_stands_down() -> None:
    """A listener whose handler entered receive() before it ran does nothing and ends."""
    from trioweb._websocket import DisconnectSweeper, Websocket

    async def never() -> Any:
        await trio.sleep_forever()  # pragma: no cover

    ws = Websocket({"type": "websocket", "path": "/", "headers": []}, never, never)
    sweeper = DisconnectSweeper(1)
    async with trio.open_nursery() as nursery:
        sweeper.enroll(ws, nursery)
        ws._sweep()  # first sweep: notes the receive count
        ws._sweep()  # second: no receive since, so a listener is started...
        ws._receiving = True  # ...but the handler starts receiving before it runs
    assert ws._listener_running is False
    sweeper.withdraw(ws)
    ws._out_of_receive.add(ws)  # what a late receive() does: kept nowhere, no leak
    assert sweeper.out_of_receive == set()
    assert len(ws._out_of_receive) == 0
