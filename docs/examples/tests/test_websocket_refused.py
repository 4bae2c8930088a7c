"""A refused websocket handshake: entering the block raises WebsocketResponseError."""

import pytest
import ws_auth

from trioweb.testing import WebsocketResponseError


async def test_inbox_without_a_token_is_refused() -> None:
    """No token: the handshake is answered with HTTP 401."""
    async with ws_auth.app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/inbox"):
                pass
    assert refused.value.response.status_code == 401
