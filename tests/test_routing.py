"""Routing: rules and converters, method shortcuts, routing errors, url_for, abort and redirect."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _docs import load_example
from _ws import closed_by_app, refusal
from werkzeug.routing import BuildError

from trioweb import Blueprint, Response, TrioWeb, abort, redirect, request, url_for


async def test_converters_pass_typed_values_to_the_view() -> None:
    """`<int:id>` passes an int, `<path:p>` a string with slashes, `<name>` a plain string."""
    app = TrioWeb(__name__)

    @app.route("/users/<int:user_id>")
    async def user(user_id: int) -> dict[str, object]:
        return {"id": user_id, "type": type(user_id).__name__}

    @app.route("/files/<path:p>")
    async def files(p: str) -> str:
        return p

    @app.route("/hello/<name>")
    async def hello(name: str) -> str:
        return f"hello {name}"

    async with app.test_client() as client:
        assert await (await client.get("/users/42")).get_json() == {"id": 42, "type": "int"}
        assert await (await client.get("/files/a/b/c.txt")).get_data() == b"a/b/c.txt"
        assert await (await client.get("/hello/trio")).get_data() == b"hello trio"
        assert (await client.get("/users/abc")).status_code == 404


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
async def test_method_shortcuts_route_only_their_method(method: str) -> None:
    """`app.get/post/put/patch/delete` register a view for that method alone; others get 405."""
    app = TrioWeb(__name__)

    async def view() -> str:
        return f"{request.method} ok"

    getattr(app, method)("/thing")(view)
    other = "post" if method != "post" else "put"
    async with app.test_client() as client:
        response = await getattr(client, method)("/thing")
        assert response.status_code == 200
        assert await response.get_data() == f"{method.upper()} ok".encode()
        assert (await getattr(client, other)("/thing")).status_code == 405


async def test_route_with_several_methods() -> None:
    """`route(rule, methods=[...])` accepts each listed method (lower case too)."""
    app = TrioWeb(__name__)

    @app.route("/items", methods=["get", "POST"])
    async def items() -> str:
        return request.method

    async with app.test_client() as client:
        assert await (await client.get("/items")).get_data() == b"GET"
        assert await (await client.post("/items")).get_data() == b"POST"


async def test_unknown_route_is_404() -> None:
    """A path no rule matches answers 404."""
    app = TrioWeb(__name__)
    async with app.test_client() as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404
    assert b"Not Found" in await response.get_data()


async def test_wrong_method_is_405_with_allow() -> None:
    """A method the rule does not accept answers 405 and lists the accepted ones in `Allow`."""
    app = TrioWeb(__name__)

    @app.route("/only-post", methods=["POST"])
    async def only_post() -> str:
        return "posted"

    async with app.test_client() as client:
        response = await client.get("/only-post")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


async def test_options_is_answered_automatically_with_allow() -> None:
    """OPTIONS on a route whose view does not take it answers 200 with the allowed methods."""
    app = TrioWeb(__name__)
    calls: list[str] = []

    @app.route("/items", methods=["GET", "POST"])
    async def items() -> str:
        calls.append(request.method)  # pragma: no cover
        return "never for OPTIONS"  # pragma: no cover

    @app.route("/own", methods=["OPTIONS"])
    async def own() -> str:
        return "my own options"

    async with app.test_client() as client:
        automatic = await client.options("/items")
        handled = await client.options("/own")
    assert automatic.status_code == 200
    assert set(automatic.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert await automatic.get_data() == b""
    assert calls == []
    assert await handled.get_data() == b"my own options"


async def test_missing_trailing_slash_redirects_with_308() -> None:
    """A rule ending in `/` redirects the slash-less path with a 308 to the canonical URL."""
    app = TrioWeb(__name__)

    @app.route("/folder/")
    async def folder() -> str:
        return "folder"

    async with app.test_client() as client:
        response = await client.get("/folder", query_string={"a": "1"})
        assert response.status_code == 308
        assert response.headers["Location"] == "http://localhost/folder/?a=1"
        assert (await client.get("/folder/")).status_code == 200


async def test_http_request_to_a_websocket_route_is_400() -> None:
    """An HTTP request to a path that only has a websocket handler is a 400."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        raise AssertionError("not reached")

    async with app.test_client() as client:
        assert (await client.get("/ws")).status_code == 400


