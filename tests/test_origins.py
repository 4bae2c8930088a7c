"""The Origin check of websocket handshakes (CSWSH): a foreign Origin gets 403 before any hook
or handler runs, no Origin and the app's own origin (as the client saw it, after a proxy
middleware) pass, and WEBSOCKET_ALLOWED_ORIGINS, a blueprint's websocket_allowed_origins and a
route's allowed_origins widen it, the route's first."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from _docs import load_example
from _e2e import served
from hypercorn.middleware import ProxyFixMiddleware

from trioweb import Blueprint, TrioWeb, websocket
from trioweb._origins import OriginPolicy, is_foreign, own_origin, parse_origin
from trioweb.testing import TestClient, WebsocketResponseError

# Matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("https://app.example.com", ("https", "app.example.com", 443)),
        ("HTTPS://App.Example.COM:443", ("https", "app.example.com", 443)),
        ("http://localhost:8000", ("http", "localhost", 8000)),
        ("http://127.0.0.1", ("http", "127.0.0.1", 80)),
        ("http://[::1]:8080", ("http", "[::1]", 8080)),
        ("chrome-extension://abcdef", ("chrome-extension", "abcdef", None)),
        ("https://app.example.com/", None),  # a path, even a slash
        ("https://app.example.com/x", None),
        ("https://user@app.example.com", None),
        ("https://app.example.com:99999", None),
        ("https://app.example.com:", None),
        ("app.example.com", None),
        ("https://", None),
        ("https://a..example.com", None),
        ("https://.example.com", None),
        ("null", None),
        ("", None),
        ("https://app.example.com\r\nX: y", None),
    ],
)
def test_parse_origin(text: str, parsed: tuple[str, str, int | None] | None) -> None:
    """An origin is scheme://host[:port], compared in lower case with the default port filled
    in; anything else does not parse."""
    assert parse_origin(text) == parsed


ALLOWED = [
    "https://app.example.com",
    "http://localhost:8000",
    "https://*.example.org",
    "https://*.ports.example:8443",
]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://app.example.com:443", True),  # default port normalised
        ("https://APP.example.com", True),
        ("http://app.example.com", False),  # scheme matters
        ("https://app.example.com:8443", False),  # port matters
        ("https://evil.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("http://localhost:8000", True),
        ("http://localhost", False),
        ("https://a.example.org", True),
        ("https://a.b.c.example.org", True),  # any depth
        ("https://example.org", False),  # not the domain itself
        ("https://badexample.org", False),
        ("http://a.example.org", False),  # a wildcard's scheme must match
        ("https://a.example.org:444", False),
        ("https://a.ports.example:8443", True),
        ("https://a.ports.example", False),
        ("null", False),  # foreign unless listed
        ("https://app.example.com/", False),  # malformed is foreign
        ("garbage", False),
    ],
)
def test_policy_matching(origin: str, allowed: bool) -> None:
    """Exact origins compare scheme, host and port; wildcards take subdomains at any depth."""
    policy = OriginPolicy.parse(ALLOWED, "test")
    scope = {"scheme": "ws", "headers": [(b"host", b"server.test")]}
    assert is_foreign(scope, origin, policy) is not allowed


def test_star_and_null_entries() -> None:
    """'*' allows any origin, malformed ones too; 'null' allows the opaque origin only."""
    scope = {"scheme": "ws", "headers": [(b"host", b"server.test")]}
    anything = OriginPolicy.parse(["*"], "test")
    assert not is_foreign(scope, "https://evil.example", anything)
    assert not is_foreign(scope, "null", anything)
    null = OriginPolicy.parse(["NULL"], "test")
    assert not is_foreign(scope, "null", null)
    assert is_foreign(scope, "https://evil.example", null)


@pytest.mark.parametrize(
    ("scheme", "host", "own"),
    [
        ("ws", b"localhost", ("http", "localhost", 80)),
        ("wss", b"app.example.com", ("https", "app.example.com", 443)),
        ("wss", b"app.example.com:8443", ("https", "app.example.com", 8443)),
        ("https", b"app.example.com", ("https", "app.example.com", 443)),  # nginx says https
        ("ws", b"bad host", None),
        ("ws", None, None),
    ],
)
def test_own_origin_is_the_page_scheme_and_host(
    scheme: str, host: bytes | None, own: tuple[str, str, int] | None
) -> None:
    """The app's own origin: ws -> http, wss -> https, and the Host header."""
    headers = [] if host is None else [(b"host", host)]
    assert own_origin({"scheme": scheme, "headers": headers}) == own


