"""Tests for the tutorial's notes app, as they would sit in ``tests/test_notes.py``."""

from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
import trio.testing
from notes import app

from trioweb import LifespanError, TrioWeb
from trioweb.testing import TestClient


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with app.test_client() as client:
        yield client


async def test_index_says_hello(client: TestClient) -> None:
    """The home page answers 200 with a greeting."""
    response = await client.get("/")
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == "Hello from the notes app!\n"


async def test_added_note_can_be_read_back(client: TestClient) -> None:
    """A posted note gets an id, a Location header, and is served there."""
    response = await client.post("/notes", json={"text": "buy milk"})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location == "/notes/2"

    response = await client.get(location)
    assert await response.get_json() == {"id": 2, "text": "buy milk"}


async def test_note_without_text_is_rejected(client: TestClient) -> None:
    """A body without a text field is a 400."""
    response = await client.post("/notes", json={"title": "no text"})
    assert response.status_code == 400


async def test_unknown_note_is_not_found(client: TestClient) -> None:
    """An id that names no note is a 404."""
    response = await client.get("/notes/99")
    assert response.status_code == 404


async def test_requests_run_concurrently(client: TestClient) -> None:
    """Two requests sent at once are both served."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(client.post, "/notes", json={"text": "one"}))
        nursery.start_soon(partial(client.post, "/notes", json={"text": "two"}))
    response = await client.get("/notes")
    texts = {note["text"] for note in (await response.get_json())["notes"]}
    assert texts == {"Try trioweb", "one", "two"}


async def test_background_task_runs() -> None:
    """A background task started by a view runs once the view has answered."""
    app = TrioWeb(__name__)
    sent: list[str] = []

    async def send_welcome(name: str) -> None:
        sent.append(name)

    @app.post("/welcome/<name>")
    async def welcome(name: str) -> tuple[str, int]:
        app.add_background_task(send_welcome, name)
        return "", 202

    async with app.test_client() as client:
        response = await client.post("/welcome/ada")
        assert response.status_code == 202
        await trio.testing.wait_all_tasks_blocked()
        assert sent == ["ada"]


async def test_failing_background_task_fails_the_test() -> None:
    """An exception in a background task is raised when the client exits."""
    app = TrioWeb(__name__)

    async def send_welcome(name: str) -> None:
        raise ConnectionRefusedError("the mail server is down")

    @app.post("/welcome/<name>")
    async def welcome(name: str) -> tuple[str, int]:
        app.add_background_task(send_welcome, name)
        return "", 202

    with pytest.raises(ConnectionRefusedError, match="mail server"):
        async with app.test_client() as client:
            await client.post("/welcome/ada")


async def test_failing_startup_is_reported() -> None:
    """A before_serving function that raises makes the client raise LifespanError."""
    app = TrioWeb(__name__)

    @app.before_serving
    async def connect() -> None:
        raise ConnectionRefusedError("the database is down")

    with pytest.raises(LifespanError) as info:
        async with app.test_client():
            pass
    assert info.value.phase == "startup"
    assert "the database is down" in info.value.message


async def test_slow_view_on_a_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """With autojump_clock, a view that sleeps three seconds answers at once."""
    app = TrioWeb(__name__)

    @app.get("/slow")
    async def slow() -> str:
        await trio.sleep(3)
        return "done"

    async with app.test_client() as client:
        response = await client.get("/slow")
    assert await response.get_data() == b"done"
