"""An app served behind a proxy that terminates TLS (``hypercorn -k trio proxy:asgi_app``).

The proxy speaks HTTPS and WSS to clients and plain HTTP to the app, and says in its headers what
the client saw. Hypercorn's ProxyFixMiddleware, wrapped around the app, puts that back in the
ASGI scope, so the request and the websocket see the client's scheme, host and address.
"""

from hypercorn.middleware import ProxyFixMiddleware

from trioweb import TrioWeb, request, url_for, websocket

app = TrioWeb(__name__)


@app.get("/whoami")
async def whoami() -> dict[str, object]:
    return {
        "scheme": request.scheme,
        "secure": request.is_secure,
        "url": request.url,
        "remote_addr": request.remote_addr,
        "feed": url_for("feed", _external=True),
    }


@app.websocket("/feed")
async def feed() -> None:
    await websocket.accept()
    await websocket.send_json(
        {
            "scheme": websocket.scheme,
            "secure": websocket.is_secure,
            "url": websocket.url,
            "remote_addr": websocket.remote_addr,
        }
    )


#: What the server runs: the app behind one proxy that sends X-Forwarded-For, -Proto and -Host.
asgi_app = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)
