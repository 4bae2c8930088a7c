"""A websocket that ticks, tested on pytest-trio's virtual clock."""

import pytest
import trio
import ws_ticker

from trioweb.testing import WebsocketDisconnectError


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