async def test_same_view_may_serve_several_rules() -> None:
    """Registering one function under one endpoint for two rules is allowed."""
    app = TrioWeb(__name__)

    async def page(n: int = 1) -> str:
        return f"page {n}"

    app.add_url_rule("/", "page", page)
    app.add_url_rule("/page/<int:n>", "page", page)
    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"page 1"
        assert await (await client.get("/page/3")).get_data() == b"page 3"


async def test_endpoint_defaults_to_function_name_and_can_be_given() -> None:
    """The endpoint is the function's name unless `endpoint=` names it."""
    app = TrioWeb(__name__)

    @app.route("/a")
    async def first() -> str:
        return url_for("first") + " " + url_for("custom")

    @app.route("/b", endpoint="custom")
    async def second() -> str:
        return "b"

    async with app.test_client() as client:
        assert await (await client.get("/a")).get_data() == b"/a /b"


async def test_duplicate_endpoint_is_value_error() -> None:
    """A second function under an endpoint already in use is refused with ValueError."""
    app = TrioWeb(__name__)

    @app.route("/one")
    async def view() -> str:
        return "one"

    async def other() -> str:
        return "other"

    with pytest.raises(ValueError, match="endpoint 'view' is already used"):
        app.add_url_rule("/two", "view", other)


async def test_registration_errors() -> None:
    """A missing view, a sync view and `methods="GET"` are refused with a TypeError saying why."""
    app = TrioWeb(__name__)

    def sync_view() -> str:
        return "sync"

    async def view() -> str:
        return "ok"

    with pytest.raises(TypeError, match="needs a view_func"):
        app.add_url_rule("/x")
    with pytest.raises(TypeError, match=r"async def"):
        app.route("/sync")(sync_view)
    with pytest.raises(TypeError, match=r"use \['GET'\]"):
        app.route("/str", methods="GET")(view)


async def test_async_callable_object_is_a_valid_view() -> None:
    """An object whose `__call__` is `async def` is accepted as a view."""
    app = TrioWeb(__name__)

    class View:
        async def __call__(self) -> str:
            return "called"

    app.add_url_rule("/obj", "obj", View())
    async with app.test_client() as client:
        assert await (await client.get("/obj")).get_data() == b"called"


# url_for ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"user_id": 7}, "/users/7"),
        ({"user_id": 7, "tab": "posts"}, "/users/7?tab=posts"),
        ({"user_id": 7, "_anchor": "bio section"}, "/users/7#bio%20section"),
        ({"user_id": 7, "_external": True}, "http://localhost/users/7"),
        ({"user_id": 7, "_scheme": "https", "_external": True}, "https://localhost/users/7"),
        ({"user_id": 7, "_scheme": "https"}, "https://localhost/users/7"),
        ({"user_id": 7, "_method": "POST"}, "/users/7"),
    ],
)
async def test_url_for_in_a_request(kwargs: dict[str, object], expected: str) -> None:
    """`url_for` builds relative URLs in a request, external ones on request, values the rule
    does not use go to the query string, and `_anchor` is quoted after `#`."""
    app = TrioWeb(__name__)

    @app.route("/users/<int:user_id>", methods=["GET", "POST"])
    async def user(user_id: int) -> str:
        return "user"

    @app.route("/build")
    async def build() -> str:
        return url_for("user", **kwargs)

    async with app.test_client() as client:
        assert await (await client.get("/build")).get_data(as_text=True) == expected


async def test_url_for_scheme_with_external_false_is_value_error() -> None:
    """`_scheme` with an explicit `_external=False` is a ValueError (a 500 from a view)."""
    app = TrioWeb(__name__)
    errors: list[BaseException] = []

    @app.route("/")
    async def index() -> str:
        try:
            return url_for("index", _scheme="https", _external=False)
        except ValueError as error:
            errors.append(error)
            raise

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    assert "_external=True" in str(errors[0])


async def test_url_for_dot_endpoint_outside_a_blueprint_is_the_app_view() -> None:
    """`url_for(".view")` in an app view (no blueprint) names the app's `view`."""
    app = TrioWeb(__name__)

    @app.route("/here")
    async def here() -> str:
        return url_for(".here")

    async with app.test_client() as client:
        assert await (await client.get("/here")).get_data() == b"/here"


