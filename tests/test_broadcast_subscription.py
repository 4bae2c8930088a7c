"""A subscription: messages as published, in order, one receiving task, a bounded buffer whose
overflow policy never makes a publisher wait (trioweb/broadcast/_subscription.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from _broadcast import running_hub, schedule_points
from _checkpoints import assert_raises_at_a_checkpoint
from _ws import closed_by_app

from trioweb import TrioWeb, websocket
from trioweb.broadcast import Broadcast, Overflow, SubscriberTooSlow, Subscription


@pytest.fixture
async def hub() -> AsyncIterator[Broadcast]:
    async for running in running_hub():
        yield running


async def test_messages_arrive_as_published_in_order(hub: Broadcast) -> None:
    """Text stays text and bytes stay bytes (empty ones too), in publish order."""
    sent: list[str | bytes] = ["a", b"b", "", b"", "\u00e9", b"\x00\xff", "z"]
    async with hub.subscribe("t") as subscription:
        for message in sent:
            await hub.publish("t", message)
        received = [await subscription.receive() for _ in sent]
    assert received == sent
    assert [type(message) for message in received] == [type(message) for message in sent]


async def test_async_for_yields_each_message(hub: Broadcast) -> None:
    """``async for`` receives the messages one by one."""
    received = []
    async with hub.subscribe("t") as subscription:
        for n in range(3):
            await hub.publish("t", str(n))
        async for message in subscription:
            received.append(message)
            if len(received) == 3:
                break
    assert received == ["0", "1", "2"]


async def test_receive_waits_for_the_next_message(hub: Broadcast) -> None:
    """A receiver waiting on an empty buffer wakes up with the next message."""
    async with hub.subscribe("t") as subscription, trio.open_nursery() as nursery:
        got: list[str | bytes] = []

        async def receiver() -> None:
            got.append(await subscription.receive())  # type: ignore[arg-type]

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await hub.publish("t", "late")
    assert got == ["late"]


async def test_only_messages_published_after_entering_arrive(hub: Broadcast) -> None:
    """Earlier messages are gone; other topics' never arrive."""
    await hub.publish("t", "before")
    async with hub.subscribe("t") as subscription:
        await hub.publish("other", "elsewhere")
        await hub.publish("t", "after")
        assert await subscription.receive() == "after"


async def test_each_subscription_gets_every_message(hub: Broadcast) -> None:
    """Two subscriptions of one topic, in one task, each get each message."""
    async with hub.subscribe("t") as one, hub.subscribe("t") as two:
        await hub.publish("t", "m")
        assert (await one.receive(), await two.receive()) == ("m", "m")


async def test_two_receivers_is_busy(hub: Broadcast) -> None:
    """A second task receiving while one waits gets trio.BusyResourceError, at a checkpoint."""
    async with hub.subscribe("t") as subscription, trio.open_nursery() as nursery:
        nursery.start_soon(subscription.receive)
        await trio.testing.wait_all_tasks_blocked()
        await assert_raises_at_a_checkpoint(
            subscription.receive, trio.BusyResourceError, "subscribe once per receiving task"
        )
        await hub.publish("t", "for the first")


async def test_works_from_a_child_task(hub: Broadcast) -> None:
    """Entered in one task, received from in a child task."""
    async with hub.subscribe("t") as subscription:
        got: list[str | bytes] = []
        async with trio.open_nursery() as nursery:

            async def child() -> None:
                async for message in subscription:
                    got.append(message)  # type: ignore[arg-type]
                    return

            nursery.start_soon(child)
            await trio.testing.wait_all_tasks_blocked()
            await hub.publish("t", "x")
    assert got == ["x"]


async def test_cancelled_scope_leaves_nothing_behind(hub: Broadcast) -> None:
    """A receiver cancelled while waiting leaves its topic: no subscriber, no topic in stats."""
    entered = trio.Event()
    with trio.CancelScope() as scope:
        async with hub.subscribe("t") as subscription:
            assert hub.stats().topics["t"].subscribers == 1
            entered.set()
            scope.cancel()
            await subscription.receive()
    assert scope.cancelled_caught
    assert hub.stats().topics == {}


