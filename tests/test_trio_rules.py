"""Trio's rule for trioweb's own async API: every call is a checkpoint, on its success paths and
on the paths where it raises, so a caller that loops around it always yields. (The websocket's
methods have their own table in test_websocket.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import trio
import trio.testing
from werkzeug.exceptions import BadRequest, NotFound, UnsupportedMediaType

from trioweb import (
    Response,
    TrioWeb,
    make_response,
    render_template,
    render_template_string,
    request,
    send_file,
    send_from_directory,
)

HERE = Path(__file__).parent

CASES: list[tuple[str, Callable[[], Awaitable[Any]], type[Exception] | None]] = [
    ("get_data", lambda: request.get_data(), None),
    ("get_data again", lambda: request.get_data(), None),
    ("get_json, not JSON", lambda: request.get_json(), UnsupportedMediaType),
    ("get_json, not JSON, silent", lambda: request.get_json(silent=True), None),
    ("get_json, forced, malformed", lambda: request.get_json(force=True), BadRequest),
    ("form", lambda: request.form, None),
    ("make_response", lambda: make_response("x"), None),
    ("make_response, bad value", lambda: make_response(object()), TypeError),
    ("render_template_string", lambda: render_template_string("{{ 1 }}"), None),
    ("render_template, missing", lambda: render_template("nowhere.html"), jinja2.TemplateNotFound),
    ("send_file", lambda: send_file(__file__), None),
    ("send_file, missing", lambda: send_file(HERE / "nowhere"), NotFound),
    ("send_from_directory, escaping", lambda: send_from_directory(HERE, "../x"), NotFound),
    ("Response.get_data", lambda: Response("x").get_data(), None),
    ("Response.get_json, not JSON", lambda: Response("x").get_json(), ValueError),
]


@pytest.mark.parametrize(("call", "error"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
async def test_every_call_is_a_checkpoint(
    call: Callable[[], Awaitable[Any]], error: type[Exception] | None
) -> None:
    """The call yields to the scheduler and checks for cancellation, whether or not it
    raises."""
    app = TrioWeb(__name__)
    checked: list[bool] = []

    @app.post("/")
    async def view() -> str:
        await request.get_data()  # so that "again" paths are cached ones
        with trio.testing.assert_checkpoints():
            if error is None:
                await call()
            else:
                with pytest.raises(error):
                    await call()
        checked.append(True)
        return "ok"

    async with app.test_client() as client:
        response = await client.post("/", data=b"{not json", headers={"Content-Type": "text/x"})
    assert response.status_code == 200
    assert checked == [True]


async def test_the_lifespan_functions_are_checkpoints() -> None:
    """app.startup() and app.shutdown() checkpoint even with nothing registered."""
    app = TrioWeb(__name__)
    with trio.testing.assert_checkpoints():
        await app.startup()
    with trio.testing.assert_checkpoints():
        await app.shutdown()
