"""The app of proxy.py behind a TLS proxy: the test client sends what the proxy would."""

import proxy
from hypercorn.middleware import ProxyFixMiddleware

from trioweb.testing import TestClient

FORWARDED = {"Forwarded": "for=203.0.113.7;proto=https;host=notes.example.com"}
X_FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "notes.example.com",
}


async def test_the_request_sees_the_clients_url_and_address() -> None:
    """Behind a proxy that sends Forwarded, the request has the client's URL and address."""
    wrapped = ProxyFixMiddleware(proxy.app, mode="modern", trusted_hops=1)
    async with TestClient(wrapped) as client:
        response = await client.get("/whoami", headers=FORWARDED)
    seen = await response.get_json()
    assert seen["url"] == "https://notes.example.com/whoami"
    assert seen["remote_addr"] == "203.0.113.7"
    assert seen["feed"] == "wss://notes.example.com/feed"


async def test_the_websocket_is_secure() -> None:
    """Behind a proxy that sends X-Forwarded-*, the websocket is secure and has the client's
    address."""
    async with (
        TestClient(proxy.asgi_app) as client,
        client.websocket("/feed", headers=X_FORWARDED) as ws,
    ):
        seen = await ws.receive_json()
    assert seen["secure"] is True
    assert seen["remote_addr"] == "203.0.113.7"
