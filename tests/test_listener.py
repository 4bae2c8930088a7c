"""The disconnect listener: busy receivers on every path, and a handover that survives any
ending (a cancel from outside included)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, Message, ws_scope

from trioweb import TrioWeb, websocket
from trioweb._formparser import Body
from trioweb._listener import DisconnectListener, HttpWatch, Inbox


def listening_app(delay: float = 0.1) -> TrioWeb:
    app = TrioWeb(__name__)
    app.config["DISCONNECT_LISTENER_DELAY"] = delay
    return app


async def test_two_receivers_while_a_listen_task_waits_get_busy_resource_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With a listen task waiting for the client, a second concurrent receive() gets
    trio.BusyResourceError instead of waiting forever; the first one gets the message."""
    app = listening_app()
    results: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)  # away from receive(): a listen task now waits for the client

        async def receive() -> None:
            try:
                results.append(await websocket.receive())
            except trio.BusyResourceError:
                results.append("busy")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(receive)
        await websocket.send_json(sorted(results))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await trio.sleep(2)
        await conn.send("hello")
        assert await conn.receive_json() == ["busy", "hello"]


async def test_two_receivers_of_queued_messages_get_busy_resource_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    """While one task takes a queued message, a second one gets trio.BusyResourceError."""
    app = listening_app()
    results: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)  # the listen task queues the client's messages meanwhile

        async def receive() -> None:
            try:
                results.append(await websocket.receive())
            except trio.BusyResourceError:
                results.append("busy")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(receive)
        await websocket.send_json(sorted(results))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send("one")
        await conn.send("two")
        assert await conn.receive_json() == ["busy", "one"]


@pytest.mark.parametrize("message_arrives", ["before the cancel", "after the cancel"])
async def test_a_shielded_receive_after_the_server_cancels_gets_the_message(
    autojump_clock: trio.abc.Clock, message_arrives: str
) -> None:
    """A listen task cancelled from outside hands over: a shielded receive() in the handler's
    cleanup returns the client's message instead of waiting forever."""
    app = listening_app()
    last_words: list[str | bytes] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()  # a listen task reads the client meanwhile
        finally:
            with trio.CancelScope(shield=True), trio.fail_after(1):
                last_words.append(await websocket.receive())

    server = ASGIPeer([{"type": "websocket.connect"}])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, app, ws_scope())
        await trio.sleep(1)  # past the delay: the listen task waits in receive
        if message_arrives == "before the cancel":
            await server.to_app.send({"type": "websocket.receive", "text": "bye"})
            await trio.testing.wait_all_tasks_blocked()
        server.cancel_scope.cancel()
        if message_arrives == "after the cancel":
            await server.to_app.send({"type": "websocket.receive", "text": "bye"})
    assert last_words == ["bye"]


async def test_a_shielded_receive_after_the_server_cancels_gets_the_disconnect(
    autojump_clock: trio.abc.Clock,
) -> None:
    """If the client has left too, the shielded receive() raises WebsocketClosed with its
    code instead of waiting."""
    app = listening_app()
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.fail_after(1):
                try:
                    await websocket.receive()
                except Exception as error:
                    seen.append((type(error).__name__, getattr(error, "code", None)))

    server = ASGIPeer([{"type": "websocket.connect"}])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, app, ws_scope())
        await trio.sleep(1)
        server.cancel_scope.cancel()
        await server.to_app.send({"type": "websocket.disconnect", "code": 4000})
    assert seen == [("WebsocketClosed", 4000)]


