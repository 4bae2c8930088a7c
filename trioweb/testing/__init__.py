"""Testing trioweb apps: an in-process ASGI client (and, with pytest, fixtures)."""

from ._client import TestClient as TestClient
from ._client import TestResponse as TestResponse
from ._websocket import TestWebsocket as TestWebsocket
from ._websocket import WebsocketDisconnectError as WebsocketDisconnectError
from ._websocket import WebsocketResponseError as WebsocketResponseError

__all__ = [
    "TestClient",
    "TestResponse",
    "TestWebsocket",
    "WebsocketDisconnectError",
    "WebsocketResponseError",
]
