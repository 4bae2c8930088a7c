"""The pytest plugin trioweb ships: ``client`` and ``live_server`` built on a project's ``app``."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected

from trioweb import TrioWeb, websocket
from trioweb.testing import TestClient
from trioweb.testing.pytest_plugin import LiveServer

served: list[str] = []


@pytest.fixture
def app() -> TrioWeb:
    app = TrioWeb(__name__)

    @app.before_serving
    async def started() -> None:
        served.append("started")

    @app.after_serving
    async def stopped() -> None:
        served.append("stopped")

    @app.route("/")
    async def index() -> str:
        return "hello"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept(subprotocol="v1" if websocket.requested_subprotocols else None)
        await websocket.send(await websocket.receive())

    @app.websocket("/private")
    async def private() -> tuple[str, int]:
        return "keep out", 403

    return app


async def test_client_fixture_runs_the_lifespan(client: TestClient) -> None:
    """The client fixture is a test client whose app has started serving."""
    assert served[-1] == "started"
    assert await (await client.get("/")).get_data() == b"hello"
    async with client.websocket("/ws") as conn:
        await conn.send("echo")
        assert await conn.receive() == "echo"


async def test_live_server_serves_http_and_websockets(live_server: LiveServer) -> None:
    """live_server is real Hypercorn on 127.0.0.1 with a working trio-websocket helper."""
    assert live_server.url.startswith("http://127.0.0.1:")
    assert live_server.ws_url == "ws" + live_server.url.removeprefix("http")
    async with httpx.AsyncClient() as http:
        assert (await http.get(live_server.url + "/")).text == "hello"
    async with live_server.websocket("/ws", subprotocols=["v1"]) as conn:
        assert conn.subprotocol == "v1"
        await conn.send_message(b"\x00bytes")
        assert await conn.get_message() == b"\x00bytes"
    with pytest.raises(ConnectionRejected) as rejected:
        async with live_server.websocket("/private"):
            pass  # pragma: no cover
    assert (rejected.value.status_code, rejected.value.body) == (403, b"keep out")


async def test_live_server_shut_down_cleanly_after_the_previous_test() -> None:
    """after_serving ran when the previous test's live server stopped."""
    assert served[-2:] == ["started", "stopped"]
    await trio.lowlevel.checkpoint()
