"""The hub's local side: topics come and go with their subscriptions and tracks, the backend is
asked to listen once per topic, and outages reach every subscription
(trioweb/broadcast/_local.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from _broadcast import FakeBackend

from trioweb.broadcast import (
    Broadcast,
    BroadcastInterrupted,
    Interrupted,
    Resumed,
    SubscriberTooSlow,
)


class GatedBackend(FakeBackend):
    """A backend whose listen() waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def listen(self, topic: str) -> None:
        self.listened.append(topic)
        await self.gate.wait()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Broadcast, FakeBackend]]:
    hub = Broadcast(url="memory://")
    hub._backend = backend = FakeBackend()
    async with hub:
        yield hub, backend


async def test_listen_once_per_topic_and_unlisten_after_the_last(
    fake: tuple[Broadcast, FakeBackend],
) -> None:
    """The first subscription of a topic listens, the last one's exit unlistens; a later
    subscription listens again."""
    hub, backend = fake
    async with hub.subscribe("t"), hub.subscribe("t"), hub.subscribe("u"):
        assert backend.listened == ["t", "u"]
    assert sorted(backend.unlistened) == ["t", "u"]
    async with hub.subscribe("t"):
        assert backend.listened == ["t", "u", "t"]


async def test_tracks_keep_a_topic_but_do_not_listen(fake: tuple[Broadcast, FakeBackend]) -> None:
    """A topic with a track and no subscription is in stats, and not listened to."""
    hub, backend = fake
    async with hub.track("t", "ann"):
        async with hub.subscribe("t"):
            pass
        assert backend.unlistened == ["t"]
        assert hub.stats().topics["t"].subscribers == 0
    assert hub.stats().topics == {}
    assert backend.listened == ["t"]


async def test_concurrent_first_subscriptions_wait_for_one_listen() -> None:
    """Two tasks subscribe to a new topic at once: one listens, the other waits for it, and
    neither enters before the backend listens."""
    hub = Broadcast()
    hub._backend = backend = GatedBackend()
    entered: list[int] = []
    async with hub, trio.open_nursery() as nursery:
        for n in range(2):

            async def subscriber(n: int = n) -> None:
                async with hub.subscribe("t"):
                    entered.append(n)

            nursery.start_soon(subscriber)
        await trio.testing.wait_all_tasks_blocked()
        assert (entered, backend.listened) == ([], ["t"])
        backend.gate.set()
    assert sorted(entered) == [0, 1]
    assert backend.listened == ["t"]


async def test_a_cancelled_listen_is_taken_over() -> None:
    """The subscription that listens is cancelled: another waiting one listens instead."""
    hub = Broadcast()
    hub._backend = backend = GatedBackend()
    entered: list[str] = []
    async with hub, trio.open_nursery() as nursery:
        first = trio.CancelScope()

        async def subscriber(name: str, scope: trio.CancelScope) -> None:
            with scope:
                async with hub.subscribe("t"):
                    entered.append(name)

        nursery.start_soon(subscriber, "first", first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(subscriber, "second", trio.CancelScope())
        await trio.testing.wait_all_tasks_blocked()
        first.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert backend.listened == ["t", "t"]
        backend.gate.set()
    assert entered == ["second"]
    assert backend.unlistened == ["t"]


async def test_an_outage_ends_plain_subscriptions_after_their_messages(
    fake: tuple[Broadcast, FakeBackend],
) -> None:
    """Without events=True: the buffered messages, then BroadcastInterrupted (1012); the
    subscription has left its topic."""
    hub, backend = fake
    async with hub.subscribe("t") as subscription:
        await hub.publish("t", "before")
        backend.lose_server("connection reset")
        await hub.publish("t", "during")
        assert hub.stats().lost == 1
        assert await subscription.receive() == "before"
        with pytest.raises(BroadcastInterrupted, match="connection reset") as raised:
            await subscription.receive()
        assert raised.value.code == 1012
        assert "t" not in hub.stats().topics
    stats = hub.stats()
    assert (stats.connected, stats.interruptions, stats.lost) == (False, 1, 1)


async def test_an_outage_is_events_with_events(fake: tuple[Broadcast, FakeBackend]) -> None:
    """With events=True: Interrupted and Resumed among the messages; the subscription goes on."""
    hub, backend = fake
    async with hub.subscribe("t", events=True) as subscription:
        await hub.publish("t", "before")
        backend.lose_server("connection reset")
        await hub.publish("t", "lost")
        backend.find_server(lost=1)
        await hub.publish("t", "after")
        assert [await subscription.receive() for _ in range(4)] == [
            "before",
            Interrupted("connection reset"),
            Resumed(1),
            "after",
        ]
        assert hub.stats().topics["t"].delivered == 4


async def test_an_outage_event_can_overflow(fake: tuple[Broadcast, FakeBackend]) -> None:
    """Events count toward the buffer like messages."""
    hub, backend = fake
    async with hub.subscribe("t", events=True, buffer=1) as subscription:
        await hub.publish("t", "full")
        backend.lose_server()
        with pytest.raises(SubscriberTooSlow):
            await subscription.receive()


async def test_a_cut_subscription_ignores_the_rest_of_the_fan_out(
    fake: tuple[Broadcast, FakeBackend],
) -> None:
    """A subscription cut in the middle of an outage's fan-out takes nothing more."""
    hub, backend = fake
    async with hub.subscribe("t", events=True, buffer=1) as subscription:
        await hub.publish("t", "full")
        backend.lose_server()  # cut
        hub._local.deliver("t", "late")  # as a fan-out still walking an old tuple would
        subscription.deliver("late")
        assert subscription.dropped == 2
