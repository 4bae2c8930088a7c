"""The Redis/Valkey backend of the broadcast hub: many worker processes, many machines.

Theory of operation. One ``RedisBackend`` per worker process talks to the server through coredis
(which runs on Trio through anyio) in *sessions*: a session is one client (a small connection
pool for commands) plus one pub/sub connection, and it lives as long as both work.

- **Messages.** A topic is the channel ``{prefix}:t:{topic}``. ``publish`` is ``PUBLISH`` of the
  message behind a one-byte type, so str stays str and bytes stay bytes (names and payloads:
  :mod:`._redis_wire`). The worker's one pub/sub connection is subscribed to the topics that have
  local subscribers; a reader task hands every message to the hub (``sink.deliver``, which
  never blocks). Every worker thus sees one topic in the server's order.
- **Presence.** A track is the field ``ref`` of the hash ``{prefix}:p:{topic}`` holding
  ``{"key", "meta", "worker"}``; the worker keeps its heartbeat key ``{prefix}:w:{worker}``
  alive with a TTL of ``presence_ttl``, refreshed every ``presence_ttl / 3``. Entries whose
  worker's heartbeat is gone belong to a dead worker: whoever notices (``presence()``, or the
  periodic sweep of the topics this worker listens to) deletes them, and the one whose
  ``HDEL`` returns 1 publishes the ``Leave`` (``l`` + JSON), so it is published once. ``Join``
  (``j`` + JSON) is published by the ``HSET`` that added the field.
- **Ordering of changes.** ``listen``/``join`` (which wait) and ``unlisten``/``leave`` (which
  are sync: called from ``__aexit__`` of a cancelled scope) are queued and applied in order by
  the session's worker task, so a leave never overtakes its join, nor an unsubscribe its
  subscribe. The backend's own sets (``_topics``, ``_tracks``) are the truth: a new session
  subscribes and re-joins from them, then applies what is still queued.
- **Outages.** When a session fails (the server went away, a command timed out) the backend
  tells the hub once (``sink.interrupted``), counts every publish until it is back as lost,
  reconnects with backoff (0.1 s doubling to 5 s), re-subscribes, re-joins, then calls
  ``sink.resumed(lost)``. It logs one WARNING at the loss, one at the first lost message and a
  summary when it is back; it never raises into the app.
- **Startup and shutdown.** ``run`` reports started only once the first session is set up; if it
  cannot be within ``connect_timeout`` it raises :class:`BroadcastUnavailable` naming the URL
  (password masked). On cancellation it removes its own entries and heartbeat, bounded, with a
  fresh connection (a killed worker cannot: its entries expire as described above).
"""

from __future__ import annotations

import logging
import math
import secrets
import urllib.parse
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, cast, final

import attrs
import trio

from trioweb._json import loads

from ._backend import redact
from ._events import BroadcastUnavailable, Join, Leave
from ._redis_wire import (
    Names,
    by_key,
    decode,
    encode,
    encode_presence,
    entry,
    reason,
)

try:
    import coredis
except ImportError as exc:  # pragma: no cover - the test and lint extras install coredis
    raise ImportError(
        "the Redis/Valkey broadcast backend needs coredis: pip install 'trioweb[redis]'"
    ) from exc

if TYPE_CHECKING:
    from ._backend import Message, Sink

logger = logging.getLogger("trioweb.broadcast")

#: URL schemes this backend serves.
SCHEMES: Final = ("redis", "rediss", "unix")
#: Reconnection backoff: the first delay, doubled per failed attempt up to the last.
BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 5.0
#: Seconds a stopping backend spends removing its own entries and heartbeat.
FAREWELL_TIMEOUT: Final = 1.0


@attrs.frozen
class _Track:
    topic: str
    key: str
    meta: dict[str, Any]


@attrs.frozen
class _Op:
    """A queued change: ``listen``/``unlisten`` of ``topic``, ``join``/``leave`` of ``ref``."""

    kind: str
    topic: str
    ref: str = ""
    track: _Track | None = None
    done: trio.Event | None = None


