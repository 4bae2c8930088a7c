"""Hooks: check every request, share data with ``g``, adjust responses, release resources."""

from trioweb import Response, TrioWeb, g, request

app = TrioWeb(__name__)

API_KEYS = {"secret-key": "ada"}


class Pool:
    """Stands in for a database connection pool."""

    def __init__(self) -> None:
        self.in_use = 0

    async def acquire(self) -> str:
        self.in_use += 1
        return "connection"

    async def release(self, connection: str) -> None:
        self.in_use -= 1


pool = Pool()


@app.before_request
async def authenticate() -> tuple[dict[str, str], int] | None:
    user = API_KEYS.get(request.headers.get("X-API-Key", ""))
    if user is None:
        return {"error": "send a valid X-API-Key header"}, 401
    g.user = user
    g.db = await pool.acquire()
    return None


@app.after_request
async def forbid_caching(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@app.teardown_request
async def release_connection(error: BaseException | None) -> None:
    db = getattr(g, "db", None)
    if db is not None:
        await pool.release(db)


@app.get("/me")
async def me() -> dict[str, str]:
    return {"user": g.user}
