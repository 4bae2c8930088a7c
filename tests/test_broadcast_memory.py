"""The in-memory backend: synchronous delivery, presence in a dict, never interrupted
(trioweb/broadcast/_memory.py)."""

from __future__ import annotations

from typing import Any

import trio

from trioweb.broadcast import Join, Leave
from trioweb.broadcast._memory import MemoryBackend


class Recorder:
    """A Sink that records what it is given."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def deliver(self, topic: str, item: Any) -> None:
        self.items.append((topic, item))

    def interrupted(self, reason: str) -> None:  # pragma: no cover  (memory never is)
        raise AssertionError(reason)

    def resumed(self, lost: int) -> None:  # pragma: no cover
        raise AssertionError(lost)


async def test_delivers_synchronously_while_running() -> None:
    """publish, join and leave call the sink before they return; after run ends, nothing."""
    backend = MemoryBackend()
    sink = Recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, sink)
        assert backend.connected
        await backend.publish("t", "x")
        await backend.join("t", "r1", "ann", {"a": 1})
        backend.leave("t", "r1")
        assert sink.items == [
            ("t", "x"),
            ("t", Join("t", "ann", {"a": 1})),
            ("t", Leave("t", "ann", {"a": 1})),
        ]
        nursery.cancel_scope.cancel()
    assert not backend.connected
    await backend.publish("t", "nobody hears")
    await backend.join("t", "r2", "bob", {})
    backend.leave("t", "r2")
    assert len(sink.items) == 3
    assert (backend.url, backend.lost, backend.interruptions) == ("memory://", 0, 0)


async def test_presence_by_key_in_join_order() -> None:
    """Entries of one key are listed in the order they joined; unknown leaves do nothing."""
    backend = MemoryBackend()
    await backend.join("t", "r1", "ann", {"tab": 1})
    await backend.join("t", "r2", "bob", {})
    await backend.join("t", "r3", "ann", {"tab": 2})
    backend.leave("t", "nobody")
    backend.leave("elsewhere", "r1")
    assert await backend.presence("t") == {"ann": [{"tab": 1}, {"tab": 2}], "bob": [{}]}
    for ref in ("r1", "r2", "r3"):
        backend.leave("t", ref)
    assert await backend.presence("t") == {}
    assert backend._presence == {}