@final
class RedisBackend:
    """The hub's backend for ``redis://``, ``rediss://`` and ``unix://`` URLs (see the module's
    theory of operation). ``ValueError`` for another scheme."""

    def __init__(
        self,
        url: str,
        *,
        presence_ttl: float = 30.0,
        prefix: str = "trioweb",
        connect_timeout: float = 3.0,
    ) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in SCHEMES:
            raise ValueError(
                f"RedisBackend serves {', '.join(s + '://' for s in SCHEMES)} URLs,"
                f" not {redact(url)!r}"
            )
        if not presence_ttl > 0:
            raise ValueError(
                f"presence_ttl must be a positive number of seconds, not {presence_ttl!r}"
            )
        self.url = redact(url)
        self.lost = 0
        self.interruptions = 0
        self.connected = False
        self.worker = secrets.token_hex(8)
        self._raw_url = url
        self._presence_ttl = presence_ttl
        self._names = Names(prefix)
        self._connect_timeout = connect_timeout
        # A command's answer may be late because this worker is busy (accepting thousands of
        # connections), not because the server is gone: wait as long as a heartbeat period
        # allows (a late heartbeat still lands within presence_ttl), at least connect_timeout.
        # With connect_timeout as the bound, a bench worker busy accepting 5,000 websockets
        # took its own slowness for an outage and closed every subscriber with 1012.
        self._command_timeout = max(connect_timeout, presence_ttl / 3)
        self._sink: Sink | None = None
        self._started = False
        self._topics: set[str] = set()
        self._tracks: dict[str, _Track] = {}
        self._ops: deque[_Op] = deque()
        self._wake = trio.lowlevel.ParkingLot()
        self._client: coredis.Redis[bytes] | None = None
        self._connection: coredis.BaseConnection | None = None
        self._acks: dict[bytes, trio.Event] = {}
        self._lost_at_loss = 0
        self._loss_time = 0.0
        self._loss_logged = False

    # -- the hub's calls --------------------------------------------------------------------

    async def run(
        self, sink: Sink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, report started, then keep a session up (reconnecting) until cancelled.

        Raises :class:`BroadcastUnavailable` if the first session cannot be set up within
        ``connect_timeout`` seconds; after started it raises nothing but ``Cancelled``. On
        cancellation it removes this worker's entries and heartbeat (shielded, bounded by
        ``FAREWELL_TIMEOUT``)."""
        self._sink = sink
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._serve)
                task_status.started()
        except Exception as exc:  # only the first session's failure gets here
            raise BroadcastUnavailable(self.url, reason(exc)) from None
        finally:
            self.connected = False
            self._release_waiters()
            if self._started:
                with trio.CancelScope(shield=True), trio.move_on_after(FAREWELL_TIMEOUT):
                    await self._farewell()

    async def publish(self, topic: str, message: Message) -> None:
        """``PUBLISH`` ``message`` (str or bytes) on ``topic``'s channel; a checkpoint. During an
        outage (or if the command fails) the message is counted in :attr:`lost` and logged;
        nothing is raised."""
        client = self._client
        if not self.connected or client is None:
            await trio.lowlevel.checkpoint()
            why = "the broadcast backend is reconnecting"
        else:
            try:
                await client.publish(self._names.channel(topic), encode(message))
                return
            except Exception as exc:
                why = reason(exc)
        self.lost += 1
        if not self._loss_logged:
            self._loss_logged = True
            logger.warning(
                "a message to %r was lost (%s); messages published until %s is back are lost"
                " too (counted in hub.stats().lost)",
                topic,
                why,
                self.url,
            )

    async def listen(self, topic: str) -> None:
        """Subscribe to ``topic``'s channel; returns once the server confirmed it (so messages
        published afterwards arrive), or at once during an outage (the reconnection
        subscribes it)."""
        self._topics.add(topic)
        await self._apply_soon(_Op("listen", topic, done=trio.Event()))

    def unlisten(self, topic: str) -> None:
        """No local subscriber is left on ``topic``: unsubscribe (queued; sync)."""
        self._topics.discard(topic)
        if self._client is not None:
            self._queue(_Op("unlisten", topic))

    async def join(self, topic: str, ref: str, key: str, meta: dict[str, Any]) -> None:
        """Add the presence entry ``ref`` and publish its ``Join``; returns once done, or at once
        during an outage (the reconnection adds it)."""
        track = _Track(topic, key, meta)
        self._tracks[ref] = track
        await self._apply_soon(_Op("join", topic, ref, track, trio.Event()))

    def leave(self, topic: str, ref: str) -> None:
        """Remove the presence entry ``ref`` and publish its ``Leave`` (queued; sync). Kept
        across an outage: the entry may have outlived it on the server."""
        track = self._tracks.pop(ref, None)
        if track is not None:
            self._queue(_Op("leave", topic, ref, track))

    async def presence(self, topic: str) -> dict[str, list[dict[str, Any]]]:
        """Who is present on ``topic`` across all workers: key -> metas (one per track). Entries
        of dead workers are removed on the way (their ``Leave`` published). During an outage:
        this worker's own entries only."""
        client = self._client
        if self.connected and client is not None:
            try:
                entries = await self._live_entries(client, topic)
            except Exception as exc:
                logger.debug("presence of %r from this worker only: %s", topic, reason(exc))
            else:
                return by_key(entries.values())
        else:
            await trio.lowlevel.checkpoint()
        mine = {ref: (t.key, t.meta) for ref, t in self._tracks.items() if t.topic == topic}
        return by_key(mine[ref] for ref in sorted(mine))

    # -- sessions ---------------------------------------------------------------------------

    async def _serve(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Keep a session up: the first one reports started (or raises), later ones follow
        failures with backoff."""
        status = task_status
        delay = BACKOFF_FIRST
        while True:
            try:
                await self._session(status)
            except Exception as exc:
                if not self._started:
                    raise
                if self._lose(reason(exc)):
                    delay = BACKOFF_FIRST
            status = trio.TASK_STATUS_IGNORED
            await trio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _session(self, task_status: trio.TaskStatus[None]) -> None:
        """One session: connect, subscribe, re-join, then read, beat and apply the queue until
        something fails (raised). Setting up is bounded by ``connect_timeout``."""
        with trio.CancelScope(deadline=trio.current_time() + self._connect_timeout) as setup:
            await self._probe()
            async with (
                self._new_client() as client,
                client.connection_pool.acquire() as connection,
            ):
                # Pub/sub on a connection of its own rather than coredis's PubSub: that one,
                # exiting cancelled, can raise anyio.ClosedResourceError out of the cancellation
                # (its clean-up writes to a connection its pool already closed; coredis 6.9).
                # This connection is never given back to the pool: it ends with the session.
                self._acks.clear()
                # The sets are the truth for subscriptions and tracks: only leaves stay queued.
                self._ops = deque(op for op in self._ops if op.kind == "leave")
                self._client, self._connection = client, connection
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._read, connection)
                        if self._topics:
                            await self._subscription(b"SUBSCRIBE", self._topics)
                        await self._beat(client)
                        for ref, track in list(self._tracks.items()):
                            await self._put(client, ref, track)
                        setup.deadline = math.inf
                        nursery.start_soon(self._keep_alive, client)
                        nursery.start_soon(self._work, client)
                        self._up()
                        self._started = True
                        task_status.started()
                finally:
                    self._client = self._connection = None
                    connection.invalidate()
        raise TimeoutError(f"no answer within {self._connect_timeout} s")

    async def _subscription(self, command: bytes, topics: Iterable[str]) -> None:
        """Send ``command`` (``SUBSCRIBE`` or ``UNSUBSCRIBE``) for ``topics``' channels and wait
        until the server confirmed each (bounded: ``TooSlowError``)."""
        assert self._connection is not None
        waiting = {self._names.channel(topic): trio.Event() for topic in topics}
        self._acks.update(waiting)
        self._connection.send_command(command, *waiting)
        with trio.fail_after(self._command_timeout):
            for event in waiting.values():
                await event.wait()

    async def _probe(self) -> None:
        """Connect once and close, without coredis; ``OSError`` if the server is not there.

        coredis 6.9 leaves the anyio memory streams of a connection whose connect failed
        unclosed (a ResourceWarning when collected, an error under ``-W error``): a session
        starts only once a plain connection succeeded, so an outage costs no such connection.
        """
        parts = urllib.parse.urlsplit(self._raw_url)
        if parts.scheme == "unix":
            stream: trio.abc.Stream = await trio.open_unix_socket(parts.path)
        else:
            stream = await trio.open_tcp_stream(parts.hostname or "localhost", parts.port or 6379)
        await stream.aclose()

    def _new_client(self) -> coredis.Redis[bytes]:
        return coredis.Redis.from_url(
            self._raw_url,
            connect_timeout=self._connect_timeout,
            stream_timeout=self._command_timeout,
            retry_policy=coredis.retry.NoRetryPolicy(),
        )

    def _up(self) -> None:
        """The session is set up: report it, and end the outage if there was one."""
        self.connected = True
        self._loss_logged = False
        if not self._started:
            return
        lost = self.lost - self._lost_at_loss
        logger.warning(
            "the broadcast backend at %s is back after %.1f s; %d messages published meanwhile"
            " were lost",
            self.url,
            trio.current_time() - self._loss_time,
            lost,
        )
        assert self._sink is not None
        self._sink.resumed(lost)

    def _lose(self, why: str) -> bool:
        """A session failed: if it was up, this is the start of an outage (True)."""
        self._release_waiters()
        if not self.connected:
            logger.debug("reconnecting to %s failed: %s", self.url, why)
            return False
        self.connected = False
        self.interruptions += 1
        self._lost_at_loss = self.lost
        self._loss_time = trio.current_time()
        logger.warning(
            "lost the broadcast backend at %s (%s); reconnecting, messages published until it"
            " is back are lost",
            self.url,
            why,
        )
        assert self._sink is not None
        self._sink.interrupted(why)
        return True

    async def _read(self, connection: coredis.BaseConnection) -> None:
        """Hand each message to the hub; set the events of confirmed (un)subscriptions."""
        assert self._sink is not None
        async for push in connection.push_messages:
            kind, channel = push[0], cast(bytes, push[1])
            if kind != b"message":  # b"subscribe" or b"unsubscribe", with the channel
                self._acks.pop(channel).set()
                continue
            topic = self._names.topic(channel)
            item = decode(topic, cast(bytes, push[2]))
            if item is None:
                logger.warning("ignored a message on %r that trioweb did not publish", topic)
            else:
                self._sink.deliver(topic, item)

    async def _keep_alive(self, client: coredis.Redis[bytes]) -> None:
        """Refresh the heartbeat every ``presence_ttl / 3``, sweeping listened topics."""
        while True:
            await trio.sleep(self._presence_ttl / 3)
            await self._beat(client)
            for topic in list(self._topics):
                await self._live_entries(client, topic)

    async def _beat(self, client: coredis.Redis[bytes]) -> None:
        ttl = max(1, round(self._presence_ttl * 1000))
        await client.set(self._names.heartbeat(self.worker), b"1", px=ttl)

    # -- the queue of changes -----------------------------------------------------------------

    def _release_waiters(self) -> None:
        """No session to apply the queue: let ``listen``/``join`` calls waiting on it return
        (a new session subscribes and re-joins from the sets)."""
        for op in self._ops:
            if op.done is not None:
                op.done.set()

    def _queue(self, op: _Op) -> None:
        self._ops.append(op)
        self._wake.unpark_all()

    async def _apply_soon(self, op: _Op) -> None:
        """Queue ``op`` and wait until it is applied (or the session failed); a checkpoint."""
        if self._client is None:
            await trio.lowlevel.checkpoint()
            return
        assert op.done is not None
        self._queue(op)
        await op.done.wait()

    async def _work(self, client: coredis.Redis[bytes]) -> None:
        """Apply queued changes in order; a change that fails stays first for the next session."""
        while True:
            while self._ops:
                op = self._ops[0]
                if op.kind == "listen":
                    await self._subscription(b"SUBSCRIBE", [op.topic])
                elif op.kind == "unlisten":
                    await self._subscription(b"UNSUBSCRIBE", [op.topic])
                elif op.kind == "join":
                    assert op.track is not None
                    await self._put(client, op.ref, op.track)
                else:
                    assert op.track is not None
                    await self._remove(client, op.ref, op.track)
                self._ops.popleft()
                if op.done is not None:
                    op.done.set()
            await self._wake.park()

    async def _put(self, client: coredis.Redis[bytes], ref: str, track: _Track) -> None:
        value = entry(track.key, track.meta, self.worker)
        if await client.hset(self._names.hash(track.topic), {ref: value}):
            announce = encode_presence(Join, track.key, track.meta)
            await client.publish(self._names.channel(track.topic), announce)

    async def _remove(self, client: coredis.Redis[bytes], ref: str, track: _Track) -> None:
        if await client.hdel(self._names.hash(track.topic), [ref]):
            announce = encode_presence(Leave, track.key, track.meta)
            await client.publish(self._names.channel(track.topic), announce)

    async def _live_entries(
        self, client: coredis.Redis[bytes], topic: str
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """``topic``'s entries of live workers, ref -> (key, meta), sorted by ref; removes the
        entries of workers whose heartbeat is gone."""
        entries = {
            ref.decode(): loads(value)
            for ref, value in (await client.hgetall(self._names.hash(topic))).items()
        }
        alive = {self.worker: True}
        for found in entries.values():
            worker = found["worker"]
            if worker not in alive:
                alive[worker] = bool(await client.exists([self._names.heartbeat(worker)]))
        live = {}
        for ref in sorted(entries):
            found = entries[ref]
            if alive[found["worker"]]:
                live[ref] = (found["key"], found["meta"])
            else:
                await self._remove(client, ref, _Track(topic, found["key"], found["meta"]))
        return live

    async def _farewell(self) -> None:
        """Remove this worker's entries (queued leaves, open tracks) and its heartbeat."""
        try:
            await self._probe()
            async with self._new_client() as client:
                for op in self._ops:
                    if op.kind == "leave":
                        assert op.track is not None
                        await self._remove(client, op.ref, op.track)
                for ref, track in self._tracks.items():
                    await self._remove(client, ref, track)
                await client.delete([self._names.heartbeat(self.worker)])
        except Exception as exc:
            logger.warning(
                "could not remove this worker's presence from %s (%s); it expires within"
                " presence_ttl",
                self.url,
                reason(exc),
            )
