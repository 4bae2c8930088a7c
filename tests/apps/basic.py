"""A one-route app for the command-line tests; it reports its lifespan on stderr."""

import sys

from trioweb import TrioWeb

app = TrioWeb(__name__)


@app.before_serving
async def announce_start() -> None:
    print("basic: before_serving ran", file=sys.stderr, flush=True)


@app.after_serving
async def announce_stop() -> None:
    print("basic: after_serving ran", file=sys.stderr, flush=True)


@app.route("/")
async def index() -> str:
    return "basic"
