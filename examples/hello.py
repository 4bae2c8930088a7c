"""The smallest trioweb app: a page, a JSON route and a websocket echo.

Run it with ``trioweb run --app examples.hello:app`` (or ``python -m examples.hello``), then open
http://127.0.0.1:5000 or connect a websocket client to ws://127.0.0.1:5000/ws.
"""

from trioweb import TrioWeb, request, websocket

app = TrioWeb(__name__)


@app.route("/")
async def index() -> str:
    return "Hello from trioweb!\n"


@app.route("/hello/<name>")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name, "user_agent": request.headers.get("User-Agent", "")}


@app.websocket("/ws")
async def echo() -> None:
    async for message in websocket:  # str stays str, bytes stay bytes
        await websocket.send(message)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
