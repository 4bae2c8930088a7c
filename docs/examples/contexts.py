"""A resource opened with while_serving, work handed off with the request's context, and a script
that uses the app outside any request."""

from collections.abc import AsyncGenerator

import trio

from trioweb import TrioWeb, copy_current_request_context, request, url_for


class Settings:
    SERVER_NAME = "shop.example.com"  # for url_for outside a request
    PREFERRED_URL_SCHEME = "https"


app = TrioWeb(__name__)
app.config.from_object(Settings)  # or a module: app.config.from_object("shop.settings")


class Database:
    """Stands in for a connection pool."""

    def __init__(self) -> None:
        self.open = False
        self.rows: list[str] = []

    async def connect(self) -> None:
        await trio.lowlevel.checkpoint()
        self.open = True

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self.open = False


db = Database()


@app.while_serving
async def database() -> AsyncGenerator[None, None]:
    await db.connect()  # at startup, after the before_serving functions
    try:
        yield  # the app serves
    finally:
        await db.close()  # at shutdown, after the after_serving functions


@app.post("/orders")
async def create_order() -> tuple[dict[str, str], int]:
    order = await request.get_json()

    @copy_current_request_context
    async def audit() -> None:
        await trio.sleep(0.1)  # long after the response went out
        db.rows.append(f"{order['item']} ordered from {request.remote_addr} at {request.path}")

    app.add_background_task(audit)
    return {"status": "accepted"}, 202


@app.get("/orders/<int:order_id>")
async def show_order(order_id: int) -> str:
    return f"order {order_id}"


async def print_order_links(count: int) -> list[str]:
    """A script or command: no request, so url_for builds external URLs from SERVER_NAME."""
    async with app.app_context():
        return [url_for("show_order", order_id=n) for n in range(1, count + 1)]


if __name__ == "__main__":
    print("\n".join(trio.run(print_order_links, 3)))
