"""Testing trioweb apps: an in-process ASGI client (and, with pytest, fixtures)."""

from ._client import TestClient as TestClient
from ._client import TestResponse as TestResponse

__all__ = ["TestClient", "TestResponse"]
