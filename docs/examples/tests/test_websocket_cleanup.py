"""The client leaves: the handler's cleanup is done when the block is left."""

import ws_cleanup


async def test_leaving_runs_the_handlers_cleanup() -> None:
    """Once the async with block is left, the handler has cleaned up after its client."""
    async with ws_cleanup.app.test_client() as client:
        async with client.websocket("/online/ada") as ws:
            await ws.send("who is there?")
            assert await ws.receive_json() == {"online": ["ada"]}
            await ws.close(4000, "going offline")
        assert "ada" not in ws_cleanup.presence.online
        assert ws_cleanup.departures[-1] == ("ada", 4000)
