"""The inbox of ws_auth.py served by real Hypercorn, through the plugin's ``live_server``."""

import json

import pytest
import ws_auth

from trioweb import TrioWeb
from trioweb.testing.pytest_plugin import LiveServer


@pytest.fixture
def app() -> TrioWeb:
    """This module serves ws_auth's app instead of conftest.py's."""
    return ws_auth.app


async def test_inbox_over_a_real_connection(live_server: LiveServer) -> None:
    """Served by Hypercorn, the inbox greets a trio-websocket client."""
    async with live_server.websocket("/inbox?token=tok-ada-7f3a") as connection:
        assert json.loads(await connection.get_message()) == {"user": "ada", "unread": 0}
        await connection.send_message("over the network")
        reply = json.loads(await connection.get_message())
        assert reply == {"user": "ada", "echo": "over the network"}
