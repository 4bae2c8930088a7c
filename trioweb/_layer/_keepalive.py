"""Keep-alive pings for the layer's websockets: one task per worker looks after every open
websocket, rather than a task per connection (a task, a timer and a cancel scope per connection
cost about 70 µs per handshake, measured, and a task's memory for as long as it is open).

Rules:

* A stream enrolls when its app accepts and withdraws when it ends or goes away.
* Every ``tick`` seconds (a quarter of the shorter of the interval and the timeout) the
  keep-alive looks at each enrolled stream. One that has received since the previous look is
  alive. One that has been quiet for ``interval`` seconds is pinged (a task of its connection,
  only then). One pinged ``timeout`` seconds ago, and quiet since, is ended as dead. So a quiet
  peer is pinged within ``interval + tick`` seconds of its last sign of life, and ended within
  ``timeout + tick`` seconds of the ping; without a timeout it is pinged every interval.
* A stream served without a worker's keep-alive (by Hypercorn's own trio worker, or driven
  directly in tests) runs one of its own, in its connection, for as long as it is enrolled.
"""

from __future__ import annotations

from typing import Protocol, final

import trio


class Kept(Protocol):
    """What the keep-alive needs of a stream."""

    #: How many reads the stream has had: a change is a sign of life.
    _received: int
    _ka_seen: int
    _ka_quiet_since: float
    _ka_pinged_at: float | None

    def _ka_ping(self) -> None:
        """Send a ping (in a task of the stream's connection)."""

    def _ka_dead(self) -> None:
        """End the stream: its peer is gone (in a task of the stream's connection)."""


@final
class KeepAlive:
    """Pings the enrolled streams that have been quiet for ``interval`` seconds and ends those
    that answer nothing within ``timeout`` (see the module's rules)."""

    def __init__(self, interval: float, timeout: float | None) -> None:
        self.interval = interval
        self.timeout = timeout
        self.tick = min(interval, interval if timeout is None else timeout) / 4
        self._streams: set[Kept] = set()

    def enroll(self, stream: Kept) -> None:
        """Start looking after ``stream`` (it counts as alive now)."""
        stream._ka_seen = stream._received
        stream._ka_quiet_since = trio.current_time()
        stream._ka_pinged_at = None
        self._streams.add(stream)

    def withdraw(self, stream: Kept) -> None:
        """Stop looking after ``stream``."""
        self._streams.discard(stream)

    async def run(self) -> None:
        """Look every ``tick`` seconds, until cancelled."""
        while True:
            await trio.sleep(self.tick)
            now = trio.current_time()
            for stream in list(self._streams):
                self._look(stream, now)

    def _look(self, stream: Kept, now: float) -> None:
        if stream._received != stream._ka_seen:
            stream._ka_seen = stream._received
            stream._ka_quiet_since = now
            stream._ka_pinged_at = None
        elif stream._ka_pinged_at is None:
            if now - stream._ka_quiet_since >= self.interval:
                stream._ka_pinged_at = now
                stream._ka_ping()
        elif self.timeout is None:
            if now - stream._ka_pinged_at >= self.interval:
                stream._ka_pinged_at = now
                stream._ka_ping()
        elif now - stream._ka_pinged_at >= self.timeout:
            self._streams.discard(stream)
            stream._ka_dead()
