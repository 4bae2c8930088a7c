"""The hub: its lifecycle with an app or on its own, publishing, presence, forward() and stats
(trioweb/broadcast/_hub.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from _broadcast import FakeBackend, running_hub, schedule_points
from _checkpoints import assert_raises_at_a_checkpoint
from _docs import load_example
from _ws import closed_by_app, refusal

import trioweb._json
from trioweb import LifespanError, TrioWeb, WebsocketClosed, websocket
from trioweb.broadcast import (
    Broadcast,
    BroadcastInterrupted,
    BroadcastUnavailable,
    Join,
    Leave,
    SubscriberTooSlow,
    Subscription,
)


@pytest.fixture
async def hub() -> AsyncIterator[Broadcast]:
    async for running in running_hub():
        yield running


class FakeSocket:
    """What forward() needs of a websocket: ``send``. Records what it sent, or fails."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.sent: list[str | bytes] = []
        self.error = error

    async def send(self, data: str | bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        self.sent.append(data)


# Lifecycle ----------------------------------------------------------------------------------------


async def test_starts_and_stops_with_the_app() -> None:
    """Broadcast(app) runs while the app serves; afterwards using it says how to fix that."""
    app = TrioWeb(__name__)
    hub = Broadcast(app)
    async with app.test_client():
        assert hub.stats().connected
        async with hub.subscribe("t") as subscription:
            await hub.publish("t", "x")
            assert await subscription.receive() == "x"
    assert not hub.stats().connected
    await assert_raises_at_a_checkpoint(
        lambda: hub.publish("t", "x"), RuntimeError, "async with app.test_client"
    )


async def test_init_app_later_reads_broadcast_url_at_startup() -> None:
    """Broadcast() then init_app(app): BROADCAST_URL defaults to memory:// and is read when the
    app starts, so a value set after init_app counts."""
    app = TrioWeb(__name__)
    hub = Broadcast()
    hub.init_app(app)
    assert app.config["BROADCAST_URL"] == "memory://"
    with pytest.raises(RuntimeError, match="reads BROADCAST_URL when the app starts"):
        hub.stats()
    assert repr(hub) == "<Broadcast BROADCAST_URL stopped>"
    app.config["BROADCAST_URL"] = "memory://elsewhere"
    async with app.test_client():
        assert hub.stats().backend == "memory://elsewhere"
        assert repr(hub) == "<Broadcast memory://elsewhere running>"


async def test_init_app_keeps_a_broadcast_url_that_is_set() -> None:
    """A BROADCAST_URL set before init_app is kept; a bad one fails startup naming schemes."""
    app = TrioWeb(__name__)
    app.config["BROADCAST_URL"] = "kafka://somewhere"
    Broadcast(app)
    with pytest.raises(LifespanError, match="must start with one of memory://, redis://"):
        async with app.test_client():
            pass


async def test_one_app_per_hub() -> None:
    """init_app on a hub that has an app says to make one per app."""
    hub = Broadcast(TrioWeb(__name__))
    with pytest.raises(RuntimeError, match="make one per app"):
        hub.init_app(TrioWeb(__name__))


async def test_startup_fails_when_the_backend_is_unreachable() -> None:
    """The backend's BroadcastUnavailable fails the app's startup, naming the URL (no
    password)."""
    app = TrioWeb(__name__)
    hub = Broadcast(app, url="memory://")
    hub._backend = FakeBackend(reachable=False)
    with pytest.raises(LifespanError) as failed:
        async with app.test_client():
            pass
    assert "BroadcastUnavailable: cannot reach the broadcast backend at" in failed.value.message
    assert "fake://user:***@host/0" in failed.value.message
    assert "secret" not in failed.value.message


async def test_a_hub_of_its_own_raises_unavailable_itself() -> None:
    """``async with Broadcast(...)`` raises the backend's error as it is, not in a group, and
    can be started again."""
    hub = Broadcast(url="memory://")
    hub._backend = backend = FakeBackend(reachable=False)
    with pytest.raises(BroadcastUnavailable) as failed:
        async with hub:
            pass  # pragma: no cover
    assert failed.value.url == "fake://user:***@host/0"
    assert failed.value.reason == "connection refused"
    assert "is the server running? (set BROADCAST_URL)" in str(failed.value)
    backend.reachable = True
    async with hub:
        assert hub.stats().connected


async def test_a_hub_of_its_own_defaults_to_memory() -> None:
    """Broadcast() without app or url runs in memory."""
    async with Broadcast() as hub:
        assert hub.stats().backend == "memory://"


async def test_a_hub_with_an_app_is_not_entered() -> None:
    """``async with`` on a hub that belongs to an app says to use the app's lifespan."""
    hub = Broadcast(TrioWeb(__name__))
    await assert_raises_at_a_checkpoint(hub.__aenter__, RuntimeError, "starts and stops with")


async def test_running_twice_is_an_error(hub: Broadcast) -> None:
    """A running hub cannot be started again."""
    await assert_raises_at_a_checkpoint(hub.__aenter__, RuntimeError, "running already")


async def test_stopping_ends_the_subscriptions() -> None:
    """When the hub stops, open subscriptions raise BroadcastInterrupted (code 1012)."""
    async with Broadcast() as hub:
        subscription = await hub.subscribe("t").__aenter__()
    with pytest.raises(BroadcastInterrupted, match="the broadcast hub stopped") as raised:
        await subscription.receive()
    assert raised.value.code == 1012
    assert raised.value.reason == "the broadcast backend went away: the broadcast hub stopped"
    await subscription.__aexit__(None, None, None)


async def test_stopping_a_stopped_hub_does_nothing() -> None:
    """after_serving of a hub that never started (startup failed later) returns."""
    hub = Broadcast()
    with trio.testing.assert_checkpoints():
        await hub._stop()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Broadcast(url="kafka://x"), "must start with one of memory://, redis://"),
        (lambda: Broadcast(url="memory://", buffer=0), "at least 1"),
        (lambda: Broadcast(url="memory://", buffer=True), "at least 1"),
        (lambda: Broadcast(url="memory://", overflow="block"), "'raise', 'drop-oldest'"),
        (lambda: Broadcast().subscribe("t", buffer=-1), "at least 1"),
        (lambda: Broadcast().subscribe("t", overflow="x"), "'drop-newest'"),
    ],
    ids=["scheme", "buffer", "bool buffer", "policy", "subscribe buffer", "subscribe policy"],
)
async def test_bad_options_are_value_errors(make: Callable[[], Any], match: str) -> None:
    """Unknown schemes, buffers below 1 and unknown policies fail at once, saying what works."""
    with pytest.raises(ValueError, match=match):
        make()


