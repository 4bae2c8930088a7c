"""The global `request`: what it tells about the request line and headers, the body (raw, JSON,
forms, files) and its limits, and what a client that goes away does to a running view."""

from __future__ import annotations

import io
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, http_scope
from _docs import load_example
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

import trioweb
from trioweb import Blueprint, TrioWeb, request, websocket
from trioweb._formparser import Body


def _chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_request_line_and_headers() -> None:
    """`request` exposes method, path, full_path, url, host, scheme, args, headers, cookies,
    Basic authorization, content type and the client's address."""
    app = TrioWeb(__name__)

    @app.route("/users/<int:user_id>", methods=["POST"])
    async def user(user_id: int) -> dict[str, Any]:
        auth = request.authorization
        assert auth is not None
        return {
            "method": request.method,
            "path": request.path,
            "full_path": request.full_path,
            "url": request.url,
            "host": request.host,
            "scheme": request.scheme,
            "args": request.args.getlist("tag"),
            "agent": request.headers["User-Agent"],
            "cookies": dict(request.cookies),
            "auth": [auth.type, auth.username, auth.password],
            "content_type": request.content_type,
            "remote_addr": request.remote_addr,
        }

    async with app.test_client() as client:
        response = await client.post(
            "/users/5?tag=a&tag=b",
            headers={
                "User-Agent": "pytest",
                "Cookie": "session=abc; theme=dark",
                "Authorization": "Basic dXNlcjpwYXNz",
                "Content-Type": "text/plain",
            },
            data=b"x",
        )
    assert await response.get_json() == {
        "method": "POST",
        "path": "/users/5",
        "full_path": "/users/5?tag=a&tag=b",
        "url": "http://localhost/users/5?tag=a&tag=b",
        "host": "localhost",
        "scheme": "http",
        "args": ["a", "b"],
        "agent": "pytest",
        "cookies": {"session": "abc", "theme": "dark"},
        "auth": ["basic", "user", "pass"],
        "content_type": "text/plain",
        "remote_addr": "127.0.0.1",
    }


async def test_https_scheme() -> None:
    """A request made over https says so in `scheme`, `is_secure` and `url`."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> dict[str, Any]:
        return {"scheme": request.scheme, "secure": request.is_secure, "url": request.url}

    async with app.test_client() as client:
        response = await client.get("/", scheme="https")
    assert await response.get_json() == {
        "scheme": "https",
        "secure": True,
        "url": "https://localhost/",
    }


async def test_routing_information() -> None:
    """`view_args`, `endpoint` and `blueprint` describe the matched route."""
    app = TrioWeb(__name__)
    bp = Blueprint("shop", __name__, url_prefix="/shop")

    async def describe(**kwargs: Any) -> dict[str, Any]:
        return {
            "view_args": request.view_args,
            "endpoint": request.endpoint,
            "blueprint": request.blueprint,
        }

    app.add_url_rule("/a/<int:n>", "describe", describe)
    bp.add_url_rule("/item/<name>", "item", describe)
    app.register_blueprint(bp)
    async with app.test_client() as client:
        assert await (await client.get("/a/3")).get_json() == {
            "view_args": {"n": 3},
            "endpoint": "describe",
            "blueprint": None,
        }
        assert await (await client.get("/shop/item/hat")).get_json() == {
            "view_args": {"name": "hat"},
            "endpoint": "shop.item",
            "blueprint": "shop",
        }


async def test_routing_information_is_empty_on_a_404() -> None:
    """On an unmatched path, a hook sees no endpoint, blueprint or view_args."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.before_request
    async def record() -> None:
        seen.extend([request.endpoint, request.blueprint, request.view_args])

    async with app.test_client() as client:
        assert (await client.get("/missing")).status_code == 404
    assert seen == [None, None, None]


