"""The websocket examples (examples/*.py) do what their docstrings say: through the test client
for every behaviour, and through real Hypercorn (``live_server`` and trio-websocket) for each app.

Ticker and heartbeat tests use ``autojump_clock``: virtual time jumps ahead whenever every task is
blocked, so "a tick per second" takes no real time and the intervals can be checked exactly.
Live tests run on the real clock with small intervals instead, bounded by conftest's deadline.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from _ws import closed_by_app
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)

from examples import auth, echo, heartbeat, json_api, ticker
from trioweb import TrioWeb
from trioweb.testing import WebsocketResponseError
from trioweb.testing.pytest_plugin import LiveServer


def serving(app: TrioWeb) -> pytest.MarkDecorator:
    """Give the test's ``live_server`` this app (parametrizing overrides the ``app`` fixture)."""
    return pytest.mark.parametrize("app", [app], ids=[app.name])


@asynccontextmanager
async def connect(
    live_server: LiveServer, path: str, **kwargs: Any
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket connection to ``path`` on the live server, like
    ``live_server.websocket(path)`` but on a TCP stream this helper closes: trio-websocket leaves
    its socket open when the handshake is rejected or the server closes first.

    Raises trio-websocket's ``ConnectionRejected`` (and any lone error) without a group around it.
    """
    host, _, port = live_server.url.removeprefix("http://").rpartition(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        try:
            async with trio.open_nursery() as nursery:
                conn = await wrap_client_stream(nursery, stream, host, path, **kwargs)
                try:
                    yield conn
                finally:
                    await conn.aclose()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise


async def closed_by_server(conn: WebSocketConnection) -> tuple[int, str | None, list[str | bytes]]:
    """Read until the server closes: its close code and reason, and the messages before them."""
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await conn.get_message())
        except ConnectionClosed as closed:
            reason = closed.reason
            break
    assert reason is not None
    return reason.code, reason.reason, messages


# echo ---------------------------------------------------------------------------------------------

FRAMES: list[str | bytes] = ["hello", "\u00e9t\u00e9 \u2603", b"\x00\xff binary", "", b""]


@pytest.mark.parametrize("message", FRAMES, ids=repr)
async def test_echo_returns_each_message_with_its_frame_type(message: str | bytes) -> None:
    """Echo sends each message back unchanged: text as text, binary as binary, empty or not."""
    async with echo.app.test_client() as client, client.websocket("/ws") as ws:
        await ws.send(message)
        reply = await ws.receive()
    assert reply == message
    assert type(reply) is type(message)


async def test_echo_keeps_the_order_of_messages() -> None:
    """Messages sent in a row come back in the same order."""
    async with echo.app.test_client() as client, client.websocket("/ws") as ws:
        for message in FRAMES:
            await ws.send(message)
        replies = [await ws.receive() for _ in FRAMES]
    assert replies == FRAMES


@serving(echo.app)
async def test_echo_over_a_real_server(live_server: LiveServer) -> None:
    """Through Hypercorn, each frame comes back with its type, empty frames included."""
    async with connect(live_server, "/ws") as conn:
        for message in FRAMES:
            await conn.send_message(message)
            reply = await conn.get_message()
            assert reply == message
            assert type(reply) is type(message)


# auth ---------------------------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header with Basic credentials."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def bearer(token: str) -> dict[str, str]:
    """An Authorization header with a Bearer token."""
    return {"Authorization": f"Bearer {token}"}


ALICE = basic("alice", "wonderland")
BOB = bearer("s3cret-token-of-bob")

#: Credentials that are turned away, and the status they get (HTTP and websocket alike).
REFUSED = [
    pytest.param({}, 401, id="none"),
    pytest.param({"Authorization": "Basic not-base64!"}, 401, id="unreadable"),
    pytest.param(basic("alice", "wonderlan"), 403, id="wrong-password"),
    pytest.param(basic("mallory", "wonderland"), 403, id="unknown-user"),
    pytest.param(bearer("s3cret-token-of-bo"), 403, id="wrong-token"),
]
ACCEPTED = [pytest.param(ALICE, "alice", id="basic"), pytest.param(BOB, "bob", id="bearer")]


@pytest.mark.parametrize(("headers", "status"), REFUSED)
async def test_auth_websocket_is_rejected_with_http_status(
    headers: dict[str, str], status: int
) -> None:
    """The guarded websocket answers missing credentials 401 (with a challenge for each scheme)
    and wrong ones 403 "Forbidden", before any websocket exists."""
    async with auth.app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as rejected:
            async with client.websocket("/ws", headers=headers):
                pass
    response = rejected.value.response
    assert response.status_code == status
    if status == 401:
        assert response.headers.getlist("WWW-Authenticate") == [
            'Basic realm="trioweb examples"',
            'Bearer realm="trioweb examples"',
        ]
    else:
        assert "WWW-Authenticate" not in response.headers
        assert await response.get_data() == b"Forbidden"


@pytest.mark.parametrize(("headers", "status"), REFUSED)
async def test_auth_http_view_is_refused_with_the_same_status(
    headers: dict[str, str], status: int
) -> None:
    """The same decorator on an HTTP view refuses the same credentials with the same status."""
    async with auth.app.test_client() as client:
        response = await client.get("/me", headers=headers)
    assert response.status_code == status
    assert ("WWW-Authenticate" in response.headers) == (status == 401)


@pytest.mark.parametrize(("headers", "user"), ACCEPTED)
async def test_auth_websocket_accepts_known_users(headers: dict[str, str], user: str) -> None:
    """Good Basic or Bearer credentials open the websocket, which greets the user by name."""
    async with auth.app.test_client() as client, client.websocket("/ws", headers=headers) as ws:
        greeting = await ws.receive_json()
        await ws.send("still here")
        echoed = await ws.receive()
    assert greeting == {"hello": user}
    assert echoed == "still here"


@pytest.mark.parametrize(("headers", "user"), ACCEPTED)
async def test_auth_http_view_answers_known_users(headers: dict[str, str], user: str) -> None:
    """Good credentials reach the HTTP view, which sees the user in ``g.user``."""
    async with auth.app.test_client() as client:
        response = await client.get("/me", headers=headers)
    assert response.status_code == 200
    assert await response.get_json() == {"user": user}


@pytest.mark.parametrize("query", [None, {"token": "open-sesam"}, {"token": ""}])
async def test_auth_room_hook_rejects_without_the_token(query: dict[str, str] | None) -> None:
    """The blueprint's before_websocket hook turns away a missing or wrong ``?token=`` with 403,
    whatever the Authorization header says."""
    async with auth.app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as rejected:
            async with client.websocket("/rooms/lobby", query_string=query, headers=ALICE):
                pass
    assert rejected.value.response.status_code == 403
    assert await rejected.value.response.get_data() == b"A valid ?token= is required"


async def test_auth_room_hook_lets_the_token_in() -> None:
    """With the right ``?token=`` (and no Authorization at all) the room opens."""
    async with (
        auth.app.test_client() as client,
        client.websocket("/rooms/lobby", query_string={"token": "open-sesame"}) as ws,
    ):
        assert await ws.receive_json() == {"room": "lobby"}


@serving(auth.app)
async def test_auth_over_a_real_server(live_server: LiveServer) -> None:
    """Through Hypercorn, a client without credentials gets the 401 response with its challenge,
    and one with a token gets the websocket."""
    with pytest.raises(ConnectionRejected) as rejected:
        async with connect(live_server, "/ws"):
            pass
    assert rejected.value.status_code == 401
    headers = [(name.lower(), value) for name, value in rejected.value.headers]
    assert (b"www-authenticate", b'Bearer realm="trioweb examples"') in headers

    token = [(b"authorization", BOB["Authorization"].encode())]
    async with connect(live_server, "/ws", extra_headers=token) as conn:
        assert json.loads(await conn.get_message()) == {"hello": "bob"}


# ticker -------------------------------------------------------------------------------------------


def tasks_running(func: Callable[..., Coroutine[Any, Any, Any]]) -> int:
    """How many tasks of this Trio run are running the async function ``func`` right now."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count, pending = 0, [root]
    while pending:
        task = pending.pop()
        count += getattr(task.coro, "cr_code", None) is func.__code__
        pending.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return count


async def test_ticker_ticks_every_interval(autojump_clock: trio.abc.Clock) -> None:
    """The ticker sends {"tick": n}, n = 1, 2, 3, one TICK_INTERVAL (1 s) apart, unprompted."""
    async with ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        start = trio.current_time()
        ticks, times = [], []
        for _ in range(3):
            ticks.append(await ws.receive_json())
            times.append(trio.current_time() - start)
    assert ticks == [{"tick": 1}, {"tick": 2}, {"tick": 3}]
    assert times == pytest.approx([1.0, 2.0, 3.0])


async def test_ticker_interval_command_changes_the_pace(autojump_clock: trio.abc.Clock) -> None:
    """ "interval 0.25" is confirmed, and the ticks after it come 0.25 s apart."""
    async with ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        await ws.send("interval 0.25")
        assert await ws.receive_json() == {"interval": 0.25}
        await ws.receive_json()  # the tick already under way may still be on the old pace
        first = await ws.receive_json()
        at = trio.current_time()
        second = await ws.receive_json()
        assert trio.current_time() - at == pytest.approx(0.25)
    assert second["tick"] == first["tick"] + 1


@pytest.mark.parametrize("command", ["interval", "interval fast", "interval 0", "interval nan"])
async def test_ticker_rejects_a_bad_interval(command: str, autojump_clock: trio.abc.Clock) -> None:
    """A bad interval gets an error reply; the ticks go on at the old pace."""
    async with ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        await ws.send(command)
        reply = await ws.receive_json()
        start = trio.current_time()
        tick = await ws.receive_json()
    assert reply == {"error": "interval takes seconds, from 0.01 to 3600"}
    assert tick == {"tick": 1}
    assert trio.current_time() - start == pytest.approx(1.0)


@pytest.mark.parametrize("command", ["start", b"stop", "STOP"])
async def test_ticker_answers_unknown_commands(command: str | bytes) -> None:
    """Anything but "interval <seconds>" and "stop" (as text) gets an error reply."""
    async with ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        await ws.send(command)
        reply = await ws.receive_json()
    assert reply == {"error": "commands are 'interval <seconds>' and 'stop'"}


async def test_ticker_stop_closes_normally(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """ "stop" ends both tasks and closes with 1000 and a reason; nothing follows the close, the
    listener is no longer online, and no disconnect is logged."""
    caplog.set_level(logging.INFO, logger="examples.ticker")
    async with ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        assert await ws.receive_json() == {"tick": 1}
        await ws.send("stop")
        code, reason, after = await closed_by_app(ws)
        assert tasks_running(ticker.send_ticks) == tasks_running(ticker.receive_commands) == 0
        online = await (await client.get("/listeners")).get_json()
    assert (code, reason) == (1000, "stopped by the client")
    assert after == []  # the tick due at t = 2 never came: the close came at once
    assert online == {"online": []}
    assert not [record for record in caplog.records if "left" in record.getMessage()]


async def test_ticker_disconnect_cancels_both_tasks_and_cleans_up(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """While a client listens, its ticker and receiver tasks run and it is online; once it
    leaves, both tasks are gone, the except* branch logged it, and the shielded cleanup took it
    off the presence list."""
    caplog.set_level(logging.INFO, logger="examples.ticker")
    async with ticker.app.test_client() as client:
        async with client.websocket("/ticks") as ws:
            for _ in range(2):
                await ws.receive_json()
            assert tasks_running(ticker.send_ticks) == 1
            assert tasks_running(ticker.receive_commands) == 1
            online = await (await client.get("/listeners")).get_json()
            assert len(online["online"]) == 1
            (listener_id,) = online["online"]
            await ws.close(1001)  # returns once the handler has finished
            assert tasks_running(ticker.send_ticks) == 0
            assert tasks_running(ticker.receive_commands) == 0
            assert ticker.presence.online == set()
        assert await (await client.get("/listeners")).get_json() == {"online": []}
    messages = [record.getMessage() for record in caplog.records]
    assert f"listener {listener_id} left after 2 ticks" in messages


@serving(ticker.app)
async def test_ticker_over_a_real_server(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Hypercorn, ticks arrive in order and "stop" closes with 1000 and the reason."""
    monkeypatch.setitem(ticker.app.config, "TICK_INTERVAL", 0.01)
    async with connect(live_server, "/ticks") as conn:
        ticks = [json.loads(await conn.get_message()) for _ in range(3)]
        await conn.send_message("stop")
        code, reason, more = await closed_by_server(conn)
    # Ticks sent before the server read "stop" still arrive, in order, before the close.
    ticks += [json.loads(message) for message in more]
    assert ticks == [{"tick": n} for n in range(1, len(ticks) + 1)]
    assert (code, reason) == (1000, "stopped by the client")


# json_api -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        ({"type": "ping", "id": 7}, {"type": "pong", "id": 7}),
        ({"type": "ping", "id": "a"}, {"type": "pong", "id": "a"}),
        ({"type": "ping", "id": [1]}, {"type": "pong"}),
        ({"type": "sum", "values": [1, 2, 3]}, {"type": "result", "value": 6}),
        ({"type": "sum", "values": []}, {"type": "result", "value": 0}),
        ({"type": "average", "values": [1, 2]}, {"type": "result", "value": 1.5}),
    ],
)
async def test_json_api_answers_requests(request_: dict[str, Any], reply: dict[str, Any]) -> None:
    """Each valid request gets its reply, with the request's id if it is a string or number."""
    async with json_api.app.test_client() as client, client.websocket("/api") as ws:
        await ws.send_json(request_)
        assert await ws.receive_json() == reply


async def test_json_api_closes_1003_on_invalid_json() -> None:
    """A message that is not JSON closes the websocket with 1003 and says why."""
    async with json_api.app.test_client() as client, client.websocket("/api") as ws:
        await ws.send("{'type': 'ping'}")
        assert await closed_by_app(ws) == (1003, "messages must be JSON", [])


async def test_json_api_lenient_variant_replies_and_goes_on() -> None:
    """On /api/lenient, invalid JSON gets an error reply and the next request is answered."""
    async with json_api.app.test_client() as client, client.websocket("/api/lenient") as ws:
        await ws.send("not json")
        error = await ws.receive_json()
        await ws.send_json(type="ping")
        pong = await ws.receive_json()
    assert error == {"type": "error", "error": "messages must be JSON"}
    assert pong == {"type": "pong"}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([1, 2], 'each message must be an object with a "type"'),
        ({"id": 1}, 'each message must be an object with a "type"'),
        ({"type": 5}, 'each message must be an object with a "type"'),
        ({"type": "launch"}, "unknown message type 'launch'"),
        ({"type": "x" * 200}, f"unknown message type '{'x' * 40}'"),
        ({"type": "sum"}, '"values" must be a list of numbers'),
        ({"type": "sum", "values": ["1"]}, '"values" must be a list of numbers'),
        ({"type": "sum", "values": [True]}, '"values" must be a list of numbers'),
    ],
)
async def test_json_api_closes_1008_on_a_rule_violation(message: Any, reason: str) -> None:
    """JSON that breaks the API's rules closes with 1008 and the rule as the reason; the lenient
    variant is no more lenient about that."""
    async with json_api.app.test_client() as client:
        for path in ("/api", "/api/lenient"):
            async with client.websocket(path) as ws:
                await ws.send_json({"type": "ping"})
                assert await ws.receive_json() == {"type": "pong"}
                await ws.send_json(message)
                assert await closed_by_app(ws) == (1008, reason, [])


async def test_json_api_server_error_closes_1011_and_reaches_the_server() -> None:
    """The average of nothing raises ZeroDivisionError: nobody catches it, so the client gets
    close 1011 and the error goes on to the server (here, the test client re-raises it)."""
    async with json_api.app.test_client() as client, client.websocket("/api") as ws:
        await ws.send_json({"type": "average", "values": []})
        with pytest.raises(ZeroDivisionError):
            await ws.receive()
        assert (ws.close_code, ws.close_reason) == (1011, "Internal Server Error")


@serving(json_api.app)
async def test_json_api_over_a_real_server(live_server: LiveServer) -> None:
    """Through Hypercorn: a request is answered; invalid JSON closes with 1003, a rule violation
    with 1008, and the server's own bug with 1011."""
    async with connect(live_server, "/api") as conn:
        await conn.send_message('{"type": "sum", "values": [1, 2], "id": 1}')
        assert json.loads(await conn.get_message()) == {"type": "result", "value": 3, "id": 1}
        await conn.send_message("nope")
        assert await closed_by_server(conn) == (1003, "messages must be JSON", [])

    async with connect(live_server, "/api") as conn:
        await conn.send_message('{"id": 2}')
        code, _, _ = await closed_by_server(conn)
        assert code == 1008

    async with connect(live_server, "/api") as conn:
        await conn.send_message('{"type": "average", "values": []}')
        assert await closed_by_server(conn) == (1011, "Internal Server Error", [])


# heartbeat ----------------------------------------------------------------------------------------


@pytest.fixture
def heartbeat_interval(monkeypatch: pytest.MonkeyPatch) -> float:
    """A one-second heartbeat for the example (its default is 30 s)."""
    monkeypatch.setitem(heartbeat.app.config, "HEARTBEAT_INTERVAL", 1.0)
    return 1.0


async def test_heartbeat_pings_a_quiet_client(
    heartbeat_interval: float, autojump_clock: trio.abc.Clock
) -> None:
    """A client silent for one interval gets "ping", exactly then."""
    async with heartbeat.app.test_client() as client, client.websocket("/ws") as ws:
        start = trio.current_time()
        assert await ws.receive() == "ping"
        assert trio.current_time() - start == pytest.approx(heartbeat_interval)


async def test_heartbeat_closes_4000_without_pong(
    heartbeat_interval: float, autojump_clock: trio.abc.Clock
) -> None:
    """No "pong" within an interval of the ping: close 4000 "heartbeat timeout", two intervals
    after the client last spoke."""
    async with heartbeat.app.test_client() as client, client.websocket("/ws") as ws:
        start = trio.current_time()
        assert await closed_by_app(ws) == (4000, "heartbeat timeout", ["ping"])
        assert trio.current_time() - start == pytest.approx(2 * heartbeat_interval)


async def test_heartbeat_pong_keeps_the_websocket_open(
    heartbeat_interval: float, autojump_clock: trio.abc.Clock
) -> None:
    """Each "pong" keeps the websocket open, and the next ping comes one quiet interval later."""
    async with heartbeat.app.test_client() as client, client.websocket("/ws") as ws:
        start = trio.current_time()
        pings = []
        for _ in range(2):
            assert await ws.receive() == "ping"
            pings.append(trio.current_time() - start)
            await trio.sleep(0.5)  # a slow client: still within the interval
            await ws.send("pong")
        assert await ws.receive() == "ping"
        pings.append(trio.current_time() - start)
    assert pings == pytest.approx([1.0, 2.5, 4.0])


async def test_heartbeat_messages_are_echoed_and_reset_the_timer(
    heartbeat_interval: float, autojump_clock: trio.abc.Clock
) -> None:
    """A message echoes back and counts as a sign of life: the ping comes an interval after the
    last message, not after the connection."""
    async with heartbeat.app.test_client() as client, client.websocket("/ws") as ws:
        start = trio.current_time()
        echoed = []
        for message in ("one", b"two", "three"):
            await trio.sleep(0.75)  # under the interval each time, 2.25 s in all
            await ws.send(message)
            echoed.append(await ws.receive())
        assert await ws.receive() == "ping"
        assert trio.current_time() - start == pytest.approx(3.25)
    assert echoed == ["one", b"two", "three"]


async def test_heartbeat_only_pong_answers_the_ping(
    heartbeat_interval: float, autojump_clock: trio.abc.Clock
) -> None:
    """Messages sent after a ping are still echoed but do not answer it: without "pong" the
    websocket closes one interval after the ping."""
    async with heartbeat.app.test_client() as client, client.websocket("/ws") as ws:
        start = trio.current_time()
        assert await ws.receive() == "ping"
        await ws.send("PONG")
        code, reason, messages = await closed_by_app(ws)
        assert trio.current_time() - start == pytest.approx(2 * heartbeat_interval)
    assert (code, reason, messages) == (4000, "heartbeat timeout", ["PONG"])


@serving(heartbeat.app)
async def test_heartbeat_over_a_real_server(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Hypercorn, a client that answers one ping and then falls silent is pinged again
    and closed with 4000 "heartbeat timeout"."""
    monkeypatch.setitem(heartbeat.app.config, "HEARTBEAT_INTERVAL", 0.2)
    async with connect(live_server, "/ws") as conn:
        assert await conn.get_message() == "ping"
        await conn.send_message("pong")
        assert await conn.get_message() == "ping"
        assert await closed_by_server(conn) == (4000, "heartbeat timeout", [])
