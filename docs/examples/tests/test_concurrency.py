"""Two clients at once: requests started in a nursery run concurrently."""

from functools import partial

import trio

from trioweb.testing import TestClient


async def test_requests_run_concurrently(client: TestClient) -> None:
    """Two requests sent at once are both served."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(client.post, "/notes", json={"text": "one"}))
        nursery.start_soon(partial(client.post, "/notes", json={"text": "two"}))
    response = await client.get("/notes")
    texts = {note["text"] for note in (await response.get_json())["notes"]}
    assert texts == {"Try trioweb", "one", "two"}
