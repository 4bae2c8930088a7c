"""The app closes the websocket, or its handler fails: both reach the test."""

import pytest
import ws_messages

from trioweb import TrioWeb, websocket
from trioweb.testing import WebsocketDisconnectError


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