@pytest.mark.parametrize(
    ("entries", "hint"),
    [
        ("https://app.example.com", "not the string 'https://app.example.com': write"),
        (["app.example.com"], 'add the scheme: "https://app.example.com"'),
        (["https://app.example.com/"], "no path, not even a trailing slash"),
        (["https://*"], "is not an origin"),
        (["https://*.*.example.com"], "is not an origin"),
        (["https://*.[::1]"], "is not an origin"),
        (["https://app.example.com:99999"], "is not an origin"),
        ([42], "42 is not a string"),
    ],
)
def test_invalid_entries_say_how_to_fix_them(entries: Any, hint: str) -> None:
    """A policy that cannot be parsed is a ValueError naming the entry and the accepted forms."""
    with pytest.raises(ValueError, match="where") as raised:
        OriginPolicy.parse(entries, "where")
    assert hint in str(raised.value)


# Through the app -----------------------------------------------------------------------------


def origin_app(**config: Any) -> tuple[TrioWeb, list[str]]:
    """An app whose /ws handler and hooks record that they ran."""
    app = TrioWeb(__name__)
    app.config.update(config)
    ran: list[str] = []

    @app.before_websocket
    async def before() -> None:
        ran.append("before")

    @app.websocket("/ws")
    async def ws() -> None:
        ran.append("handler")
        await websocket.send("hello")

    return app, ran


async def handshake(app: Any, path: str = "/ws", origin: str | None = None, **kwargs: Any) -> int:
    """The handshake's status: 101 if accepted, else the refusal's."""
    headers = dict(kwargs.pop("headers", {}))
    if origin is not None:
        headers["Origin"] = origin
    async with TestClient(app) as client:
        try:
            async with client.websocket(path, headers=headers, **kwargs) as ws:
                assert await ws.receive() == "hello"
        except WebsocketResponseError as error:
            return int(error.response.status_code)
    return 101


@pytest.mark.parametrize(
    ("origin", "scheme", "status"),
    [
        (None, "ws", 101),  # not a browser
        ("http://localhost", "ws", 101),  # the app's own origin (the test client's Host)
        ("http://localhost:80", "ws", 101),
        ("https://localhost", "wss", 101),
        ("https://localhost", "ws", 403),
        ("http://localhost:8000", "ws", 403),
        ("https://evil.example", "ws", 403),
        ("null", "ws", 403),
        ("http://localhost/", "ws", 403),
    ],
)
async def test_a_foreign_origin_is_refused_by_default(
    origin: str | None, scheme: str, status: int
) -> None:
    """With the default (no origins listed), only the app's own origin, or none, passes."""
    app, _ = origin_app()
    assert await handshake(app, origin=origin, scheme=scheme) == status


async def test_a_refused_handshake_runs_no_hook_and_no_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 403 comes before before_websocket and the handler, with one INFO line naming the
    origin and the route; the refusal is counted."""
    app, ran = origin_app()
    with caplog.at_level(logging.INFO, logger="trioweb"):
        assert await handshake(app, origin="https://evil.example") == 403
    assert ran == []
    lines = [r for r in caplog.records if r.name == "trioweb"]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert "'https://evil.example'" in lines[0].getMessage()
    assert "route /ws" in lines[0].getMessage()
    assert app.stats().websockets_refused_origin == 1
    assert app.stats().websockets_open == 0


async def test_after_and_teardown_hooks_see_the_refusal() -> None:
    """As for any refused handshake, after_websocket gets the 403 response and may change it;
    teardown_websocket runs with no error."""
    app, ran = origin_app()
    seen: list[Any] = []

    @app.after_websocket
    async def after(response: Any) -> Any:
        seen.append(response.status_code)
        response.headers["X-Seen"] = "yes"
        return response

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    async with TestClient(app) as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/ws", headers={"Origin": "https://evil.example"}):
                pass  # pragma: no cover
    assert refused.value.response.headers["X-Seen"] == "yes"
    assert await refused.value.response.get_data() == (
        b"This page's origin may not open this websocket."
    )
    assert seen == [403, None]
    assert ran == []


async def test_a_handshake_to_no_route_with_a_foreign_origin_is_refused() -> None:
    """The check runs before routing errors: a foreign page learns nothing about the routes."""
    app, _ = origin_app()
    assert await handshake(app, "/nowhere", origin="https://evil.example") == 403
    assert await handshake(app, "/nowhere", origin="http://localhost") == 404


@pytest.mark.parametrize(
    ("allowed", "origin", "status"),
    [
        (["https://app.example.com"], "https://app.example.com", 101),
        (["https://app.example.com"], "https://other.example.com", 403),
        (["https://app.example.com"], "http://localhost", 101),  # its own origin stays allowed
        (["https://*.example.com"], "https://a.b.example.com", 101),
        (["*"], "https://evil.example", 101),
        (["null"], "null", 101),
    ],
)
async def test_config_lists_more_origins(allowed: list[str], origin: str, status: int) -> None:
    """WEBSOCKET_ALLOWED_ORIGINS adds origins to the app's own."""
    app, _ = origin_app(WEBSOCKET_ALLOWED_ORIGINS=allowed)
    assert await handshake(app, origin=origin) == status


