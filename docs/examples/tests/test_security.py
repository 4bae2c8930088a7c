"""The Origin check of security.py: what a browser on another site gets."""

import pytest
import security

from trioweb.testing import WebsocketResponseError


async def test_a_page_of_another_site_is_refused() -> None:
    """A handshake from a page of another site is refused with 403; the handler never runs."""
    async with security.app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/chat", headers={"Origin": "https://evil.example"}):
                pass
        assert refused.value.response.status_code == 403
        metrics = await (await client.get("/metrics")).get_json()
    assert metrics["websockets_refused_origin"] >= 1


async def test_allowed_pages_and_other_clients_connect() -> None:
    """The app's own pages, the listed ones and clients that send no Origin connect."""
    allowed = [
        {},  # not a browser: no Origin
        {"Origin": "http://localhost"},  # the app's own origin (the test client's host)
        {"Origin": "https://app.example.com"},
        {"Origin": "https://eu.app.example.com"},
    ]
    async with security.app.test_client() as client:
        for headers in allowed:
            async with client.websocket("/chat", headers=headers) as ws:
                await ws.send("hi")
                assert await ws.receive() == "hi"