async def test_scope_without_client_or_server(http_scope, asgi_peer) -> None:
    """An ASGI scope without `client` and `server` gives `remote_addr` None and the Host header."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        return f"{request.remote_addr} {request.host}"

    peer = asgi_peer([_chunk(b"", False)])
    scope = http_scope("/", client=None, server=None)
    del scope["method"], scope["scheme"], scope["root_path"], scope["query_string"]
    await app(scope, peer.receive, peer.send)
    assert (peer.status, peer.body) == (200, b"None testserver")


# The body -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "headers", "expected"),
    [
        (b"raw \xff bytes", {}, b"raw \xff bytes"),
        ("caf\u00e9", {"Content-Type": "text/plain; charset=utf-8"}, "caf\u00e9".encode()),
        (b"", {}, b""),
    ],
)
async def test_get_data(data: bytes | str, headers: dict[str, str], expected: bytes) -> None:
    """`await request.get_data()` is the body as sent; `await request.data` is the same."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> bytes:
        first = await request.get_data()
        assert await request.data == first
        return first

    async with app.test_client() as client:
        assert await (await client.post("/", data=data, headers=headers)).get_data() == expected


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain; charset=latin-1", b"caf\xe9", "caf\u00e9"),
        ("text/plain", "caf\u00e9".encode(), "caf\u00e9"),
        ("text/plain", b"bad \xff", "bad \ufffd"),
    ],
)
async def test_get_data_as_text(content_type: str, body: bytes, text: str) -> None:
    """`get_data(as_text=True)` decodes with the request's charset (UTF-8 by default),
    replacing undecodable bytes."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> dict[str, str]:
        return {"text": await request.get_data(as_text=True)}

    async with app.test_client() as client:
        response = await client.post("/", data=body, headers={"Content-Type": content_type})
    assert await response.get_json() == {"text": text}


async def test_body_arriving_in_chunks_is_joined(http_scope, asgi_peer) -> None:
    """A body sent in several ASGI messages (empty ones too) is read whole."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> bytes:
        return await request.get_data()

    peer = asgi_peer([_chunk(b"ab", True), _chunk(b"", True), _chunk(b"cd", False)])
    await app(http_scope("/", method="POST"), peer.receive, peer.send)
    assert peer.body == b"abcd"


# JSON ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json"])
async def test_get_json(content_type: str) -> None:
    """`await request.get_json()` parses a JSON body (any `+json` type too); `await
    request.json` gives the same, cached object."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> dict[str, Any]:
        first = await request.get_json()
        assert await request.json is first
        return {"got": first}

    async with app.test_client() as client:
        response = await client.post(
            "/", data=b'{"a": [1, 2]}', headers={"Content-Type": content_type}
        )
    assert await response.get_json() == {"got": {"a": [1, 2]}}


async def test_client_json_argument_sends_json() -> None:
    """The test client's `json=` sets the body and content type the view's `get_json` reads."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> Any:
        return [request.mimetype, await request.get_json()]

    async with app.test_client() as client:
        response = await client.post("/", json={"x": 1})
    assert await response.get_json() == ["application/json", {"x": 1}]


async def test_malformed_json_is_400() -> None:
    """A body that is not valid JSON is answered with 400 naming the decoding problem."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> Any:
        return await request.get_json()

    async with app.test_client() as client:
        response = await client.post(
            "/", data=b'{"a": ', headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert b"Failed to decode JSON object" in await response.get_data()


async def test_json_with_another_content_type_is_415_unless_forced() -> None:
    """`get_json()` on a non-JSON content type is a 415; `force=True` parses it anyway."""
    app = TrioWeb(__name__)

    @app.route("/strict", methods=["POST"])
    async def strict() -> Any:
        return await request.get_json()

    @app.route("/forced", methods=["POST"])
    async def forced() -> Any:
        return await request.get_json(force=True)

    async with app.test_client() as client:
        kwargs: dict[str, Any] = {"data": b"[1]", "headers": {"Content-Type": "text/plain"}}
        assert (await client.post("/strict", **kwargs)).status_code == 415
        assert await (await client.post("/forced", **kwargs)).get_json() == [1]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b"[1]"), ("application/json", b"{broken")],
)
async def test_silent_json_returns_none(content_type: str, body: bytes) -> None:
    """`get_json(silent=True)` returns None for a wrong content type or malformed JSON."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> dict[str, Any]:
        return {"json": await request.get_json(silent=True)}

    async with app.test_client() as client:
        response = await client.post("/", data=body, headers={"Content-Type": content_type})
    assert await response.get_json() == {"json": None}


# Forms and files ----------------------------------------------------------------------------------