async def test_url_for_unknown_endpoint_is_build_error() -> None:
    """`url_for` of an endpoint with no rule raises werkzeug's BuildError."""
    app = TrioWeb(__name__)
    errors: list[BaseException] = []

    @app.route("/")
    async def index() -> str:
        try:
            return url_for("missing")
        except BuildError as error:
            errors.append(error)
            return "caught"

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"caught"
    assert len(errors) == 1


async def test_url_for_honours_root_path() -> None:
    """Under an ASGI `root_path`, built URLs carry it as their prefix."""
    app = TrioWeb(__name__)

    @app.route("/page")
    async def page() -> str:
        return url_for("page")

    async with app.test_client() as client:
        response = await client.get("/page", root_path="/mounted")
        assert await response.get_data() == b"/mounted/page"


@pytest.mark.parametrize(
    ("path", "routed"),
    [("/mount/where", "/where"), ("/mount", "/"), ("/where", "/where"), ("/mountain", None)],
)
async def test_root_path_is_stripped_from_the_scope_path(
    http_scope, asgi_peer, path: str, routed: str | None
) -> None:
    """As Hypercorn sends it, the ASGI `path` starts with `root_path`: the app routes the rest,
    and URLs it builds carry the prefix; a path not under `root_path` is routed as it is."""
    app = TrioWeb(__name__)

    @app.route("/")
    @app.route("/where")
    async def where() -> str:
        return f"{request.path} {url_for('where')} {request.url}"

    peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
    await app(http_scope(path, root_path="/mount"), peer.receive, peer.send)
    if routed is None:
        assert peer.status == 404
    else:
        assert peer.body.decode() == f"{routed} /mount/where http://testserver/mount{routed}"


async def test_url_for_outside_a_request_uses_server_name() -> None:
    """Outside a request, `url_for` builds external URLs from `SERVER_NAME`,
    `PREFERRED_URL_SCHEME` and `APPLICATION_ROOT` (relative with `_external=False`)."""
    app = TrioWeb(__name__)
    app.config.from_mapping(
        SERVER_NAME="example.com", PREFERRED_URL_SCHEME="https", APPLICATION_ROOT="/root"
    )
    built: list[str] = []

    @app.route("/users/<int:user_id>")
    async def user(user_id: int) -> str:
        return "user"

    @app.before_serving
    async def build() -> None:
        built.append(url_for("user", user_id=1))
        built.append(url_for(".user", user_id=2, _external=False))

    async with app.test_client():
        pass
    assert built == ["https://example.com/root/users/1", "/root/users/2"]


async def test_url_for_outside_a_request_without_server_name_is_runtime_error() -> None:
    """Outside a request and with no `SERVER_NAME`, `url_for` says to set it."""
    app = TrioWeb(__name__)
    errors: list[BaseException] = []

    @app.route("/")
    async def index() -> str:
        return "index"

    @app.before_serving
    async def build() -> None:
        try:
            url_for("index")
        except RuntimeError as error:
            errors.append(error)

    async with app.test_client():
        pass
    assert "SERVER_NAME" in str(errors[0])