async def test_receive_after_the_block_is_closed(hub: Broadcast) -> None:
    """Once the block ends, receive raises trio.ClosedResourceError (at a checkpoint), also
    with messages left unread."""
    async with hub.subscribe("t") as subscription:
        await hub.publish("t", "never read")
    await assert_raises_at_a_checkpoint(subscription.receive, trio.ClosedResourceError, "has ended")


async def test_closing_wakes_a_waiting_receiver(hub: Broadcast) -> None:
    """close() from another task ends a waiting receive with ClosedResourceError."""
    raised: list[BaseException] = []

    async def receiver(subscription: Subscription) -> None:
        try:
            await subscription.receive()
        except trio.ClosedResourceError as error:
            raised.append(error)

    async with hub.subscribe("t") as subscription, trio.open_nursery() as nursery:
        nursery.start_soon(receiver, subscription)
        await trio.testing.wait_all_tasks_blocked()
        subscription.close()
        subscription.close()  # again: nothing
        assert hub.stats().topics == {}
    assert len(raised) == 1


async def test_receive_before_entering_says_how(hub: Broadcast) -> None:
    """A subscription that was not entered cannot receive."""
    await assert_raises_at_a_checkpoint(
        hub.subscribe("t").receive, RuntimeError, "async with hub.subscribe"
    )


async def test_entering_twice_is_an_error(hub: Broadcast) -> None:
    """A subscription is entered once; the second time says to subscribe again."""
    subscription = hub.subscribe("t")
    async with subscription:
        pass
    await assert_raises_at_a_checkpoint(subscription.__aenter__, RuntimeError, "each `async with`")


async def test_exit_with_an_error_does_not_raise_cancelled_over_it(hub: Broadcast) -> None:
    """Leaving because of an error in a cancelled scope: the error propagates, not Cancelled."""

    async def block() -> None:
        with trio.CancelScope() as scope:
            async with hub.subscribe("t"):
                scope.cancel()
                raise KeyError("mine")

    with pytest.raises(KeyError):
        await block()
    assert hub.stats().topics == {}


async def test_repr_shows_the_buffer(hub: Broadcast) -> None:
    """The repr names the topic, the buffered count and the drops."""
    async with hub.subscribe("room", buffer=5) as subscription:
        await hub.publish("room", "x")
        assert repr(subscription) == "<Subscription 'room' 1/5 buffered, 0 dropped>"


# Overflow -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "kept", "error"),
    [
        (Overflow.RAISE, [], SubscriberTooSlow),
        (Overflow.DROP_OLDEST, ["7", "8", "9"], None),
        (Overflow.DROP_NEWEST, ["0", "1", "2"], None),
    ],
)
async def test_overflow_policy(
    hub: Broadcast, policy: Overflow, kept: list[str], error: type[Exception] | None
) -> None:
    """Ten messages into a buffer of three: what the policy keeps, and what it counts."""
    async with hub.subscribe("t", buffer=3, overflow=policy) as subscription:
        for n in range(10):
            await hub.publish("t", str(n))
        got = [await subscription.receive() for _ in kept]
        if error is not None:
            await assert_raises_at_a_checkpoint(subscription.receive, error)
        dropped = 4 if policy is Overflow.RAISE else 7
        assert subscription.dropped == dropped
    assert got == kept


async def test_policies_accept_their_string_forms(hub: Broadcast) -> None:
    """The policy "drop-oldest" is Overflow.DROP_OLDEST."""
    async with hub.subscribe("t", buffer=1, overflow="drop-oldest") as subscription:
        assert subscription.overflow is Overflow.DROP_OLDEST
        await hub.publish("t", "old")
        await hub.publish("t", "new")
        assert await subscription.receive() == "new"


async def test_too_slow_is_raised_to_a_waiting_receiver_too(hub: Broadcast) -> None:
    """A receive that waits when the cut happens raises SubscriberTooSlow."""
    async with hub.subscribe("t", buffer=1) as subscription:
        await hub.publish("t", "1")
        await hub.publish("t", "2")  # cut
        with pytest.raises(SubscriberTooSlow):
            await subscription.receive()
        with pytest.raises(SubscriberTooSlow):  # and again
            await subscription.receive()


