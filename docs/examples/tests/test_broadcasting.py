"""Tests of the broadcasting apps: several clients of one app, through the test client."""

import broadcast_presence
import broadcast_prices
import broadcast_rooms
import pytest

from trioweb.testing import TestWebsocket, WebsocketDisconnectError


async def test_a_room_relays_each_message_to_everyone() -> None:
    """What one client sends, every client in the room receives, the sender too."""
    async with (
        broadcast_rooms.app.test_client() as client,
        client.websocket("/rooms/lobby") as ann,
        client.websocket("/rooms/lobby") as bob,
        client.websocket("/rooms/elsewhere") as eve,
    ):
        await ann.send("hello")
        assert await ann.receive() == "hello"
        assert await bob.receive() == "hello"
        await eve.send("only here")
        assert await eve.receive() == "only here"
        await bob.send(b"\x00binary")
        assert await ann.receive() == b"\x00binary"


async def test_an_announcement_reaches_the_room() -> None:
    """A POST publishes JSON to everyone in the room."""
    async with (
        broadcast_rooms.app.test_client() as client,
        client.websocket("/rooms/lobby") as ann,
    ):
        response = await client.post("/rooms/lobby/announcements", json={"text": "closing soon"})
        assert response.status_code == 202
        assert await ann.receive_json() == {"announcement": "closing soon"}


async def test_presence_lists_and_announces_who_is_in_the_room() -> None:
    """A newcomer gets the list; the others see them join and leave."""
    async with (
        broadcast_presence.app.test_client() as client,
        client.websocket("/rooms/lobby?name=ann") as ann,
    ):
        assert await ann.receive_json() == {"online": ["ann"]}
        assert await ann.receive_json() == {"joined": "ann"}
        async with client.websocket("/rooms/lobby?name=bob") as bob:
            assert await bob.receive_json() == {"online": ["ann", "bob"]}
            assert await ann.receive_json() == {"joined": "bob"}
            await bob.send("hi")
            assert await ann.receive_json() == {"from": "bob", "text": "hi"}
            response = await client.get("/rooms/lobby/online")
            assert await response.get_json() == {"online": ["ann", "bob"]}
        assert await ann.receive_json() == {"left": "bob"}


async def test_a_client_that_falls_behind_gets_the_newest_prices() -> None:
    """A client that reads nothing while 50 prices go out then gets the newest, some skipped."""
    async with (
        broadcast_prices.app.test_client() as client,
        client.websocket("/prices") as feed,
    ):
        for n in range(50):
            await client.post("/prices", json={"n": n})
        received = []
        while not received or received[-1]["n"] != 49:
            received.append(await feed.receive_json())
        numbers = [price["n"] for price in received]
        assert numbers == sorted(numbers)
        assert len(numbers) < 50
        stats = await (await client.get("/stats")).get_json()
        assert stats["prices"]["dropped"] == 50 - len(numbers)


async def test_a_client_that_falls_behind_on_trades_is_closed_with_1013() -> None:
    """Trades are not skipped: the client that cannot keep up is closed with 1013."""
    async with (
        broadcast_prices.app.test_client() as client,
        client.websocket("/trades") as feed,
    ):
        for n in range(200):
            await broadcast_prices.hub.publish("trades", str(n))
        with pytest.raises(WebsocketDisconnectError) as closed:
            await read_until_closed(feed)
    assert closed.value.code == 1013
    assert closed.value.reason == "too slow: 100 messages of 'trades' unread"


async def read_until_closed(ws: TestWebsocket) -> None:
    """Receive until the app closes the websocket (WebsocketDisconnectError)."""
    while True:
        await ws.receive()
