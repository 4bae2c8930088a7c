"""Tests for the tutorial's notes app, through the ``client`` fixture of trioweb's plugin."""

from trioweb.testing import TestClient


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
