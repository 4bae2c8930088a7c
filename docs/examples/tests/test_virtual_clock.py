"""A view that sleeps, tested on pytest-trio's virtual clock: no real time passes."""

import trio

from trioweb import TrioWeb


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
