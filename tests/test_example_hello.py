"""examples/hello.py, the smallest example app, does what its docstring says."""

from __future__ import annotations

from examples.hello import app


async def test_hello_page_json_and_websocket_echo() -> None:
    """The page, the JSON route and the websocket echo answer as documented."""
    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"Hello from trioweb!\n"
        response = await client.get("/hello/ann", headers={"User-Agent": "tests"})
        assert await response.get_json() == {"hello": "ann", "user_agent": "tests"}
        async with client.websocket("/ws") as ws:
            for message in ["text", b"bytes", ""]:
                await ws.send(message)
                assert await ws.receive() == message
