"""Tests for the websocket examples, as they would sit in ``tests/test_websockets.py``.

The ``app`` fixture belongs in ``tests/conftest.py``: trioweb's pytest plugin builds its
``client`` and ``live_server`` fixtures on it.
"""

import json

import pytest
import trio
import trio.testing
import ws_auth
import ws_cleanup
import ws_messages
import ws_ticker

from trioweb import TrioWeb, websocket
from trioweb.testing import TestClient, WebsocketDisconnectError, WebsocketResponseError
from trioweb.testing.pytest_plugin import LiveServer

ADA = {"Authorization": "Bearer tok-ada-7f3a"}


@pytest.fixture
def app() -> TrioWeb:
    return ws_auth.app


async def test_inbox_greets_the_user(client: TestClient) -> None:
    """A known token gets a greeting, then each message echoed."""
    async with client.websocket("/inbox", headers=ADA) as ws:
        assert await ws.receive_json() == {"user": "ada", "unread": 0}
        await ws.send("hello")
        assert await ws.receive_json() == {"user": "ada", "echo": "hello"}


async def test_inbox_takes_a_token_in_the_query_string(client: TestClient) -> None:
    """The token may come as ?token= instead of a header."""
    query = {"token": "tok-grace-91c2"}
    async with client.websocket("/inbox", query_string=query) as ws:
        assert await ws.receive_json() == {"user": "grace", "unread": 0}


async def test_inbox_without_a_token_is_refused(client: TestClient) -> None:
    """No token: the handshake is answered with HTTP 401."""
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/inbox"):
            pass
    assert refused.value.response.status_code == 401


async def test_text_is_refused_with_close_1003() -> None:
    """A text frame makes /sha256 close with 1003 and a reason."""
    async with ws_messages.app.test_client() as client, client.websocket("/sha256") as ws:
        await ws.send(b"trio")
        assert len(await ws.receive()) == 64
        await ws.send("trio")
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert closed.value.code == 1003
    assert closed.value.reason == "send binary frames; text is not hashed"


async def test_leaving_runs_the_handlers_cleanup() -> None:
    """Once the async with block is left, the handler has cleaned up after its client."""
    async with ws_cleanup.app.test_client() as client:
        async with client.websocket("/online/ada") as ws:
            await ws.send("who is there?")
            assert await ws.receive_json() == {"online": ["ada"]}
            await ws.close(4000, "going offline")
        assert "ada" not in ws_cleanup.presence.online
        assert ws_cleanup.departures[-1] == ("ada", 4000)


async def test_ticker_on_a_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """Ticks come once a second, faster on request, and 'stop' closes the websocket."""
    async with ws_ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        start = trio.current_time()
        assert await ws.receive_json() == {"tick": 1}
        assert trio.current_time() - start == 1
        await ws.send("interval 0.5")
        assert await ws.receive_json() == {"interval": 0.5}
        assert await ws.receive_json() == {"tick": 2}
        assert await ws.receive_json() == {"tick": 3}
        assert trio.current_time() - start == 2.5
        await ws.send("stop")
        with pytest.raises(WebsocketDisconnectError):
            await ws.receive()
    assert (ws.close_code, ws.close_reason) == (1000, "stopped")


async def test_handler_errors_fail_the_test() -> None:
    """An exception the handler raises comes out of the test client."""
    app = TrioWeb(__name__)

    @app.websocket("/divide")
    async def divide() -> None:
        numerator, denominator = await websocket.receive_json()
        await websocket.send_json(numerator / denominator)

    async with app.test_client() as client, client.websocket("/divide") as ws:
        await ws.send_json([1, 0])
        with pytest.raises(ZeroDivisionError):
            await ws.receive()


async def test_a_fast_sender_waits_for_the_test() -> None:
    """The handler gets at most 10 messages ahead of the test; leaving lets it finish."""
    app = TrioWeb(__name__)
    sent: list[int] = []

    @app.websocket("/feed")
    async def feed() -> None:
        for number in range(1000):
            await websocket.send_json(number)
            sent.append(number)

    async with app.test_client() as client:
        async with client.websocket("/feed") as ws:
            assert await ws.receive_json() == 0
            await trio.testing.wait_all_tasks_blocked()
            assert len(sent) == 1 + 10  # one received, ten waiting for the test
        assert len(sent) == 1000  # once the test left, the other sends went nowhere


async def test_inbox_over_a_real_connection(live_server: LiveServer) -> None:
    """Served by Hypercorn, the inbox greets a trio-websocket client."""
    async with live_server.websocket("/inbox?token=tok-ada-7f3a") as connection:
        assert json.loads(await connection.get_message()) == {"user": "ada", "unread": 0}
        await connection.send_message("over the network")
        reply = json.loads(await connection.get_message())
        assert reply == {"user": "ada", "echo": "over the network"}