async def test_config_changes_are_seen() -> None:
    """The config is read on each handshake, so a change applies to the next one; an invalid
    entry fails the handshake with a 500, and the error, raised to the server, says how to fix
    it."""
    app, _ = origin_app()
    origin = "https://app.example.com"
    assert await handshake(app, origin=origin) == 403
    app.config["WEBSOCKET_ALLOWED_ORIGINS"] = [origin]
    assert await handshake(app, origin=origin) == 101
    app.config["WEBSOCKET_ALLOWED_ORIGINS"].append("app.example.org")  # mutated in place
    invalid = pytest.RaisesExc(ValueError, match=r"WEBSOCKET_ALLOWED_ORIGINS.*add the scheme")
    with pytest.RaisesGroup(invalid, flatten_subgroups=True):
        await handshake(app, origin=origin)


def layered_app() -> TrioWeb:
    """Routes with their own policy, a blueprint's, a nested blueprint's, and the config's."""
    app = TrioWeb(__name__)
    app.config["WEBSOCKET_ALLOWED_ORIGINS"] = ["https://config.example"]

    async def hello() -> None:
        await websocket.send("hello")

    outer = Blueprint("outer", __name__, websocket_allowed_origins=["https://outer.example"])
    inner = Blueprint("inner", __name__)
    own = Blueprint("own", __name__, websocket_allowed_origins=["https://own.example"])
    outer.add_url_rule("/plain", "plain", hello, websocket=True)
    outer.add_url_rule(
        "/route", "route", hello, websocket=True, allowed_origins=["https://route.example"]
    )
    inner.add_url_rule("/inner", "inner", hello, websocket=True)
    own.add_url_rule("/own", "own", hello, websocket=True)
    inner.register_blueprint(own, url_prefix="/own")
    outer.register_blueprint(inner, url_prefix="/inner")
    app.register_blueprint(outer, url_prefix="/outer")
    app.websocket("/app", allowed_origins=["https://app.example"])(hello)
    app.add_url_rule("/config", "config", hello, websocket=True)
    return app


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        ("/app", "https://app.example", 101),  # the route's
        ("/app", "https://config.example", 403),  # ... instead of the config's
        ("/config", "https://config.example", 101),
        ("/outer/plain", "https://outer.example", 101),  # the blueprint's
        ("/outer/plain", "https://config.example", 403),  # ... instead of the config's
        ("/outer/route", "https://route.example", 101),  # the route's wins
        ("/outer/route", "https://outer.example", 403),
        ("/outer/inner/inner", "https://outer.example", 101),  # the parent's, inherited
        ("/outer/inner/own/own", "https://own.example", 101),  # the innermost set wins
        ("/outer/inner/own/own", "https://outer.example", 403),
    ],
)
async def test_the_route_wins_then_the_blueprint_then_the_config(
    path: str, origin: str, status: int
) -> None:
    """A route's allowed_origins, else the innermost blueprint's that sets one, else config."""
    assert await handshake(layered_app(), path, origin=origin) == status


