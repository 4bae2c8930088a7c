"""A handler that sends faster than the test receives waits for the test."""

import trio.testing

from trioweb import TrioWeb, websocket


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