async def test_urlencoded_form() -> None:
    """`await request.form` parses an urlencoded body (repeated keys kept); no files."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def form() -> dict[str, Any]:
        fields = await request.form
        return {
            "tags": fields.getlist("tag"),
            "name": fields["name"],
            "files": len(await request.files),
        }

    async with app.test_client() as client:
        response = await client.post(
            "/",
            data="name=Ada&tag=a&tag=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert await response.get_json() == {"tags": ["a", "b"], "name": "Ada", "files": 0}
        response = await client.post("/", data={"name": "Bob", "tag": ["x"]})
        assert await response.get_json() == {"tags": ["x"], "name": "Bob", "files": 0}


async def test_multipart_form_with_files() -> None:
    """A multipart body gives fields in `await request.form` and uploads in `await
    request.files`, with their names, content types and contents."""
    app = TrioWeb(__name__)

    @app.route("/upload", methods=["POST"])
    async def upload() -> dict[str, Any]:
        files = await request.files
        fields = await request.form
        report = files["report"]
        return {
            "title": fields["title"],
            "filename": report.filename,
            "mimetype": report.mimetype,
            "content": report.read().decode(),
        }

    async with app.test_client() as client:
        response = await client.post(
            "/upload",
            data={"title": "Q3", "report": (io.BytesIO(b"numbers"), "report.csv", "text/csv")},
        )
    assert await response.get_json() == {
        "title": "Q3",
        "filename": "report.csv",
        "mimetype": "text/csv",
        "content": "numbers",
    }


async def test_uploaded_files_are_closed_when_the_request_ends() -> None:
    """Uploads (spooled to temporary files) are closed after the teardown hooks, which can still
    read them."""
    app = TrioWeb(__name__)
    uploads: list[Any] = []
    closed_in_teardown: list[bool] = []

    @app.route("/upload", methods=["POST"])
    async def upload() -> str:
        uploads.extend(f for _, f in (await request.files).items(multi=True))
        return "stored"

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        closed_in_teardown.extend(f.stream.closed for f in uploads)

    async with app.test_client() as client:
        data = {"f": [(io.BytesIO(b"1"), "one.txt"), (io.BytesIO(b"2"), "two.txt")]}
        assert (await client.post("/upload", data=data)).status_code == 200
    assert closed_in_teardown == [False, False]
    assert [f.stream.closed for f in uploads] == [True, True]


async def test_form_of_a_json_body_is_empty() -> None:
    """A body that is not a form gives an empty `form`; the body itself stays readable."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def view() -> dict[str, Any]:
        return {"form": len(await request.form), "json": await request.get_json()}

    async with app.test_client() as client:
        response = await client.post("/", json=[1])
    assert await response.get_json() == {"form": 0, "json": [1]}


async def test_multipart_without_boundary_is_400() -> None:
    """A multipart content type without a boundary is a malformed form: 400."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def view() -> str:
        await request.form
        return "parsed"

    async with app.test_client() as client:
        response = await client.post(
            "/", data=b"--x--", headers={"Content-Type": "multipart/form-data"}
        )
    assert response.status_code == 400
    assert b"Malformed form body" in await response.get_data()


@pytest.mark.parametrize(
    ("config", "data"),
    [
        ({"MAX_FORM_MEMORY_SIZE": 10}, {"field": "x" * 100, "f": (io.BytesIO(b"x"), "f.txt")}),
        ({"MAX_FORM_PARTS": 2}, {"a": "1", "b": "2", "c": "3", "f": (io.BytesIO(b"x"), "f")}),
    ],
)
async def test_form_limits_are_413(config: dict[str, int], data: dict[str, Any]) -> None:
    """A form field larger than `MAX_FORM_MEMORY_SIZE` or more parts than `MAX_FORM_PARTS` is
    refused with 413."""
    app = TrioWeb(__name__)
    app.config.from_mapping(config)

    @app.route("/", methods=["POST"])
    async def view() -> str:
        await request.form
        return "parsed"

    async with app.test_client() as client:
        assert (await client.post("/", data=data)).status_code == 413


# MAX_CONTENT_LENGTH -------------------------------------------------------------------------------


async def test_content_length_above_the_limit_is_413_without_reading(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A declared `Content-Length` above `MAX_CONTENT_LENGTH` is refused with 413 before any of
    the body is received."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.route("/", methods=["POST"])
    async def view() -> bytes:
        return await request.get_data()

    peer = asgi_peer([_chunk(b"x" * 1000, False)])
    headers = [(b"host", b"testserver"), (b"content-length", b"1000")]
    await app(http_scope("/", method="POST", headers=headers), peer.receive, peer.send)
    assert peer.status == 413
    assert peer.received == 0


async def test_a_failed_body_read_fails_the_same_way_again() -> None:
    """Once reading the body failed (413), reading it again raises the same error."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.route("/", methods=["POST"])
    async def view() -> str:
        try:
            await request.get_data()
        except RequestEntityTooLarge as first:
            try:
                await request.get_json(force=True)
            except RequestEntityTooLarge as second:
                return f"same: {second is first}"
        return "not reached"

    async with app.test_client() as client:
        assert await (await client.post("/", data=b"x" * 11)).get_data() == b"same: True"


