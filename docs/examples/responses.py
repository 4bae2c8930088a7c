"""Responses: what a view may return, and the helpers that build responses."""

from collections.abc import AsyncIterator

import trio

from trioweb import Response, TrioWeb, jsonify, make_response, redirect, url_for

app = TrioWeb(__name__)


@app.get("/text")
async def text() -> str:
    return "Plain text, sent as text/html; charset=utf-8\n"


@app.get("/data")
async def data() -> dict[str, object]:
    return {"name": "trioweb", "tags": ["trio", "web"]}


@app.get("/teapot")
async def teapot() -> tuple[str, int]:
    return "I'm a teapot\n", 418


@app.post("/things")
async def create_thing() -> tuple[dict[str, int], int, dict[str, str]]:
    return {"id": 1}, 201, {"Location": "/things/1"}


@app.get("/list")
async def as_list() -> Response:
    return jsonify(1, 2, 3)


@app.get("/csv")
async def csv() -> Response:
    response = await make_response("id,name\n1,trioweb\n")
    response.mimetype = "text/csv"
    response.set_cookie("seen", "yes", httponly=True)
    return response


@app.get("/old-text")
async def old_text() -> Response:
    return redirect(url_for("text"), 301)


@app.get("/countdown")
async def countdown() -> Response:
    async def lines() -> AsyncIterator[str]:
        for n in range(3, 0, -1):
            yield f"{n}...\n"
            await trio.sleep(1)  # a pause between chunks, for the example
        yield "liftoff!\n"

    return Response(lines(), mimetype="text/plain")