@pytest.mark.parametrize(
    ("headers", "server", "expected"),
    [
        ([(b"host", b"api.example.com:8443")], ("ignored", 1), "http://api.example.com:8443/"),
        ([], ("10.0.0.1", 80), "http://10.0.0.1/"),
        ([], ("10.0.0.1", 8000), "http://10.0.0.1:8000/"),
        ([], None, "http://localhost/"),
        ([(b"accept", b"*/*"), (b"host", b"after.other")], None, "http://after.other/"),
        ([], ("secure.example", 443), "http://secure.example:443/"),
        # A Host with a path, userinfo or a bad port is never built into a URL (issue 10).
        ([(b"host", b"evil.example/x?y=1")], ("10.0.0.1", 80), "http://10.0.0.1/"),
        ([(b"host", b"user@evil.example")], ("10.0.0.1", 80), "http://10.0.0.1/"),
        ([(b"host", b"evil.example:port")], None, "http://localhost/"),
    ],
)
async def test_external_urls_use_host_header_then_server(
    http_scope, asgi_peer, headers, server, expected
) -> None:
    """External URLs name the `Host` header if it is a valid host, else the ASGI `server` (port
    only if not default), else `localhost`."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        return url_for("index", _external=True)

    peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
    await app(http_scope("/", headers=headers, server=server), peer.receive, peer.send)
    assert peer.body == expected.encode()


# abort and redirect -------------------------------------------------------------------------------


async def test_abort_with_code_and_description() -> None:
    """`abort(code)` answers with that status; `abort(code, description)` puts it in the body."""
    app = TrioWeb(__name__)

    @app.route("/plain")
    async def plain() -> str:
        abort(403)

    @app.route("/described")
    async def described() -> str:
        abort(401, "token expired")

    async with app.test_client() as client:
        assert (await client.get("/plain")).status_code == 403
        response = await client.get("/described")
        assert response.status_code == 401
        assert b"token expired" in await response.get_data()


async def test_abort_with_a_response_sends_it_as_is() -> None:
    """`abort(response)` answers with that very response."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        abort(Response("teapot", 418, {"X-Why": "because"}))

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 418
    assert response.headers["X-Why"] == "because"
    assert await response.get_data() == b"teapot"


@pytest.mark.parametrize(("kwargs", "status"), [({}, 302), ({"code": 301}, 301)])
async def test_redirect(kwargs: dict[str, int], status: int) -> None:
    """`redirect(location)` is a 302 with `Location` (or the given code)."""
    app = TrioWeb(__name__)

    @app.route("/old")
    async def old() -> Response:
        return redirect(url_for("new"), **kwargs)

    @app.route("/new")
    async def new() -> str:
        return "new"

    async with app.test_client() as client:
        response = await client.get("/old")
    assert response.status_code == status
    assert response.headers["Location"] == "/new"


async def test_url_for_dot_endpoint_in_a_blueprint_view() -> None:
    """`url_for(".view")` inside a blueprint's view names that blueprint's `view`."""
    app = TrioWeb(__name__)
    bp = Blueprint("shop", __name__, url_prefix="/shop")

    @bp.route("/item/<int:n>")
    async def item(n: int) -> str:
        return url_for(".item", n=n + 1)

    app.register_blueprint(bp)
    async with app.test_client() as client:
        assert await (await client.get("/shop/item/1")).get_data() == b"/shop/item/2"


async def test_unknown_asgi_scope_type_is_value_error(asgi_peer) -> None:
    """The app refuses an ASGI scope type it does not know, without receiving or sending."""
    app = TrioWeb(__name__)
    peer = asgi_peer()

    with pytest.raises(ValueError, match="unknown ASGI scope type 'webtransport'"):
        await app({"type": "webtransport"}, peer.receive, peer.send)
    assert (peer.received, peer.sent) == (0, [])


async def test_the_match_cache_is_bounded_and_skips_host_rules() -> None:
    """Routing remembers matches up to a bound, forgets them on new rules, ignores host rules."""
    from trioweb._routing import MATCH_CACHE_SIZE

    app = TrioWeb(__name__)

    @app.route("/item/<int:number>")
    async def item(number: int) -> str:
        return str(number)

    async with app.test_client() as client:
        for number in range(MATCH_CACHE_SIZE + 5):
            assert await (await client.get(f"/item/{number}")).get_data() == str(number).encode()
        assert await (await client.get("/item/3")).get_data() == b"3"
    assert len(app.router._cache) == MATCH_CACHE_SIZE

    @app.route("/admin", subdomain="admin")
    async def admin() -> str:
        return "admin"  # pragma: no cover

    assert app.router._cache == {}
    async with app.test_client() as client:
        assert await (await client.get("/item/1")).get_data() == b"1"
    assert app.router._cache == {}


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("http://example.com/items/3", "/items/3"),
        ("https://example.com:8443/items/3", "/items/3"),
        ("ws://example.com/ws", "/ws"),
        ("http://example.com", "/"),
        ("*", "*"),
        ("no-scheme/x", "no-scheme/x"),
    ],
)
async def test_absolute_form_targets_are_routed_on_their_path(target: str, path: str) -> None:
    """A request target in absolute form (RFC 9112, 3.2.2), which Hypercorn passes on as the
    path, is routed on its path."""
    from trioweb._routing import path_in_app

    assert path_in_app({"path": target, "root_path": ""}) == path


