"""Helpers for the tests of trioweb.broadcast: a running hub, a fake backend, schedule points."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

import trio

from trioweb.broadcast import Broadcast, BroadcastUnavailable
from trioweb.broadcast._backend import Message, Sink, redact
from trioweb.broadcast._memory import MemoryBackend


async def running_hub(**options: Any) -> AsyncIterator[Broadcast]:
    """A memory hub of its own, running for the test (the ``hub`` fixtures use it)."""
    async with Broadcast(url="memory://", **options) as hub:
        yield hub


async def schedule_points(call: Awaitable[Any]) -> int:
    """How many times awaiting ``call`` yielded to the scheduler (as trio.testing counts)."""
    task = trio.lowlevel.current_task()
    before = task._schedule_points
    await call
    return int(task._schedule_points - before)


class FakeBackend(MemoryBackend):
    """The memory backend, with a server that can be unreachable, lost and found again."""

    def __init__(self, url: str = "fake://user:secret@host/0", *, reachable: bool = True) -> None:
        super().__init__(redact(url))
        self.reachable = reachable
        self.sink: Sink | None = None
        self.listened: list[str] = []
        self.unlistened: list[str] = []

    async def run(self, sink: Sink, *, task_status: trio.TaskStatus[None]) -> None:
        await trio.lowlevel.checkpoint()
        if not self.reachable:
            raise BroadcastUnavailable(self.url, "connection refused")
        self.sink = sink
        await super().run(sink, task_status=task_status)

    async def listen(self, topic: str) -> None:
        self.listened.append(topic)
        await super().listen(topic)

    def unlisten(self, topic: str) -> None:
        self.unlistened.append(topic)

    def lose_server(self, reason: str = "connection reset") -> None:
        self.connected = False
        self.interruptions += 1
        assert self.sink is not None
        self.sink.interrupted(reason)

    def find_server(self, lost: int) -> None:
        self.connected = True
        self.lost += lost
        assert self.sink is not None
        self.sink.resumed(lost)

    async def publish(self, topic: str, message: Message) -> None:
        if not self.connected:
            await trio.lowlevel.checkpoint()
            self.lost += 1
            return
        await super().publish(topic, message)