def test_invalid_policies_fail_at_registration() -> None:
    """An invalid origin on a route or blueprint is a ValueError when it is registered; on an
    HTTP route, allowed_origins is a TypeError."""
    app = TrioWeb(__name__)

    async def view() -> None:
        pass  # pragma: no cover

    with pytest.raises(ValueError, match=r"allowed_origins of '/ws'.*add the scheme"):
        app.websocket("/ws", allowed_origins=["example.com"])(view)
    assert "view" not in app.view_functions
    with pytest.raises(TypeError, match="websocket routes only"):
        app.add_url_rule("/page", "page", view, allowed_origins=["*"])
    with pytest.raises(ValueError, match="blueprint 'bp'"):
        Blueprint("bp", __name__, websocket_allowed_origins="https://a.example")
    bp = Blueprint("bp", __name__)
    with pytest.raises(ValueError, match="trailing slash"):
        bp.websocket("/ws", allowed_origins=["https://a.example/"])(view)
    with pytest.raises(TypeError, match="websocket routes only"):
        bp.route("/page", allowed_origins=["*"])(view)


async def test_the_check_sees_what_a_proxy_middleware_puts_in_the_scope() -> None:
    """Behind ProxyFixMiddleware, the app's own origin is the one the client saw (the
    forwarded scheme and host): the page https://notes.example.com may connect."""
    app, _ = origin_app()
    wrapped = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "notes.example.com"}
    page = "https://notes.example.com"
    assert await handshake(wrapped, origin=page, headers=forwarded) == 101
    assert await handshake(app, origin=page, headers=forwarded) == 403  # no middleware
    nginx = {"X-Forwarded-Proto": "wss", "X-Forwarded-Host": "notes.example.com"}
    assert await handshake(wrapped, origin=page, headers=nginx) == 101
    assert await handshake(wrapped, origin="http://notes.example.com", headers=forwarded) == 403


# As the security page shows (docs/examples/security.py) ------------------------------------

security_example = load_example("security")


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        ("/chat", "https://app.example.com", 101),
        ("/chat", "https://eu.app.example.com", 101),
        ("/chat", "https://partner.example.net", 403),
        ("/widget", "https://anyone.example", 101),
        ("/partners/feed", "https://partner.example.net", 101),
        ("/partners/feed", "https://app.example.com", 403),
        ("/partners/feed", "http://localhost", 101),
    ],
)
async def test_security_example_origins(path: str, origin: str, status: int) -> None:
    """The config's list for /chat, any page for the widget, the partner's for its blueprint."""
    assert await handshake_status(security_example.app, path, origin) == status


async def handshake_status(app: TrioWeb, path: str, origin: str) -> int:
    """101 if a handshake from ``origin`` is accepted, else the refusal's status."""
    async with TestClient(app) as client:
        try:
            async with client.websocket(path, headers={"Origin": origin}) as ws:
                if path == "/chat":
                    await ws.send("hi")
                    assert await ws.receive() == "hi"
                else:
                    assert await ws.receive()
        except WebsocketResponseError as error:
            return int(error.response.status_code)
    return 101


async def test_security_example_metrics() -> None:
    """/metrics shows the app's counts."""
    app = security_example.app
    async with TestClient(app) as client:
        before = await (await client.get("/metrics")).get_json()
        assert await handshake_status(app, "/chat", "https://evil.example") == 403
        after = await (await client.get("/metrics")).get_json()
    assert after["websockets_refused_origin"] == before["websockets_refused_origin"] + 1
    assert after["websockets_open"] == 0
    assert app.config["WEBSOCKET_IDLE_TIMEOUT"] == 300.0


# End to end --------------------------------------------------------------------------------


async def raw_handshake(port: int, origin: str | None) -> bytes:
    """The response head to a handshake sent by hand (Host 127.0.0.1:port)."""
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, data
            data += chunk
    return data.partition(b"\r\n\r\n")[0]


@pytest.mark.usefixtures("server")
async def test_a_foreign_origin_gets_403_from_a_real_server() -> None:
    """Served by Hypercorn (stock and layer): 403 for a foreign Origin, 101 for the app's own
    one and for none; no hook or handler ran for the refusal."""
    app, ran = origin_app()
    async with served(app) as client:
        port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
        head = await raw_handshake(port, "https://evil.example")
        assert head.startswith(b"HTTP/1.1 403"), head
        assert ran == []
        assert (await raw_handshake(port, f"http://127.0.0.1:{port}")).startswith(b"HTTP/1.1 101")
        assert (await raw_handshake(port, None)).startswith(b"HTTP/1.1 101")
    assert app.stats().websockets_refused_origin == 1
