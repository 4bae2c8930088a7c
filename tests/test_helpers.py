"""View helpers not covered elsewhere: `make_response`."""

from __future__ import annotations

from typing import Any

import pytest

from trioweb import Response, TrioWeb, make_response


@pytest.mark.parametrize(
    ("args", "status", "body", "header"),
    [
        (("plain",), 200, b"plain", None),
        (({"a": 1},), 200, b'{"a":1}', None),
        (("made", 201), 201, b"made", None),
        (("made", 202, {"X-A": "1"}), 202, b"made", "1"),
        ((("tuple", 203),), 203, b"tuple", None),
    ],
)
async def test_make_response(
    args: tuple[Any, ...], status: int, body: bytes, header: str | None
) -> None:
    """`await make_response(...)` turns a return value, or its parts as arguments, into a
    Response a view can change before returning it."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Response:
        response = await make_response(*args)
        response.headers["X-Made"] = "yes"
        return response

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == status
    assert await response.get_data() == body
    assert response.headers.get("X-A") == header
    assert response.headers["X-Made"] == "yes"


async def test_make_response_outside_the_app_is_runtime_error() -> None:
    """`make_response` needs the current app."""
    with pytest.raises(RuntimeError, match="outside of application context"):
        await make_response("x")
