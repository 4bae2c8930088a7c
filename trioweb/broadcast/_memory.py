"""The in-memory backend (``memory://``): one process, no server.

Publishing delivers synchronously into the local subscriptions' buffers (no task hop), so the
order of messages is the order of the ``publish`` calls, the same for every subscriber. Presence
is a dict in this process. It is never interrupted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import trio

from ._events import Join, Leave

if TYPE_CHECKING:
    from trio import TaskStatus

    from ._backend import Message, Sink


@final
class MemoryBackend:
    """Topics and presence of one process; see the module's docstring."""

    def __init__(
        self, url: str = "memory://", *, presence_ttl: float = 30.0, prefix: str = "trioweb"
    ) -> None:
        # presence_ttl and prefix mean nothing in one process: entries go when their block ends.
        self.url = url
        self.lost = 0
        self.interruptions = 0
        self.connected = False
        self._sink: Sink | None = None
        # topic -> ref -> (key, meta), in join order
        self._presence: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}

    async def run(self, sink: Sink, *, task_status: TaskStatus[None]) -> None:
        """Report started, then wait until cancelled."""
        self._sink = sink
        self.connected = True
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.connected = False
            self._sink = None

    async def publish(self, topic: str, message: Message) -> None:
        """A checkpoint, then deliver ``message`` to the local subscriptions of ``topic``."""
        await trio.lowlevel.checkpoint()
        if self._sink is not None:
            self._sink.deliver(topic, message)

    async def listen(self, topic: str) -> None:
        """Nothing to do: every topic is delivered. A checkpoint."""
        await trio.lowlevel.checkpoint()

    def unlisten(self, topic: str) -> None:
        """Nothing to do."""

    async def join(self, topic: str, ref: str, key: str, meta: dict[str, Any]) -> None:
        """A checkpoint, then add the entry and deliver a :class:`Join`."""
        await trio.lowlevel.checkpoint()
        self._presence.setdefault(topic, {})[ref] = (key, meta)
        if self._sink is not None:
            self._sink.deliver(topic, Join(topic, key, meta))

    def leave(self, topic: str, ref: str) -> None:
        """Remove the entry (if present) and deliver a :class:`Leave`."""
        entries = self._presence.get(topic)
        if entries is None or ref not in entries:
            return
        key, meta = entries.pop(ref)
        if not entries:
            del self._presence[topic]
        if self._sink is not None:
            self._sink.deliver(topic, Leave(topic, key, meta))

    async def presence(self, topic: str) -> dict[str, list[dict[str, Any]]]:
        """Who is present on ``topic``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        present: dict[str, list[dict[str, Any]]] = {}
        for key, meta in self._presence.get(topic, {}).values():
            present.setdefault(key, []).append(dict(meta))
        return present
