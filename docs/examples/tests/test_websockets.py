"""Tests for the websocket inbox of ws_auth.py, through the plugin's ``client`` fixture."""

import pytest
import ws_auth

from trioweb import TrioWeb
from trioweb.testing import TestClient

ADA = {"Authorization": "Bearer tok-ada-7f3a"}


@pytest.fixture
def app() -> TrioWeb:
    """This module tests ws_auth's app instead of conftest.py's."""
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
