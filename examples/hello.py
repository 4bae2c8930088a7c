"""The smallest trioweb app: ``trioweb run --app examples.hello:app`` (or ``python -m``)."""

from trioweb import TrioWeb, request

app = TrioWeb(__name__)


@app.route("/")
async def index() -> str:
    return "Hello from trioweb!\n"


@app.route("/hello/<name>")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name, "user_agent": request.headers.get("User-Agent", "")}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