NOT_RUNNING: list[tuple[str, Callable[[Broadcast], Awaitable[Any]]]] = [
    ("subscribe", lambda hub: hub.subscribe("t").__aenter__()),
    ("publish", lambda hub: hub.publish("t", "x")),
    ("publish_json", lambda hub: hub.publish_json("t", [1])),
    ("presence", lambda hub: hub.presence("t")),
    ("track", lambda hub: hub.track("t", "k").__aenter__()),
    ("forward", lambda hub: hub.forward("t", FakeSocket()).__aenter__()),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("use", [case[1] for case in NOT_RUNNING], ids=[c[0] for c in NOT_RUNNING])
async def test_using_a_hub_that_is_not_running_says_how(
    use: Callable[[Broadcast], Awaitable[Any]],
) -> None:
    """RuntimeError at a checkpoint, naming the way to run the hub; nothing is left behind."""
    hub = Broadcast(TrioWeb(__name__))
    await assert_raises_at_a_checkpoint(lambda: use(hub), RuntimeError, "while the app is serving")
    assert hub._local.topics == {}


# Publishing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (42, "not int; use publish_json"),
        (bytearray(b"x"), "convert it with bytes()"),
        (None, "not NoneType"),
    ],
)
async def test_publish_takes_str_or_bytes(hub: Broadcast, message: Any, match: str) -> None:
    """Anything else is a TypeError at a checkpoint, before any effect."""
    async with hub.subscribe("t") as subscription:
        await assert_raises_at_a_checkpoint(lambda: hub.publish("t", message), TypeError, match)
        assert hub.stats().topics["t"].published == 0
        await hub.publish("t", "next")
        assert await subscription.receive() == "next"


async def test_publish_is_one_checkpoint(hub: Broadcast) -> None:
    """With or without subscribers, publish yields exactly once."""
    assert await schedule_points(hub.publish("nobody", "x")) == 1
    async with hub.subscribe("t"):
        assert await schedule_points(hub.publish("t", "x")) == 1


async def test_publish_cancelled_has_no_effect(hub: Broadcast) -> None:
    """A publish in a cancelled scope raises Cancelled and delivers nothing."""
    async with hub.subscribe("t") as subscription:
        with trio.CancelScope() as scope:
            scope.cancel()
            await hub.publish("t", "never")
        await hub.publish("t", "after")
        assert await subscription.receive() == "after"