async def test_readers_of_one_body_take_turns_and_each_gets_all_of_it() -> None:
    """The view and the disconnect listener may read a body at once: one reads from the client
    while the others wait, then each gets the whole body; the client's messages are read once."""
    to_body, from_client = trio.open_memory_channel[dict[str, Any]](2)
    receives = 0

    async def receive() -> dict[str, Any]:
        nonlocal receives
        receives += 1
        return await from_client.receive()

    body = Body(receive, [], limit=None)
    read: list[bytes] = []

    async def reader() -> None:
        read.append(await body.read())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert (read, receives) == ([], 1)  # one waits for the client, two wait for it
            await to_body.send({"type": "http.request", "body": b"he", "more_body": True})
            await to_body.send({"type": "http.request", "body": b"llo", "more_body": False})
    assert read == [b"hello"] * 3
    assert receives == 2


async def test_body_within_the_limit_is_accepted() -> None:
    """A body of exactly `MAX_CONTENT_LENGTH` bytes is read; `None` lifts the limit."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.route("/", methods=["POST"])
    async def view() -> str:
        return str(len(await request.get_data()))

    async with app.test_client() as client:
        assert await (await client.post("/", data=b"x" * 100)).get_data() == b"100"
        assert (await client.post("/", data=b"x" * 101)).status_code == 413
        app.config["MAX_CONTENT_LENGTH"] = None
        assert await (await client.post("/", data=b"x" * 101)).get_data() == b"101"


async def test_streamed_body_is_cut_off_at_the_limit(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """Without a Content-Length, the limit is checked while the body streams in: the app answers
    413 having read no more than the limit plus one chunk (and the peer's queue), instead of the
    whole upload."""
    app = TrioWeb(__name__)
    limit, chunk = 1000, 100
    app.config["MAX_CONTENT_LENGTH"] = limit

    @app.route("/upload", methods=["POST"])
    async def upload() -> str:
        return str(len(await request.get_data()))  # pragma: no cover

    peer = asgi_peer()

    async def endless_upload() -> None:
        while True:
            await peer.to_app.send(_chunk(b"x" * chunk, True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(endless_upload)
        await app(http_scope("/upload", method="POST"), peer.receive, peer.send)
        nursery.cancel_scope.cancel()
    assert peer.status == 413
    assert peer.received * chunk <= limit + chunk


# A client that goes away --------------------------------------------------------------------------


async def test_disconnect_cancels_a_blocked_view(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """When the client disconnects, a view blocked forever sees trio.Cancelled, nothing is sent,
    and teardown_request still runs."""
    app = TrioWeb(__name__)
    events: list[str] = []

    @app.route("/wait")
    async def wait() -> str:
        try:
            await trio.Event().wait()
        except trio.Cancelled:
            events.append("view cancelled")
            raise
        finally:
            events.append("view finally")
        return "never"

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        events.append(f"teardown {error!r}")

    peer = asgi_peer([_chunk(b"", False)])
    peer.disconnect()
    await app(http_scope("/wait"), peer.receive, peer.send)
    assert events == ["view cancelled", "view finally", "teardown None"]
    assert peer.sent == []


async def test_disconnect_cancels_tasks_in_the_views_nursery(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A disconnect cancels the tasks a view started in its own nursery; the Cancelled that
    leaves the nursery (inside an exception group) is absorbed, and `except*` sees it."""
    app = TrioWeb(__name__)
    events: list[str] = []

    async def child() -> None:
        try:
            await trio.sleep_forever()
        finally:
            events.append("child finally")

    @app.route("/fanout")
    async def fanout() -> str:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(child)
                nursery.start_soon(child)
        except* trio.Cancelled:
            events.append("view except*")
            raise
        return "never"

    peer = asgi_peer([_chunk(b"", False)])
    peer.disconnect()
    await app(http_scope("/fanout"), peer.receive, peer.send)
    assert events == ["child finally", "child finally", "view except*"]


async def test_slow_view_with_a_connected_client_completes(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A view that takes long is not cancelled while the client stays connected."""
    app = TrioWeb(__name__)

    @app.route("/slow")
    async def slow() -> str:
        await trio.sleep(3)
        return "done"

    peer = asgi_peer([_chunk(b"", False)])
    await app(http_scope("/slow"), peer.receive, peer.send)
    assert (peer.status, peer.body) == (200, b"done")


async def test_disconnect_in_the_middle_of_an_unread_body_cancels_the_view(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A client that leaves halfway through a body the view has not read still cancels it."""
    app = TrioWeb(__name__)
    cancelled = trio.Event()

    @app.route("/", methods=["POST"])
    async def view() -> str:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    peer = asgi_peer([_chunk(b"half", True)])
    peer.disconnect()
    await app(http_scope("/", method="POST"), peer.receive, peer.send)
    assert cancelled.is_set()
    assert peer.sent == []


async def test_disconnect_after_an_oversized_unread_body_cancels_the_view(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """With a body over the limit that the view never reads, the disconnect is still noticed."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 10
    cancelled = trio.Event()

    @app.route("/", methods=["POST"])
    async def view() -> str:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    peer = asgi_peer([_chunk(b"x" * 50, True), _chunk(b"x" * 50, False)])
    peer.disconnect()
    headers = [(b"host", b"testserver"), (b"content-length", b"100")]
    await app(http_scope("/", method="POST", headers=headers), peer.receive, peer.send)
    assert cancelled.is_set()
    assert peer.received == 2


async def test_client_leaving_while_the_view_reads_is_400(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A view reading the body when the client leaves gets werkzeug's ClientDisconnected (400)."""
    app = TrioWeb(__name__)
    errors: list[BaseException] = []

    @app.route("/", methods=["POST"])
    async def view() -> bytes:
        try:
            return await request.get_data()
        except Exception as error:
            errors.append(error)
            raise

    peer = asgi_peer([_chunk(b"half", True)])
    peer.disconnect()
    await app(http_scope("/", method="POST"), peer.receive, peer.send)
    assert type(errors[0]).__name__ == "ClientDisconnected"
    assert peer.status == 400


async def test_the_listener_waits_for_a_view_that_is_reading(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """The disconnect listener never takes body chunks from a view still reading a slow upload."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def view() -> bytes:
        return await request.get_data()

    peer = asgi_peer([_chunk(b"first ", True)])

    async def send_second_chunk_late() -> None:
        await trio.sleep(1)  # well past DISCONNECT_LISTENER_DELAY
        await peer.to_app.send(_chunk(b"second", False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_second_chunk_late)
        await app(http_scope("/", method="POST"), peer.receive, peer.send)
    assert peer.status == 200
    assert peer.body == b"first second"


# As the docs show (docs/examples/bodies.py, cancellation.py, notes.py) ----------------------------

bodies_example = load_example("bodies")
cancellation_example = load_example("cancellation")
notes_example = load_example("notes")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/notes/abc", {}, 404),
        ("POST", "/notes", {"data": {"text": "buy milk"}}, 415),
        ("POST", "/notes", {"data": "{", "headers": {"Content-Type": "application/json"}}, 400),
    ],
)
async def test_notes_errors(method: str, path: str, kwargs: dict[str, Any], status: int) -> None:
    """A URL that does not match, a body that is not JSON and malformed JSON are refused."""
    with trio.fail_after(5):
        async with notes_example.app.test_client() as client:
            response = await client.open(path, method=method, **kwargs)
            assert response.status_code == status


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "body"),
    [
        ("/echo", {"data": b"\x00raw bytes"}, 200, b"\x00raw bytes"),
        ("/sum", {"json": [1, 2, 3.5]}, 200, b'{"sum":6.5}'),
        ("/sum", {"data": "[1, 2]"}, 415, None),
        (
            "/sum",
            {"data": "[1, 2", "headers": {"Content-Type": "application/json"}},
            400,
            None,
        ),
        ("/sum-or-nothing", {"data": "[1, 2"}, 200, b'{"sum":null}'),
        ("/signup", {"data": {"name": "Ada"}}, 200, b"Welcome, Ada!\n"),
        ("/signup", {"data": {"nickname": "Ada"}}, 400, None),
        ("/echo", {"data": b"x" * (1024 * 1024 + 1)}, 413, None),
    ],
)
async def test_bodies(path: str, kwargs: dict[str, Any], status: int, body: bytes | None) -> None:
    """Bodies, JSON, forms and the size limit behave as the HTTP how-to says."""
    with trio.fail_after(5):
        async with bodies_example.app.test_client() as client:
            response = await client.post(path, **kwargs)
            assert response.status_code == status
            if body is not None:
                assert await response.get_data() == body


async def test_bodies_upload() -> None:
    """An uploaded file arrives in request.files with its name and content."""
    with trio.fail_after(5):
        async with bodies_example.app.test_client() as client:
            photo = (io.BytesIO(b"JPEG..."), "cat.jpg")
            response = await client.post("/upload", data={"photo": photo})
            assert await response.get_json() == {"filename": "cat.jpg", "size": 7}


async def test_cancellation_poll_answers_when_a_message_arrives() -> None:
    """A long poll returns the messages posted while it waited."""
    with trio.fail_after(5):
        async with cancellation_example.app.test_client() as client:
            async with trio.open_nursery() as nursery:
                replies = []

                async def poll() -> None:
                    replies.append(await client.get("/rooms/news?after=0"))

                nursery.start_soon(poll)
                await trio.testing.wait_all_tasks_blocked()
                assert cancellation_example.rooms["news"].waiting == 1
                await client.post("/rooms/news", data="hello")
            assert await replies[0].get_json() == {"messages": ["hello"]}
            assert cancellation_example.rooms["news"].waiting == 0


async def test_cancellation_poll_cleans_up_when_the_client_leaves(
    autojump_clock: trio.abc.Clock, http_scope: Any, asgi_peer: Any
) -> None:
    """A client that leaves cancels the poll: finally runs, shielded cleanup completes, and
    nothing is sent."""
    with trio.fail_after(5):
        peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
        peer.disconnect()
        await cancellation_example.app(http_scope("/rooms/quiet"), peer.receive, peer.send)
        assert peer.sent == []
        assert cancellation_example.rooms["quiet"].waiting == 0
        assert cancellation_example.log[-1] == "stopped polling quiet"


async def test_cancellation_digest_sees_the_group_with_except_star(
    autojump_clock: trio.abc.Clock, http_scope: Any, asgi_peer: Any
) -> None:
    """A client that leaves during a view's nursery reaches except* trio.Cancelled, and the
    re-raised group ends the request quietly."""
    with trio.fail_after(5):
        peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
        peer.disconnect()
        scope = http_scope("/digest", query_string=b"room=a&room=b")
        await cancellation_example.app(scope, peer.receive, peer.send)
        assert peer.sent == []
        assert cancellation_example.log[-1] == "client left while waiting for a, b"


_URL_ATTRIBUTES = (
    "url",
    "base_url",
    "root_url",
    "url_root",
    "host_url",
    "full_path",
    "path",
    "script_root",
    "root_path",
    "host",
    "scheme",
    "query_string",
)


def _urls(conn: Any) -> dict[str, Any]:
    urls = {name: getattr(conn, name) for name in _URL_ATTRIBUTES}
    urls["query_string"] = urls["query_string"].decode()
    return urls


def _expected(scheme: str) -> dict[str, str]:
    return {
        "url": f"{scheme}://localhost/app/items/1?q=a%20b&x=1",
        "base_url": f"{scheme}://localhost/app/items/1",
        "root_url": f"{scheme}://localhost/app/",
        "url_root": f"{scheme}://localhost/app/",
        "host_url": f"{scheme}://localhost/",
        "full_path": "/items/1?q=a%20b&x=1",
        "path": "/items/1",
        "script_root": "/app",
        "root_path": "/app",
        "host": "localhost",
        "scheme": scheme,
        "query_string": "q=a%20b&x=1",
    }


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_url_attributes_of_a_mounted_request(scheme: str) -> None:
    """Under a mount point (root_path) and with a query string, a request has Flask's URL
    attributes: url, base_url, root_url/url_root, host_url, full_path, path, script_root."""
    app = TrioWeb(__name__)

    @app.get("/items/<int:item>")
    async def item(item: int) -> dict[str, Any]:
        return _urls(request)

    async with app.test_client() as client:
        response = await client.get(
            "/items/1", query_string="q=a%20b&x=1", root_path="/app", scheme=scheme
        )
    assert await response.get_json() == _expected(scheme)


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_url_attributes_of_a_mounted_websocket(scheme: str) -> None:
    """A websocket has the same URL attributes, with its ws/wss scheme."""
    app = TrioWeb(__name__)

    @app.websocket("/items/<int:item>")
    async def item(item: int) -> None:
        await websocket.accept()
        await websocket.send_json(_urls(websocket))

    async with (
        app.test_client() as client,
        client.websocket(
            "/items/1", query_string="q=a%20b&x=1", root_path="/app", scheme=scheme
        ) as ws,
    ):
        assert await ws.receive_json() == _expected(scheme)


async def test_url_attributes_at_the_root() -> None:
    """Without a mount point script_root is empty and url_root is the host URL."""
    app = TrioWeb(__name__)

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {"script_root": request.script_root, "url_root": request.url_root}

    async with app.test_client() as client:
        response = await client.get("/")
    assert await response.get_json() == {"script_root": "", "url_root": "http://localhost/"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 2000, b"arrays and objects nested deeper than 128 levels"),
        (b"[" * 129 + b"]" * 129, b"arrays and objects nested deeper than 128 levels"),
        (b"1" * 5000, b"a number of more than 4300 digits"),
        (b'{"a": "\xff"}', b"not valid UTF-8 (byte 7)"),
        (b"{'a': 1}", b"not valid JSON"),
    ],
)
async def test_hostile_json_bodies_are_400_without_a_traceback(
    caplog: pytest.LogCaptureFixture, body: bytes, words: bytes
) -> None:
    """Whatever get_json cannot read (deep nesting, a number over Python's digit limit, bytes
    that are not UTF-8) is InvalidPayload: a 400 saying why, no traceback logged."""
    app = TrioWeb(__name__)
    raised: list[BaseException] = []

    @app.route("/", methods=["POST"])
    async def echo() -> Any:
        try:
            return await request.get_json()
        except BadRequest as error:
            raised.append(error)
            raise

    async with app.test_client() as client:
        response = await client.post("/", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert words in await response.get_data()
    assert isinstance(raised[0], trioweb.InvalidPayload)
    assert all(record.exc_info is None for record in caplog.records)


async def test_get_json_silent_returns_none_for_hostile_bodies() -> None:
    """With silent=True, a body too deep or not UTF-8 gives None, as malformed JSON does."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def echo() -> Any:
        return {"json": await request.get_json(silent=True)}

    async with app.test_client() as client:
        for body in (b"[" * 2000, b"\xff"):
            response = await client.post(
                "/", data=body, headers={"Content-Type": "application/json"}
            )
            assert await response.get_json() == {"json": None}


@pytest.mark.parametrize(
    ("config", "body", "status"),
    [
        ({"JSON_MAX_DEPTH": 2}, b"[[1]]", 200),
        ({"JSON_MAX_DEPTH": 2}, b"[[[1]]]", 400),
        ({"JSON_ALLOW_NAN": False}, b"[NaN]", 400),
        ({}, b"[NaN]", 200),
        ({}, b"\xef\xbb\xbf[1]", 200),  # a UTF-8 byte order mark is skipped
    ],
)
async def test_get_json_limits_follow_the_config(
    config: dict[str, Any], body: bytes, status: int
) -> None:
    """JSON_MAX_DEPTH and JSON_ALLOW_NAN apply to request bodies as to websocket messages."""
    app = TrioWeb(__name__)
    app.config.update(config)

    @app.route("/", methods=["POST"])
    async def echo() -> Any:
        await request.get_json()
        return "read"

    async with app.test_client() as client:
        response = await client.post("/", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status


async def test_get_json_outside_an_app_uses_the_defaults() -> None:
    """A request built by hand (no app bound) parses with the defaults: NaN allowed, 128
    levels."""
    for body, expected in ((b"[NaN]", "[nan]"), (b"[" * 129 + b"]" * 129, None)):
        peer = ASGIPeer([{"type": "http.request", "body": body}])
        scope = http_scope(method="POST", headers=[(b"content-type", b"application/json")])
        got = await trioweb.Request(scope, peer.receive).get_json(silent=True)
        assert (None if got is None else str(got)) == expected
