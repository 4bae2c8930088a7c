"""Errors: ``abort``, exceptions of your own, handlers, and errors from inside a nursery."""

import trio
from werkzeug.exceptions import HTTPException, InternalServerError

from trioweb import TrioWeb, abort, request

app = TrioWeb(__name__)

STOCK = {"apple": 3, "pear": 0, "plum": 0}


class OutOfStock(Exception):
    """Raised when an item cannot be reserved; the handler below makes it a 409."""

    def __init__(self, item: str) -> None:
        super().__init__(f"{item} is out of stock")
        self.item = item


@app.get("/items/<name>")
async def show_item(name: str) -> dict[str, object]:
    if name not in STOCK:
        abort(404)
    return {"name": name, "stock": STOCK[name]}


@app.get("/members")
async def members_only() -> str:
    abort(403, "Members only: log in first.")


async def reserve(item: str) -> None:
    if STOCK.get(item, 0) == 0:
        raise OutOfStock(item)
    await trio.lowlevel.checkpoint()  # stands in for a call to the stock service


@app.post("/basket")
async def reserve_basket() -> dict[str, list[str]]:
    items = request.args.getlist("item")
    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(reserve, item)
    return {"reserved": items}


@app.get("/broken")
async def broken() -> str:
    raise RuntimeError("a bug")


@app.errorhandler(404)
async def not_found(error: HTTPException) -> tuple[dict[str, str], int]:
    return {"error": "no such page"}, 404


@app.errorhandler(OutOfStock)
async def out_of_stock(error: OutOfStock) -> tuple[dict[str, str], int]:
    return {"error": str(error), "item": error.item}, 409


@app.errorhandler(500)
async def server_error(error: InternalServerError) -> tuple[dict[str, str], int]:
    return {"error": "something went wrong on our side"}, 500
