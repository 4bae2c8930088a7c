"""Serving from your own Trio program: ``trioweb.serve`` started with ``nursery.start``."""

from functools import partial

import trio

from trioweb import TrioWeb, serve

app = TrioWeb(__name__)


@app.get("/")
async def index() -> str:
    return "Served from inside a Trio program\n"


async def main(port: int = 8000) -> None:
    """Serve ``app`` until Ctrl+C, next to whatever else the program runs."""
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve, app, port=port))
        print(f"serving on {url}")
        # nursery.start_soon(...): the program's other tasks go here


async def serve_until(
    stop: trio.Event, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``app`` on a free port until ``stop`` is set; ``nursery.start`` gives the URL."""
    await serve(app, port=0, shutdown_trigger=stop.wait, task_status=task_status)


if __name__ == "__main__":
    trio.run(main)