async def test_the_listen_task_stops_at_a_full_queue_and_warns(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that does not receive gets MAX_PENDING messages queued, then the listen task
    stops reading (backpressure) and says so; the handler later gets them all, in order."""
    from trioweb._listener import MAX_PENDING

    app = listening_app()
    release = trio.Event()

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await release.wait()
        await websocket.send_json([await websocket.receive() for _ in range(MAX_PENDING + 5)])

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await trio.sleep(1)
        for index in range(MAX_PENDING + 5):
            await conn.send(str(index))
        await trio.sleep(1)
        release.set()
        assert await conn.receive_json() == [str(i) for i in range(MAX_PENDING + 5)]
    assert any("backpressure" in record.getMessage() for record in caplog.records)


async def test_a_full_queue_is_logged_once_per_filling_at_doubling_counts(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler away from receive() for many of the listener's looks while its queue is full
    gets one warning, not one per look; a handler that takes one message now and then, so that
    the queue fills again each time, gets the 1st, 2nd and 4th fillings logged, with the
    count."""
    from trioweb._listener import MAX_PENDING

    app = listening_app()
    steps, step = trio.open_memory_channel[None](0)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async for _ in step:
            await websocket.receive()

    async with app.test_client() as client, client.websocket("/ws") as conn:
        for index in range(MAX_PENDING + 8):
            await conn.send(str(index))
        await trio.sleep(2)  # 20 looks
        for _ in range(4):
            await steps.send(None)
            await trio.sleep(0.3)
        await steps.aclose()  # the handler ends
    warnings = [r.getMessage() for r in caplog.records if r.name == "trioweb"]
    assert [re.search(r"\((\d+) times", w).group(1) for w in warnings] == ["1", "2", "4"]  # type: ignore[union-attr]
    assert all("backpressure" in w for w in warnings)


async def test_an_inbox_read_by_the_handler_gets_no_listen_task() -> None:
    """The listener starts a listen task only for an inbox nobody read since its last look."""

    async def receive() -> Message:
        await trio.lowlevel.checkpoint()
        return {"type": "websocket.receive", "text": "x"}

    inbox = Inbox(receive, lambda code, reason: None)
    listener = DisconnectListener(1)
    async with trio.open_nursery() as nursery:
        listener.enroll(inbox, nursery)
        inbox._look()
        assert await inbox.receive() == {"type": "websocket.receive", "text": "x"}
        inbox._look()  # read since the last look: no listen task
        assert inbox._listening is False
        listener.withdraw(inbox)


async def test_a_message_that_beats_the_take_over_comes_first() -> None:
    """If the listen task's read completes although receive() is taking over, the message is
    handed over first: nothing is lost or reordered."""
    gate = trio.Event()

    async def receive() -> Message:
        with trio.CancelScope(shield=True):  # the read completes despite the take-over
            await gate.wait()
        return {"type": "websocket.receive", "text": "first"}

    inbox = Inbox(receive, lambda code, reason: None)
    listener = DisconnectListener(1)
    received: list[Message] = []

    async def take_over() -> None:  # cancels the (shielded) read and waits for the handover
        received.append(await inbox.receive())

    async with trio.open_nursery() as nursery:
        listener.enroll(inbox, nursery)
        inbox._look()
        inbox._look()  # not read since: a listen task starts and waits in receive
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take_over)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert received == [{"type": "websocket.receive", "text": "first"}]
    assert inbox.pending == []
    assert inbox._listening is False


async def test_messages_that_arrived_before_a_disconnect_are_received_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A handler busy elsewhere when its client sends and then leaves can still receive those
    messages (in a shielded cleanup), then gets WebsocketClosed with the client's code."""
    app = listening_app()
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()  # the listen task queues, then sees the disconnect
        finally:
            with trio.CancelScope(shield=True):
                seen.append(await websocket.receive())
                seen.append(await websocket.receive())
                try:
                    await websocket.receive()
                except Exception as error:
                    seen.append(getattr(error, "code", error))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await trio.sleep(1)
        await conn.send("one")
        await conn.send(b"two")
        await conn.close(4001)
    assert seen == ["one", b"two", 4001]


async def test_a_disconnect_that_beats_the_take_over_is_handed_over() -> None:
    """If the listen task reads the client's disconnect while receive() is taking over, that
    receive() gets the disconnect instead of waiting forever for a message (it is shielded in a
    cleanup, say)."""
    gate = trio.Event()
    disconnects: list[tuple[int, str]] = []
    disconnect = {"type": "websocket.disconnect", "code": 4002}

    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if reads > 1:  # nothing comes after a disconnect
            await trio.sleep_forever()
        with trio.CancelScope(shield=True):  # the read completes despite the take-over
            await gate.wait()
        return disconnect

    inbox = Inbox(receive, lambda code, reason: disconnects.append((code, reason)))
    listener = DisconnectListener(1)
    received: list[Message] = []

    async def take_over() -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 2):  # bounded
            received.append(await inbox.receive())

    async with trio.open_nursery() as nursery:
        listener.enroll(inbox, nursery)
        inbox._look()
        inbox._look()
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take_over)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert received == [disconnect]
    assert disconnects == [(4002, "")]