async def test_too_slow_says_what_and_how_to_fix(hub: Broadcast) -> None:
    """SubscriberTooSlow carries the topic, buffer, close code 1013 and a reason."""
    async with hub.subscribe("room:1", buffer=2) as subscription:
        for n in range(3):
            await hub.publish("room:1", str(n))
        with pytest.raises(SubscriberTooSlow) as raised:
            await subscription.receive()
    error = raised.value
    assert (error.topic, error.buffer, error.code) == ("room:1", 2, 1013)
    assert error.reason == "too slow: 2 messages of 'room:1' unread"
    assert "buffer=" in str(error)
    assert "drop-oldest" in str(error)


async def test_the_first_drop_is_logged_once(
    hub: Broadcast, caplog: pytest.LogCaptureFixture
) -> None:
    """One WARNING on trioweb.broadcast per subscription, not one per message."""
    with caplog.at_level(logging.WARNING, logger="trioweb.broadcast"):
        async with hub.subscribe("t", buffer=1, overflow="drop-newest") as subscription:
            for n in range(5):
                await hub.publish("t", str(n))
    assert subscription.dropped == 4
    assert [record.getMessage() for record in caplog.records] == [
        "a subscriber of 't' is too slow: its buffer of 1 is full (drop-newest)"
    ]


@pytest.mark.parametrize("policy", list(Overflow))
async def test_a_stalled_subscriber_never_slows_the_publisher_or_the_others(
    hub: Broadcast, policy: Overflow, autojump_clock: trio.testing.MockClock
) -> None:
    """One subscriber stops reading while 100 others receive everything in order; each publish
    takes exactly one schedule point and no (virtual) time: it never waits; the drops are
    counted in stats()."""
    messages = [f"m{n}" for n in range(300)]
    received: list[list[str | bytes]] = [[] for _ in range(100)]
    async with hub.subscribe("room", buffer=10, overflow=policy) as stalled:
        async with trio.open_nursery() as nursery:
            for mine in received:
                subscription = await nursery.start(_drain, hub, mine, len(messages))
                assert isinstance(subscription, Subscription)
            for message in messages:
                start = trio.current_time()
                assert await schedule_points(hub.publish("room", message)) == 1
                assert trio.current_time() == start
            # Before the receivers take their last messages (publish delivers after its
            # checkpoint): they are all still subscribed.
            stats = hub.stats().topics["room"]
        assert all(mine == messages for mine in received)
        assert stats.published == 300
        assert stalled.dropped == stats.dropped
        if policy is Overflow.RAISE:
            assert (stats.subscribers, stats.dropped, stats.cut) == (100, 11, 1)
            assert stats.delivered == 100 * 300 + 10
            with pytest.raises(SubscriberTooSlow):
                await stalled.receive()
        else:
            assert (stats.subscribers, stats.dropped, stats.cut) == (101, 290, 0)
            assert stats.delivered == 100 * 300 + (300 if policy is Overflow.DROP_OLDEST else 10)
            first = 290 if policy is Overflow.DROP_OLDEST else 0
            assert [await stalled.receive() for _ in range(10)] == messages[first : first + 10]


async def _drain(
    hub: Broadcast,
    into: list[str | bytes],
    count: int,
    *,
    task_status: trio.TaskStatus[Subscription] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with hub.subscribe("room") as subscription:
        task_status.started(subscription)
        async for message in subscription:
            into.append(message)  # type: ignore[arg-type]
            if len(into) == count:
                return


async def test_too_slow_escaping_a_handler_closes_1013_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler that lets SubscriberTooSlow escape closes with 1013 and its reason."""
    app = TrioWeb(__name__)
    hub = Broadcast(app, buffer=2)
    subscribed = trio.Event()

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async with hub.subscribe("room") as subscription:
            subscribed.set()
            await websocket.receive()  # stalls until the client says "go"
            async for message in subscription:
                await websocket.send(message)

    with caplog.at_level(logging.DEBUG):
        async with app.test_client() as client, client.websocket("/ws") as ws:
            await subscribed.wait()
            for n in range(3):
                await hub.publish("room", str(n))
            await ws.send("go")
            code, reason, messages = await closed_by_app(ws)
    assert (code, reason, messages) == (1013, "too slow: 2 messages of 'room' unread", [])
    assert not [record for record in caplog.records if record.exc_info]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
