"""The local side of the hub: topics, their subscriptions, and fan-out into their buffers.

:class:`_Local` is the :class:`~._backend.Sink` a backend delivers into. A topic exists while it
has local subscriptions or presence entries, so per-user topics do not grow memory forever; its
counters go with it.

Fan-out walks a tuple of the topic's subscriptions. A subscription that joins or leaves only
drops the tuple (O(1), so 10,000 leaving at once cost no more than 10,000 dict deletions, not
a rebuild each); the next fan-out rebuilds it. A subscription that leaves during a fan-out (the
``raise`` policy cuts it) does not disturb the walk: it ignores the rest of that fan-out's
deliveries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, final

import trio

from ._events import Interrupted, Join, Leave, Resumed, TopicStats

if TYPE_CHECKING:
    from ._backend import Backend, Message
    from ._subscription import Subscription


@final
class _Topic:
    """One topic's local subscriptions, presence entries and counters."""

    __slots__ = (
        "_event_targets",
        "_targets",
        "cut",
        "delivered",
        "dropped",
        "event_subscriptions",
        "listen_started",
        "listening",
        "name",
        "published",
        "ready",
        "subscriptions",
        "tracks",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscriptions: dict[Subscription, None] = {}
        self.event_subscriptions: dict[Subscription, None] = {}
        #: The subscriptions (those with ``events=True``) as a tuple for fan-out, or ``None``
        #: until the next fan-out needs it.
        self._targets: tuple[Subscription, ...] | None = ()
        self._event_targets: tuple[Subscription, ...] | None = ()
        self.tracks = 0
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.cut = 0
        #: The backend delivers this topic (``listen`` returned and no ``unlisten`` since).
        self.listening = False
        #: ``listen`` was called since the last ``unlisten``.
        self.listen_started = False
        #: Set when a ``listen`` under way ends (others wait for it instead of calling it again).
        self.ready: trio.Event | None = None

    def add(self, sub: Subscription) -> None:
        self.subscriptions[sub] = None
        self._targets = None
        if sub.events:
            self.event_subscriptions[sub] = None
            self._event_targets = None

    def discard(self, sub: Subscription) -> None:
        del self.subscriptions[sub]
        self._targets = None
        if sub.events:
            del self.event_subscriptions[sub]
            self._event_targets = None

    @property
    def targets(self) -> tuple[Subscription, ...]:
        targets = self._targets
        if targets is None:
            targets = self._targets = tuple(self.subscriptions)
        return targets

    @property
    def event_targets(self) -> tuple[Subscription, ...]:
        targets = self._event_targets
        if targets is None:
            targets = self._event_targets = tuple(self.event_subscriptions)
        return targets

    def stats(self) -> TopicStats:
        return TopicStats(
            subscribers=len(self.subscriptions),
            published=self.published,
            delivered=self.delivered,
            dropped=self.dropped,
            cut=self.cut,
        )


@final
class _Local:
    """Topics by name, and the backend while the hub runs (``None`` when stopped)."""

    __slots__ = ("backend", "revive", "topics")

    def __init__(self, revive: Callable[[str], Awaitable[Backend]]) -> None:
        self.topics: dict[str, _Topic] = {}
        self.backend: Backend | None = None
        #: The hub's way to get a backend when it is not running: restart, or RuntimeError.
        self.revive = revive

    def topic(self, name: str) -> _Topic:
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = _Topic(name)
        return topic

    def _forget_if_unused(self, topic: _Topic) -> None:
        if not topic.subscriptions and not topic.tracks and self.topics.get(topic.name) is topic:
            del self.topics[topic.name]

    # Subscriptions --------------------------------------------------------------------------------

    async def open(self, sub: Subscription) -> None:
        """Register ``sub`` with its topic and make sure the backend delivers the topic."""
        backend = self.backend
        if backend is None:
            backend = await self.revive("subscribe")
        topic = self.topic(sub.topic)
        sub._topic = topic
        topic.add(sub)
        await self._listen(backend, topic)

    async def _listen(self, backend: Backend, topic: _Topic) -> None:
        while not topic.listening:
            if topic.ready is not None:
                await topic.ready.wait()
                continue
            ready = topic.ready = trio.Event()
            topic.listen_started = True
            try:
                await backend.listen(topic.name)
                topic.listening = True
            finally:
                topic.ready = None
                ready.set()
            return
        await trio.lowlevel.checkpoint()

    def remove(self, sub: Subscription) -> None:
        """Deregister ``sub`` (idempotent); the last subscription of a topic unlistens it."""
        topic = sub._topic
        if topic is None:
            return
        sub._topic = None
        topic.discard(sub)
        if not topic.subscriptions:
            if topic.listen_started and self.backend is not None:
                self.backend.unlisten(topic.name)
            topic.listen_started = topic.listening = False
            self._forget_if_unused(topic)

    # Presence -------------------------------------------------------------------------------------

    def add_track(self, name: str) -> None:
        self.topic(name).tracks += 1

    def remove_track(self, name: str) -> None:
        topic = self.topics[name]
        topic.tracks -= 1
        self._forget_if_unused(topic)

    # The Sink -------------------------------------------------------------------------------------

    def deliver(self, topic: str, item: Message | Join | Leave) -> None:
        """Fan ``item`` out to the buffers of ``topic``'s subscriptions. Never blocks."""
        state = self.topics.get(topic)
        if state is None:
            return
        targets = state.targets if isinstance(item, str | bytes) else state.event_targets
        state.delivered += len(targets)
        for sub in targets:
            sub.deliver(item)

    def interrupted(self, reason: str) -> None:
        """Tell every subscription: an :class:`Interrupted` event, or fail it."""
        event = Interrupted(reason)
        for topic in list(self.topics.values()):
            topic.delivered += len(topic.event_targets)
            for sub in topic.targets:
                if sub.events:
                    sub.deliver(event)
                else:
                    sub.interrupt(reason)

    def resumed(self, lost: int) -> None:
        """Tell the subscriptions with events: a :class:`Resumed` event."""
        event = Resumed(lost)
        for topic in list(self.topics.values()):
            topic.delivered += len(topic.event_targets)
            for sub in topic.event_targets:
                sub.deliver(event)

    def stop(self) -> None:
        """The hub stopped: fail every subscription (the backend is gone)."""
        self.backend = None
        for topic in list(self.topics.values()):
            for sub in topic.targets:
                sub.interrupt("the broadcast hub stopped")
            topic.listen_started = topic.listening = False


def not_running(what: str) -> RuntimeError:
    return RuntimeError(
        f"{what}() needs the broadcast hub to be running: call it while the app is serving (in"
        " tests inside `async with app.test_client()`), or start a hub of your own with"
        " `async with Broadcast(url=...) as hub:`"
    )