async def test_publish_json_encodes_once(hub: Broadcast, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many subscribers, the value is encoded once and each gets the same text."""
    calls: list[Any] = []
    dumps = trioweb._json.dumps

    def counting(value: Any, **kwargs: Any) -> str:
        calls.append(value)
        return dumps(value, **kwargs)

    monkeypatch.setattr(trioweb._json, "dumps", counting)
    subscriptions = [hub.subscribe("t") for _ in range(50)]
    for subscription in subscriptions:
        await subscription.__aenter__()
    await hub.publish_json("t", {"text": "hé", "n": [1, 2]})
    received = [await subscription.receive() for subscription in subscriptions]
    assert calls == [{"text": "hé", "n": [1, 2]}]
    assert received[0] == '{"text":"hé","n":[1,2]}'
    assert all(message is received[0] for message in received)
    for subscription in subscriptions:
        await subscription.__aexit__(None, None, None)


async def test_publish_json_of_what_json_cannot_encode(hub: Broadcast) -> None:
    """TypeError at a checkpoint, nothing published."""
    await assert_raises_at_a_checkpoint(
        lambda: hub.publish_json("t", object()), TypeError, "not JSON serializable"
    )


async def test_order_per_publisher_with_several_publishers(hub: Broadcast) -> None:
    """Each publisher's messages arrive in its order, interleaved however they ran."""
    async with hub.subscribe("t", buffer=1000) as subscription:
        async with trio.open_nursery() as nursery:
            for name in "abc":

                async def publisher(name: str = name) -> None:
                    for n in range(100):
                        await hub.publish("t", f"{name}{n}")

                nursery.start_soon(publisher)
        received = [await subscription.receive() for _ in range(300)]
    for name in "abc":
        assert [m for m in received if m[0] == name] == [f"{name}{n}" for n in range(100)]  # type: ignore[index]


# Stats --------------------------------------------------------------------------------------------


async def test_stats_count_per_topic(hub: Broadcast) -> None:
    """Subscribers, published, delivered; topics without local interest are not listed."""
    async with hub.subscribe("a") as one, hub.subscribe("a"), hub.subscribe("b"):
        await hub.publish("a", "1")
        await hub.publish("a", "2")
        await hub.publish("c", "nobody")
        stats = hub.stats()
        assert set(stats.topics) == {"a", "b"}
        a = stats.topics["a"]
        assert (a.subscribers, a.published, a.delivered, a.dropped, a.cut) == (2, 2, 4, 0, 0)
        assert (stats.backend, stats.connected, stats.interruptions, stats.lost) == (
            "memory://",
            True,
            0,
            0,
        )
        await one.receive()
    assert hub.stats().topics == {}


# Presence -----------------------------------------------------------------------------------------


async def test_track_is_present_while_inside(hub: Broadcast) -> None:
    """Present with meta inside the block, gone after; the topic shows in stats meanwhile."""
    assert await hub.presence("room") == {}
    async with hub.track("room", "ann", {"color": "red"}):
        assert await hub.presence("room") == {"ann": [{"color": "red"}]}
        assert hub.stats().topics["room"].subscribers == 0
    assert await hub.presence("room") == {}
    assert hub.stats().topics == {}


async def test_two_tracks_of_one_key(hub: Broadcast) -> None:
    """A key tracked twice (two tabs) has two metas; it stays present until both leave."""
    async with hub.track("room", "ann", {"tab": 1}):
        async with hub.track("room", "ann", {"tab": 2}), hub.track("room", "bob"):
            assert await hub.presence("room") == {
                "ann": [{"tab": 1}, {"tab": 2}],
                "bob": [{}],
            }
        assert await hub.presence("room") == {"ann": [{"tab": 1}]}


async def test_meta_is_what_json_makes_of_it(hub: Broadcast) -> None:
    """Meta is copied through JSON (as a network backend stores it): tuples become lists and
    later changes to the caller's dict do not show."""
    meta: dict[str, Any] = {"pair": (1, 2)}
    async with hub.track("room", "ann", meta):
        meta["pair"] = "changed"
        present = await hub.presence("room")
        assert present == {"ann": [{"pair": [1, 2]}]}
        present["ann"][0]["pair"] = "mine"
        assert await hub.presence("room") == {"ann": [{"pair": [1, 2]}]}


async def test_meta_json_cannot_encode(hub: Broadcast) -> None:
    """TypeError at a checkpoint; nothing joined."""
    await assert_raises_at_a_checkpoint(
        hub.track("room", "ann", {"x": object()}).__aenter__, TypeError, "not JSON serializable"
    )
    assert await hub.presence("room") == {}
    assert hub.stats().topics == {}


async def test_join_and_leave_events(hub: Broadcast) -> None:
    """A subscription with events=True sees Join and Leave among the messages; one without
    does not."""
    async with hub.subscribe("room", events=True) as events, hub.subscribe("room") as plain:
        async with hub.track("room", "ann", {"n": 1}):
            await hub.publish("room", "hi")
        await hub.publish("room", "bye")
        assert [await events.receive() for _ in range(4)] == [
            Join("room", "ann", {"n": 1}),
            "hi",
            Leave("room", "ann", {"n": 1}),
            "bye",
        ]
        assert [await plain.receive() for _ in range(2)] == ["hi", "bye"]
        assert hub.stats().topics["room"].delivered == 2 + 4


async def test_leave_on_cancellation(hub: Broadcast) -> None:
    """A track whose scope is cancelled leaves (and announces it) all the same."""
    async with hub.subscribe("room", events=True) as events:
        with trio.CancelScope() as scope:
            async with hub.track("room", "ann"):
                scope.cancel()
                await trio.sleep_forever()
        assert await hub.presence("room") == {}
        assert [await events.receive() for _ in range(2)] == [
            Join("room", "ann", {}),
            Leave("room", "ann", {}),
        ]


async def test_track_cancelled_while_joining(hub: Broadcast) -> None:
    """Cancelled on entry: not present, nothing announced, nothing left in stats."""
    with trio.CancelScope() as scope:
        scope.cancel()
        async with hub.track("room", "ann"):
            pass  # pragma: no cover
    assert scope.cancelled_caught
    assert await hub.presence("room") == {}
    assert hub.stats().topics == {}


async def test_track_entered_twice(hub: Broadcast) -> None:
    """hub.track() is called for each ``async with``."""
    track = hub.track("room", "ann")
    async with track:
        await assert_raises_at_a_checkpoint(track.__aenter__, RuntimeError, "each `async with`")


async def test_track_exit_with_an_error_keeps_the_error(hub: Broadcast) -> None:
    """An error in a cancelled track block propagates (not Cancelled), and the track left."""

    async def block() -> None:
        with trio.CancelScope() as scope:
            async with hub.track("room", "ann"):
                scope.cancel()
                raise KeyError("mine")

    with pytest.raises(KeyError):
        await block()
    assert await hub.presence("room") == {}


# forward() ----------------------------------------------------------------------------------------


def chat_app(**options: Any) -> tuple[TrioWeb, Broadcast, list[BaseException]]:
    """An app whose /ws forwards "room" and publishes what it receives; it records what
    escaped the ``async with hub.forward()``."""
    app = TrioWeb(__name__)
    hub = Broadcast(app, **options)
    escaped: list[BaseException] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            async with hub.forward("room") as subscription:
                assert isinstance(subscription, Subscription)
                async for message in websocket:
                    await hub.publish("room", message)
        except BaseException as error:
            escaped.append(error)
            raise

    return app, hub, escaped


async def test_forward_relays_the_topic_to_the_websocket() -> None:
    """Each client gets every message, text as text and bytes as bytes, in order."""
    app, hub, _ = chat_app()
    async with (
        app.test_client() as client,
        client.websocket("/ws") as one,
        client.websocket("/ws") as two,
    ):
        await one.send("hello")
        assert [await one.receive(), await two.receive()] == ["hello", "hello"]
        await two.send(b"\x00bin")
        await two.send("text")
        assert [await one.receive(), await one.receive()] == [b"\x00bin", "text"]
        assert [await two.receive(), await two.receive()] == [b"\x00bin", "text"]
        assert hub.stats().topics["room"].subscribers == 2


async def test_forward_ends_with_the_websocket() -> None:
    """The client leaves: the handler is cancelled, the subscription is gone from stats."""
    app, hub, escaped = chat_app()
    async with app.test_client() as client:
        async with client.websocket("/ws") as one:
            await one.send("x")
            assert await one.receive() == "x"
            await one.close(1001)
        assert hub.stats().topics == {}
        assert [type(error) for error in escaped] == [trio.Cancelled]


async def test_forward_raises_too_slow_from_the_async_with() -> None:
    """Overflow while forwarding: SubscriberTooSlow itself (no group) leaves the ``async with``
    and closes the websocket with 1013."""
    app = TrioWeb(__name__)
    hub = Broadcast(app, buffer=2)
    escaped: list[BaseException] = []
    entered = trio.Event()

    @app.websocket("/ws")
    async def stalled() -> None:
        await websocket.accept()
        try:
            async with hub.forward("room"):
                entered.set()
                await trio.sleep_forever()
        except BaseException as error:
            escaped.append(error)
            raise

    async with app.test_client() as client, client.websocket("/ws") as ws:
        await entered.wait()
        # The client reads nothing, so the forwarding task's sends block once the client's
        # queue is full, and then the subscription's buffer of 2 fills.
        for n in range(50):
            await hub.publish("room", str(n))
        code, reason, messages = await closed_by_app(ws)
    assert (code, reason) == (1013, "too slow: 2 messages of 'room' unread")
    assert 0 < len(messages) < 50
    assert messages == [str(n) for n in range(len(messages))]
    assert [type(error) for error in escaped] == [SubscriberTooSlow]
    assert hub.stats().topics == {}


async def test_forward_raises_websocket_closed_from_the_async_with(hub: Broadcast) -> None:
    """The websocket cannot send: WebsocketClosed leaves the ``async with`` and the body is
    cancelled."""
    socket = FakeSocket(WebsocketClosed(1006))
    body: list[str] = []

    async def block() -> None:
        async with hub.forward("room", socket):  # type: ignore[arg-type]
            await hub.publish("room", "x")
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                body.append("cancelled")
                raise

    with pytest.raises(WebsocketClosed):
        await block()
    assert body == ["cancelled"]
    assert hub.stats().topics == {}


async def test_forward_stops_when_the_body_ends(hub: Broadcast) -> None:
    """Messages published while the body runs are sent; the subscription ends with it."""
    socket = FakeSocket()
    async with hub.forward("room", socket):  # type: ignore[arg-type]
        await hub.publish("room", "a")
        await hub.publish("room", b"b")
        await trio.testing.wait_all_tasks_blocked()
    await hub.publish("room", "after")
    assert socket.sent == ["a", b"b"]
    assert hub.stats().topics == {}


async def test_forward_passes_the_bodys_error_unwrapped(hub: Broadcast) -> None:
    """An error in the body leaves the ``async with`` as itself."""
    with pytest.raises(KeyError):
        async with hub.forward("room", FakeSocket()):  # type: ignore[arg-type]
            raise KeyError("mine")


async def test_forward_cancelled_from_outside_raises_one_cancelled(hub: Broadcast) -> None:
    """Cancelled from outside: one trio.Cancelled leaves, not a group of the body's and the
    forwarding task's."""
    raised: list[BaseException] = []
    with trio.CancelScope() as scope:
        try:
            async with hub.forward("room", FakeSocket()):  # type: ignore[arg-type]
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
                await trio.sleep_forever()
        except BaseException as error:
            raised.append(error)
            raise
    assert [type(error) for error in raised] == [trio.Cancelled]


async def test_forward_errors_in_both_leave_as_a_group(hub: Broadcast) -> None:
    """The body and the forwarding task both fail: both are raised, in a group."""
    socket = FakeSocket(WebsocketClosed(1006))

    async def block() -> None:
        async with hub.forward("room", socket):  # type: ignore[arg-type]
            await hub.publish("room", "x")
            try:
                await trio.sleep_forever()
            finally:
                raise KeyError("mine")

    with pytest.raises(BaseExceptionGroup) as raised:
        await block()
    assert {type(error) for error in raised.value.exceptions} == {WebsocketClosed, KeyError}


async def test_forward_needs_a_websocket(hub: Broadcast) -> None:
    """Outside a websocket handler, forward() needs its websocket argument."""
    await assert_raises_at_a_checkpoint(
        hub.forward("room").__aenter__, RuntimeError, "outside of websocket context"
    )
    assert hub.stats().topics == {}


# Checkpoints --------------------------------------------------------------------------------------


async def test_every_async_method_checkpoints_on_success(hub: Broadcast) -> None:
    """subscribe (enter, exit), receive, publish, publish_json, presence, track (enter, exit),
    forward (enter, exit) each yield and check for cancellation."""
    subscription = hub.subscribe("t")
    with trio.testing.assert_checkpoints():
        await subscription.__aenter__()
    with trio.testing.assert_checkpoints():
        await hub.publish("t", "x")
    with trio.testing.assert_checkpoints():
        await hub.publish_json("t", "x")
    with trio.testing.assert_checkpoints():
        await subscription.receive()
    with trio.testing.assert_checkpoints():
        await subscription.__aexit__(None, None, None)
    with trio.testing.assert_checkpoints():
        await hub.presence("t")
    track = hub.track("t", "k")
    with trio.testing.assert_checkpoints():
        await track.__aenter__()
    with trio.testing.assert_checkpoints():
        await track.__aexit__(None, None, None)
    forward = hub.forward("t", FakeSocket())  # type: ignore[arg-type]
    with trio.testing.assert_checkpoints():
        await forward.__aenter__()
    with trio.testing.assert_checkpoints():
        await forward.__aexit__(None, None, None)
    standalone = Broadcast()
    with trio.testing.assert_checkpoints():
        await standalone.__aenter__()
    with trio.testing.assert_checkpoints():
        await standalone.__aexit__(None, None, None)


async def test_log_nothing_in_normal_use(hub: Broadcast, caplog: pytest.LogCaptureFixture) -> None:
    """Subscribing, publishing and tracking log nothing."""
    with caplog.at_level(logging.DEBUG, logger="trioweb.broadcast"):
        async with hub.subscribe("t") as subscription, hub.track("t", "k"):
            await hub.publish("t", "x")
            await subscription.receive()
    assert caplog.records == []


# The docs' examples (their happy paths are docs/examples/tests/test_broadcasting.py) ------------

rooms_example = load_example("broadcast_rooms")
presence_example = load_example("broadcast_presence")
prices_example = load_example("broadcast_prices")


@pytest.mark.parametrize("body", [{"txt": "x"}, ["text"], {"text": 1}])
async def test_rooms_example_refuses_a_bad_announcement(body: Any) -> None:
    """An announcement without a text is a 400 that says what to send."""
    async with rooms_example.app.test_client() as client:
        response = await client.post("/rooms/lobby/announcements", json=body)
    assert response.status_code == 400
    assert "send {&#34;text&#34;: &#34;...&#34;}" in (await response.get_data(as_text=True))


async def test_presence_example_needs_a_name() -> None:
    """Without ?name= the handshake is refused with 400, and nobody is present."""
    response = await refusal(presence_example.app, "/rooms/lobby")
    assert response.status_code == 400
    async with presence_example.app.test_client() as client:
        response = await client.get("/rooms/lobby/online")
        assert await response.get_json() == {"online": []}


async def test_prices_example_stats_list_topics_with_subscribers() -> None:
    """/stats lists the topics that have subscribers, with their drops."""
    async with prices_example.app.test_client() as client:
        assert await (await client.get("/stats")).get_json() == {}
        async with client.websocket("/prices"):
            stats = await (await client.get("/stats")).get_json()
    assert stats == {"prices": {"subscribers": 1, "dropped": 0, "cut": 0}}


async def test_the_hub_starts_again_after_the_app_nursery_crashed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task on app.nursery that raises takes the hub's task with it: open subscriptions end
    with BroadcastInterrupted, a warning says so, and the next use starts the hub again."""
    app = TrioWeb(__name__)
    hub = Broadcast(app)

    async def crash() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("crash")

    async def serve() -> None:
        async with app.test_client():
            async with hub.subscribe("t") as before:
                assert app.nursery is not None
                app.nursery.start_soon(crash)
                with pytest.raises(BroadcastInterrupted):
                    await before.receive()
            await trio.testing.wait_all_tasks_blocked()  # the new app nursery is open
            async with hub.subscribe("t") as after:
                await hub.publish("t", "again")
                assert await after.receive() == "again"

    with pytest.raises(KeyError):  # the test client raises what the app nursery's tasks raised
        await serve()
    assert "the broadcast hub was cancelled with the app nursery" in caplog.text


async def test_the_hub_says_how_when_it_cannot_start_again() -> None:
    """While the crashed app nursery is still closing, using the hub is the usual
    RuntimeError."""
    app = TrioWeb(__name__)
    hub = Broadcast(app)
    async with app.test_client():
        hub._local.stop()  # as if the task had ended; its old nursery is still open
        hub._local.backend = None
        await assert_raises_at_a_checkpoint(
            lambda: hub.publish("t", "x"), RuntimeError, "while the app is serving"
        )
