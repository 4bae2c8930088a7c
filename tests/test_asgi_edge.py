"""The HTTP side of the I/O edge: what happens around the pipeline when a client leaves."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trioweb import TrioWeb


async def test_an_error_dragged_out_by_a_disconnect_is_logged_not_leaked(
    asgi_peer: Any, http_scope: Any, caplog: pytest.LogCaptureFixture, autojump_clock: Any
) -> None:
    """A view whose nursery fails while a disconnect cancels it: logged, teardown sees it."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    async def fail_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("cleanup failed")

    @app.route("/")
    async def view() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail_when_cancelled)
            await trio.sleep_forever()  # its Cancelled joins the child's ValueError in a group
        return "never"  # pragma: no cover

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        seen.append(type(error).__name__)

    peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
    peer.disconnect()
    await app(http_scope("/"), peer.receive, peer.send)
    assert seen == ["ExceptionGroup"]
    assert "Error while answering GET /" in caplog.text
    assert peer.sent == []
