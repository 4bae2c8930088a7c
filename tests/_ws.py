"""Helpers for tests of websockets through the test client."""

from __future__ import annotations

from typing import Any

import pytest

from trioweb import TrioWeb
from trioweb.testing import (
    TestResponse,
    TestWebsocket,
    WebsocketDisconnectError,
    WebsocketResponseError,
)


async def closed_by_app(ws: TestWebsocket) -> tuple[int, str, list[str | bytes]]:
    """Read until the app closes: its close code and reason, and the messages before them."""
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await ws.receive())
        except WebsocketDisconnectError as closed:
            return closed.code, closed.reason, messages


async def refusal(app: TrioWeb, path: str, **kwargs: Any) -> TestResponse:
    """The HTTP response with which ``app`` refuses a websocket handshake to ``path``."""
    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket(path, **kwargs):
                pass
    response: TestResponse = refused.value.response
    return response


def leaves(error: BaseException) -> list[type[BaseException]]:
    """The types of the exceptions in ``error``, a group's leaves depth first."""
    if isinstance(error, BaseExceptionGroup):
        return [kind for inner in error.exceptions for kind in leaves(inner)]
    return [type(error)]