async def test_an_absolute_form_request_reaches_its_view() -> None:
    """``GET http://host/items/3`` is served by the view of ``/items/<int:id>``."""
    app = TrioWeb(__name__)

    @app.route("/items/<int:item>")
    async def item(item: int) -> str:
        return f"{request.path} {item}"

    async with app.test_client() as client:
        response = await client.get("/items/3")
        assert await response.get_data() == b"/items/3 3"
    scope = {
        "type": "http",
        "method": "GET",
        "path": "http://localhost/items/3",
        "headers": [(b"host", b"localhost")],
        "query_string": b"",
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"/items/3 3"


# As the docs show (docs/examples/routing.py, ws_routes.py) ----------------------------------------

routing_example = load_example("routing")
ws_routes_example = load_example("ws_routes")


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/", 200, b"Index\n"),
        ("HEAD", "/", 200, b""),
        ("GET", "/users/42", 200, b'{"id":42}'),
        ("GET", "/users/ada", 404, None),
        ("GET", "/users/7/", 404, None),
        ("GET", "/files/reports/2024/q1.txt", 200, b"File reports/2024/q1.txt\n"),
        ("GET", "/items/", 200, b"All items\n"),
        ("POST", "/items/", 201, b"Created\n"),
        (
            "GET",
            "/search?q=trio&page=3&tag=a&tag=b",
            200,
            b'{"q":"trio","page":3,"tags":["a","b"]}',
        ),
        ("GET", "/search?page=last", 200, b'{"q":"","page":1,"tags":[]}'),
    ],
)
async def test_routing(method: str, path: str, status: int, body: bytes | None) -> None:
    """Rules, converters, methods and query arguments route as the HTTP how-to says."""
    with trio.fail_after(5):
        async with routing_example.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            if body is not None:
                assert await response.get_data() == body


async def test_routing_wrong_method_is_405_with_allow() -> None:
    """A method the rule does not accept is a 405 that lists the allowed ones."""
    with trio.fail_after(5):
        async with routing_example.app.test_client() as client:
            response = await client.delete("/items/")
            assert response.status_code == 405
            assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


async def test_routing_missing_slash_redirects() -> None:
    """A rule that ends in a slash redirects the URL without it."""
    with trio.fail_after(5):
        async with routing_example.app.test_client() as client:
            response = await client.get("/items")
            assert response.status_code == 308
            assert response.headers["Location"].endswith("/items/")


async def test_routing_url_for() -> None:
    """url_for builds paths, puts unknown values in the query string, and absolute URLs."""
    with trio.fail_after(5):
        async with routing_example.app.test_client() as client:
            response = await client.get("/links")
            assert await response.get_json() == {
                "user": "/users/7",
                "search": "/search?q=trio&page=2",
                "absolute": "http://localhost/",
            }


async def test_ws_routes_page_and_socket_share_a_path() -> None:
    """GET /feed is the page (linking ws://.../feed) and a websocket to /feed is the feed."""
    async with ws_routes_example.app.test_client() as client:
        page = await client.get("/feed")
        assert 'new WebSocket("ws://localhost/feed")' in await page.get_data(as_text=True)
        secure = await client.get("/feed", scheme="https")
        assert 'new WebSocket("wss://localhost/feed")' in await secure.get_data(as_text=True)
        async with client.websocket("/feed") as ws:
            assert await closed_by_app(ws) == (1000, "", ["first", "second", "third"])
        async with client.websocket("/socket-only") as ws:
            assert await ws.receive() == "websockets only here"


@pytest.mark.parametrize(
    ("kind", "path", "status"),
    [
        ("http", "/socket-only", 400),
        ("websocket", "/page-only", 400),
        ("http", "/nowhere", 404),
        ("websocket", "/nowhere", 404),
        ("http", "/page-only", 200),
    ],
)
async def test_ws_routes_wrong_kind(kind: str, path: str, status: int) -> None:
    """An HTTP request to a websocket-only route, or the reverse, is 400; an unknown path 404."""
    if kind == "websocket":
        assert (await refusal(ws_routes_example.app, path)).status_code == status
    else:
        async with ws_routes_example.app.test_client() as client:
            assert (await client.get(path)).status_code == status
