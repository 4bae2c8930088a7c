"""An app whose ``before_serving`` fails, so that no server can start with it."""

from trioweb import TrioWeb

app = TrioWeb(__name__)


@app.before_serving
async def connect() -> None:
    raise RuntimeError("the database is unreachable")