async def test_heard_counts_each_message_from_the_client_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """``Inbox.heard`` (the idle timeout's sign of life) counts each message read from ASGI
    receive once, whether the handler or a listen task read it; a receive() that was cancelled
    before a message came counts nothing."""
    peer = ASGIPeer()
    inbox = Inbox(peer.receive, lambda code, reason: None)
    listener = DisconnectListener(0.1)
    async with trio.open_nursery() as nursery:
        listener.enroll(inbox, nursery)
        nursery.start_soon(listener.run)
        with trio.move_on_after(1):
            await inbox.receive()  # nothing comes: cancelled
        assert inbox.heard == 0
        await peer.to_app.send({"type": "websocket.receive", "text": "1"})
        assert (await inbox.receive())["text"] == "1"
        assert inbox.heard == 1
        await trio.sleep(1)  # away from receive(): a listen task reads for the handler
        await peer.to_app.send({"type": "websocket.receive", "text": "2"})
        await trio.sleep(1)
        assert inbox.pending == [{"type": "websocket.receive", "text": "2"}]
        assert inbox.heard == 2
        assert (await inbox.receive())["text"] == "2"  # from the queue: not counted again
        assert inbox.heard == 2
        listener.withdraw(inbox)
        nursery.cancel_scope.cancel()


class _HttpClient:
    """An HTTP request's ASGI ``receive`` that counts its calls and answers from a channel."""

    def __init__(self) -> None:
        self.calls = 0
        self.to_app, self._from_client = trio.open_memory_channel[Message](1)

    async def receive(self) -> Message:
        self.calls += 1
        return await self._from_client.receive()

    def watch(self) -> HttpWatch:
        body = Body(self.receive, [], limit=None)
        return HttpWatch(body, self.receive, trio.CancelScope())


async def test_a_quick_http_request_costs_no_listen_task(autojump_clock: trio.abc.Clock) -> None:
    """A request answered before the listener's second look never gets a listen task: nothing
    reads its receive, and there is nothing to wait for when it ends."""
    listener = DisconnectListener(0.1)
    client = _HttpClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        await trio.sleep(0.05)
        watch = client.watch()
        listener.watch_http(watch)
        await trio.sleep(0.1)  # one look has passed: still no listen task
        assert listener.unwatch_http(watch) is None
        await trio.sleep(0.5)
        assert client.calls == 0
        nursery.cancel_scope.cancel()


async def test_a_long_http_request_hears_the_disconnect(autojump_clock: trio.abc.Clock) -> None:
    """A request still in flight at the listener's second look gets a listen task, which reads
    the rest of the body, then cancels the handler scope when the client leaves."""
    listener = DisconnectListener(0.1)
    client = _HttpClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        watch = client.watch()
        listener.watch_http(watch)
        await trio.sleep(0.25)
        assert client.calls == 1  # the body's last chunk
        await client.to_app.send({"type": "http.request", "body": b"", "more_body": False})
        await trio.testing.wait_all_tasks_blocked()
        assert not watch.scope.cancel_called
        await client.to_app.send({"type": "http.disconnect"})
        await trio.testing.wait_all_tasks_blocked()
        assert watch.scope.cancel_called
        stopped = listener.unwatch_http(watch)
        assert stopped is not None
        assert stopped.is_set()
        nursery.cancel_scope.cancel()


async def test_a_listen_task_does_not_outlive_its_request(autojump_clock: trio.abc.Clock) -> None:
    """When a request with a listen task ends, the task is cancelled, and the event
    unwatch_http returns is set once it has ended; the handler scope is left alone."""
    listener = DisconnectListener(0.1)
    client = _HttpClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        watch = client.watch()
        listener.watch_http(watch)
        await trio.sleep(0.25)
        assert client.calls == 1  # a listen task waits in receive
        stopped = listener.unwatch_http(watch)
        assert stopped is not None
        assert not stopped.is_set()
        with trio.fail_after(0.01):
            await stopped.wait()
        assert not watch.scope.cancel_called
        nursery.cancel_scope.cancel()


async def test_a_failing_receive_cancels_its_request_and_spares_the_listener(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A server's receive that raises in a listen task cancels that request's view, is logged,
    and leaves the listener looking after the other requests."""
    listener = DisconnectListener(0.1)

    async def broken() -> Message:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("the server's bug")

    failing = HttpWatch(Body(broken, [], limit=None), broken, trio.CancelScope())
    client = _HttpClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        listener.watch_http(failing)
        other = client.watch()
        listener.watch_http(other)
        await trio.sleep(0.25)
        assert failing.scope.cancel_called
        assert "the server's receive failed" in caplog.text
        await client.to_app.send({"type": "http.request", "body": b"", "more_body": False})
        await client.to_app.send({"type": "http.disconnect"})
        await trio.testing.wait_all_tasks_blocked()
        assert other.scope.cancel_called  # the listener still serves the others
        for watch in (failing, other):
            stopped = listener.unwatch_http(watch)
            assert stopped is not None
            await stopped.wait()
        nursery.cancel_scope.cancel()
