"""Safe-by-default settings spelled out: which pages may open the websockets, how many a worker
holds, when a silent one is closed, and the counts for a metrics endpoint."""

from trioweb import Blueprint, TrioWeb, websocket

app = TrioWeb(__name__)
app.config.update(
    # Pages of the app's own origin may always connect; these may too.
    WEBSOCKET_ALLOWED_ORIGINS=["https://app.example.com", "https://*.example.com"],
    WEBSOCKET_MAX_CONNECTIONS=5_000,  # per worker; 503 with Retry-After beyond it
    WEBSOCKET_IDLE_TIMEOUT=300.0,  # close a websocket the client left silent for 5 minutes
)


@app.websocket("/chat")
async def chat() -> None:
    async for message in websocket:
        await websocket.send(message)


# A widget that other sites embed: any page may open its websocket (it trusts no cookie).
@app.websocket("/widget", allowed_origins=["*"])
async def widget() -> None:
    await websocket.send("Hello from the widget")


# The partner API's websockets take pages of the partner's site, not the config's list.
partners = Blueprint(
    "partners", __name__, websocket_allowed_origins=["https://partner.example.net"]
)


@partners.websocket("/feed")
async def feed() -> None:
    await websocket.send("partner feed")


app.register_blueprint(partners, url_prefix="/partners")


@app.get("/metrics")
async def metrics() -> dict[str, int]:
    stats = app.stats()
    return {
        "websockets_open": stats.websockets_open,
        "websockets_refused_overload": stats.websockets_refused_overload,
        "websockets_refused_origin": stats.websockets_refused_origin,
        "websockets_closed_idle": stats.websockets_closed_idle,
    }
