"""HTTP end to end: what the test client shows, over real Hypercorn (trio worker) and sockets."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import h11
import pytest
import trio
from _e2e import served
from hypercorn.config import Config as HypercornConfig

from trioweb import Response, TrioWeb, abort, render_template, render_template_string, request

#: Each test runs against stock Hypercorn and trioweb's layer (tests/_servers.py).
pytestmark = pytest.mark.usefixtures("server")


def routing_app() -> TrioWeb:
    """Views echoing their URL variables, one per converter."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        return "index"

    @app.route("/users/<name>")
    async def user(name: str) -> str:
        return f"user {name}"

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return f"item {item_id + 1}"

    @app.route("/prices/<float:price>")
    async def price(price: float) -> str:
        return f"price {price * 2}"

    @app.route("/files/<path:name>")
    async def file(name: str) -> str:
        return f"file {name}"

    @app.route("/only-post", methods=["POST"])
    async def only_post() -> str:
        return "posted"

    return app


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/", 200, "index"),
        ("/users/ada", 200, "user ada"),
        ("/users/%C3%A9mile", 200, "user émile"),
        ("/items/41", 200, "item 42"),
        ("/items/forty", 404, None),
        ("/prices/1.25", 200, "price 2.5"),
        ("/files/a/b/c.txt", 200, "file a/b/c.txt"),
        ("/nowhere", 404, None),
    ],
)
async def test_routing_and_converters(path: str, status: int, body: str | None) -> None:
    """URLs reach their views with converted variables; others are 404."""
    with trio.fail_after(5):
        async with served(routing_app()) as client:
            response = await client.get(path)
    assert response.status_code == status
    if body is not None:
        assert response.text == body


async def test_wrong_method_is_405_with_allow() -> None:
    """A known URL with a method it does not take is 405, listing the methods in Allow."""
    with trio.fail_after(5):
        async with served(routing_app()) as client:
            response = await client.get("/only-post")
            assert (await client.post("/only-post")).text == "posted"
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"POST", "OPTIONS"}


async def test_json_both_ways() -> None:
    """A JSON body arrives parsed; a dict returned goes out as application/json."""
    app = TrioWeb(__name__)

    @app.route("/echo", methods=["POST"])
    async def echo() -> dict[str, object]:
        return {"received": await request.get_json()}

    document = {"name": "Ada", "tags": ["x", "é"], "nested": {"n": 1.5, "none": None}}
    with trio.fail_after(5):
        async with served(app) as client:
            response = await client.post("/echo", json=document)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"received": document}


async def test_malformed_json_is_400() -> None:
    """A JSON body that does not parse is 400, and the view's code after it does not run."""
    app = TrioWeb(__name__)
    reached: list[object] = []

    @app.route("/echo", methods=["POST"])
    async def echo() -> str:
        reached.append(await request.get_json())
        return "parsed"

    with trio.fail_after(5):
        async with served(app) as client:
            response = await client.post(
                "/echo", content=b'{"unclosed": ', headers={"content-type": "application/json"}
            )
    assert response.status_code == 400
    assert reached == []


async def test_request_attributes() -> None:
    """remote_addr, host, scheme, args, headers, cookies and Basic authorization are the
    real connection's."""
    app = TrioWeb(__name__)

    @app.route("/inspect", methods=["PUT"])
    async def inspect() -> dict[str, object]:
        auth = request.authorization
        assert auth is not None
        return {
            "method": request.method,
            "remote_addr": request.remote_addr,
            "host": request.host,
            "scheme": request.scheme,
            "path": request.path,
            "args": request.args.to_dict(flat=False),
            "header": request.headers["X-Custom"],
            "cookies": dict(request.cookies),
            "auth": [auth.type, auth.username, auth.password],
        }

    with trio.fail_after(5):
        async with served(app) as client:
            response = await client.put(
                "/inspect?q=1&q=2&empty=",
                headers={"X-Custom": "yes", "Cookie": "flavour=oat; size=large"},
                auth=("ada", "pass:word"),
            )
            port = client.base_url.port
    assert response.json() == {
        "method": "PUT",
        "remote_addr": "127.0.0.1",
        "host": f"127.0.0.1:{port}",
        "scheme": "http",
        "path": "/inspect",
        "args": {"q": ["1", "2"], "empty": [""]},
        "header": "yes",
        "cookies": {"flavour": "oat", "size": "large"},
        "auth": ["basic", "ada", "pass:word"],
    }


def upload_app() -> TrioWeb:
    """A view that reports the form fields and the files it received."""
    app = TrioWeb(__name__)

    @app.route("/upload", methods=["POST"])
    async def upload() -> dict[str, object]:
        form = await request.form
        files = await request.files
        return {
            "form": form.to_dict(flat=False),
            "files": {
                name: [item.filename, item.mimetype, item.read().decode()]
                for name, item in files.items()
            },
        }

    return app


async def test_urlencoded_form() -> None:
    """An urlencoded body fills ``request.form``."""
    with trio.fail_after(5):
        async with served(upload_app()) as client:
            response = await client.post("/upload", data={"name": "Ada", "lang": ["py", "c"]})
    assert response.json() == {"form": {"name": ["Ada"], "lang": ["py", "c"]}, "files": {}}


async def test_multipart_upload() -> None:
    """A multipart body fills ``request.form`` and ``request.files``."""
    with trio.fail_after(5):
        async with served(upload_app()) as client:
            response = await client.post(
                "/upload",
                data={"title": "notes"},
                files={"doc": ("notes.txt", b"line one\nline two\n", "text/plain")},
            )
    assert response.json() == {
        "form": {"title": ["notes"]},
        "files": {"doc": ["notes.txt", "text/plain", "line one\nline two\n"]},
    }


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_body_over_max_content_length_is_413(framing: str) -> None:
    """A body over MAX_CONTENT_LENGTH is 413, whether its length is announced or not; a body
    within the limit is read."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64

    @app.route("/size", methods=["POST"])
    async def size() -> str:
        return str(len(await request.get_data()))

    def body(size: int) -> bytes | AsyncIterator[bytes]:
        data = b"x" * size
        return data if framing == "content-length" else _chunks(data[:32], data[32:])

    with trio.fail_after(5):
        async with served(app) as client:
            too_large = await client.post("/size", content=body(100))
        async with served(app) as client:
            fits = await client.post("/size", content=body(64))
    assert too_large.status_code == 413
    assert (fits.status_code, fits.text) == (200, "64")


async def test_crashing_view_is_500_and_the_server_goes_on() -> None:
    """An exception in a view is a 500 (no traceback shown); the next request is served."""
    app = TrioWeb(__name__)

    @app.route("/crash")
    async def crash() -> str:
        raise RuntimeError("secret detail")

    @app.route("/fine")
    async def fine() -> str:
        return "fine"

    with trio.fail_after(5):
        async with served(app) as client:
            crashed = await client.get("/crash")
            after = await client.get("/fine")
    assert crashed.status_code == 500
    assert "secret detail" not in crashed.text
    assert (after.status_code, after.text) == (200, "fine")


async def test_abort_sends_the_status() -> None:
    """``abort(403)`` in a view answers 403."""
    app = TrioWeb(__name__)

    @app.route("/private")
    async def private() -> str:
        abort(403)

    with trio.fail_after(5):
        async with served(app) as client:
            assert (await client.get("/private")).status_code == 403


def static_app(root: Path) -> TrioWeb:
    """An app rooted at ``root``, with ``static/hello.txt``, ``static/big.bin`` (several read
    chunks) and ``templates/greet.html``."""
    (root / "static").mkdir()
    (root / "static" / "hello.txt").write_text("hello, file\n")
    (root / "static" / "big.bin").write_bytes(os.urandom(200_000))
    (root / "templates").mkdir()
    (root / "templates" / "greet.html").write_text(
        "<p>Hello {{ name }} from {{ request.path }}</p>"
    )
    app = TrioWeb(__name__, root_path=str(root))

    @app.route("/greet/<name>")
    async def greet(name: str) -> str:
        return await render_template("greet.html", name=name)

    @app.route("/inline")
    async def inline() -> str:
        return await render_template_string("{{ a }} + {{ b }} = {{ a + b }}", a=1, b=2)

    return app


async def test_static_files(tmp_path: Path) -> None:
    """Static files are served whole, with their type; a matching ETag is 304; a missing file or
    a path escaping the folder is 404."""
    app = static_app(tmp_path)
    with trio.fail_after(5):
        async with served(app) as client:
            hello = await client.get("/static/hello.txt")
            big = await client.get("/static/big.bin")
            again = await client.get(
                "/static/hello.txt", headers={"If-None-Match": hello.headers["etag"]}
            )
            missing = await client.get("/static/nope.txt")
            escaping = await client.get("/static/..%2Ftemplates%2Fgreet.html")
    assert (hello.status_code, hello.text) == (200, "hello, file\n")
    assert hello.headers["content-type"].startswith("text/plain")
    assert big.content == (tmp_path / "static" / "big.bin").read_bytes()
    assert again.status_code == 304
    assert again.content == b""
    assert missing.status_code == 404
    assert escaping.status_code == 404


async def test_templates(tmp_path: Path) -> None:
    """Templates render from the templates folder, with autoescaping and ``request``."""
    app = static_app(tmp_path)
    with trio.fail_after(5):
        async with served(app) as client:
            greeting = await client.get("/greet/<Ada&Co>")
            inline = await client.get("/inline")
    assert greeting.text == "<p>Hello &lt;Ada&amp;Co&gt; from /greet/&lt;Ada&amp;Co&gt;</p>"
    assert greeting.headers["content-type"] == "text/html; charset=utf-8"
    assert inline.text == "1 + 2 = 3"


async def test_streaming_response_is_sent_as_produced() -> None:
    """An async generator's chunks reach the client one by one: the generator waits for the
    client to have the first chunk before it produces the second."""
    app = TrioWeb(__name__)
    client_has_first = trio.Event()

    @app.route("/stream")
    async def stream() -> AsyncIterator[str]:
        async def generate() -> AsyncIterator[str]:
            yield "first,"
            await client_has_first.wait()
            yield "second"

        return generate()

    with trio.fail_after(5):
        async with served(app) as client, client.stream("GET", "/stream") as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            chunks = response.aiter_text()
            received = await anext(chunks)
            assert received == "first,"
            client_has_first.set()
            async for chunk in chunks:
                received += chunk
    assert received == "first,second"


async def test_head_sends_the_headers_only() -> None:
    """HEAD of a GET route has GET's status and Content-Length, and no body."""
    app = TrioWeb(__name__)

    @app.route("/page")
    async def page() -> str:
        return "twelve bytes"

    with trio.fail_after(5):
        async with served(app) as client:
            response = await client.head("/page")
    assert response.status_code == 200
    assert response.headers["content-length"] == "12"
    assert response.content == b""


@pytest.mark.parametrize("where", ["view", "streamed body"])
async def test_client_disconnect_cancels_the_view(where: str) -> None:
    """A client that hangs up mid-request cancels the view (it sees trio.Cancelled), teardown
    hooks run, and the server goes on serving. Also when the waiting is in the streamed body
    of a view that itself cannot suspend (such a view gets no handler scope of its own, its
    body does)."""
    app = TrioWeb(__name__)
    entered, cancelled, torn_down = trio.Event(), trio.Event(), trio.Event()

    async def wait_forever() -> None:
        entered.set()
        try:
            await trio.Event().wait()
        except trio.Cancelled:
            cancelled.set()
            raise

    async def never() -> AsyncIterator[str]:
        await wait_forever()
        yield "never"  # pragma: no cover

    if where == "view":

        @app.route("/wait")
        async def wait() -> str:
            await wait_forever()
            return "never"  # pragma: no cover

    else:

        @app.route("/wait")
        async def wait_in_the_body() -> Response:
            return Response(never())

    @app.route("/")
    async def index() -> str:
        return "still here"

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        if request.path == "/wait":
            torn_down.set()

    with trio.fail_after(5):
        async with served(app) as client:
            port = client.base_url.port
            assert port is not None
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            connection = h11.Connection(h11.CLIENT)
            data = connection.send(
                h11.Request(method="GET", target="/wait", headers=[("Host", "127.0.0.1")])
            )
            assert data is not None
            await stream.send_all(data)
            await entered.wait()
            await stream.aclose()
            await cancelled.wait()
            await torn_down.wait()
            assert (await client.get("/")).text == "still here"


async def test_an_absolute_form_request_is_routed_on_its_path() -> None:
    """``GET http://host/path HTTP/1.1`` (absolute form, which HTTP/1.1 servers must accept) is
    served by the view of ``/path``."""
    app = TrioWeb(__name__)

    @app.route("/where")
    async def where() -> str:
        return request.path

    async with served(app) as client:
        port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                f"GET http://127.0.0.1:{port}/where HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"\r\n\r\n/where")


# h11's and Hypercorn's edge cases, over a raw socket ----------------------------------------------


def echo_app() -> TrioWeb:
    """``/echo`` answers with the request's method and body; ``/page`` with a fixed text."""
    app = TrioWeb(__name__)

    @app.route("/echo", methods=["POST"])
    async def echo() -> str:
        return f"{request.method} {(await request.get_data()).decode()}"

    @app.route("/page")
    async def page() -> str:
        return "twelve bytes"

    return app


async def read_to_end(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def test_pipelined_requests_are_answered_in_order() -> None:
    """Three requests in one write (a HEAD among them): three responses in order, the HEAD's
    without a body, and the connection closes after the one that asked for it."""
    async with served(echo_app()) as client:
        port = client.base_url.port
        assert port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n"
                b"HEAD /page HTTP/1.1\r\nHost: a\r\n\r\n"
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\nabc"
            )
            data = await read_to_end(stream)
    connection = h11.Connection(h11.CLIENT)
    connection.receive_data(data)
    connection.receive_data(b"")  # the server closed
    for method in (b"GET", b"HEAD", b"POST"):  # h11 frames what it reads by the requests
        connection.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
        connection.send(h11.EndOfMessage())
        response = connection.next_event()
        assert isinstance(response, h11.Response)
        assert response.status_code == 200
        body = b""
        while isinstance(event := connection.next_event(), h11.Data):
            body += event.data
        assert isinstance(event, h11.EndOfMessage)
        assert body == {b"GET": b"twelve bytes", b"HEAD": b"", b"POST": b"POST abc"}[method]
        if method != b"POST":
            connection.start_next_cycle()
    assert (b"connection", b"close") in response.headers
    assert connection.next_event() == h11.ConnectionClosed()


async def test_expect_100_continue() -> None:
    """A client that sends ``Expect: 100-continue`` gets ``100 Continue`` before it sends its
    body, then the response."""
    async with served(echo_app()) as client:
        port = client.base_url.port
        assert port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            interim = await stream.receive_some()
            assert interim.startswith(b"HTTP/1.1 100 ")
            assert interim.endswith(b"\r\n\r\n")
            await stream.send_all(b"hello")
            data = b""
            while not data.endswith(b"POST hello"):
                data += await stream.receive_some()
    assert data.startswith(b"HTTP/1.1 200 ")


async def test_a_chunked_request_body_in_pieces() -> None:
    """A chunked request body sent in several writes reaches the view whole, and the connection
    serves the next request."""
    async with served(echo_app()) as client:
        port = client.base_url.port
        assert port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for piece in (b"5\r\nhello\r\n", b"6\r\n chunk\r\n", b"0\r\n\r\n"):
                await stream.send_all(piece)
            data = b""
            while not data.endswith(b"POST hello chunk"):
                data += await stream.receive_some()
            await stream.send_all(b"GET /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data = await read_to_end(stream)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\ntwelve bytes")


async def test_an_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    """A connection idle for Hypercorn's ``keep_alive_timeout`` after a response is closed by
    the server."""
    config = HypercornConfig()
    config.keep_alive_timeout = 0.2
    async with served(echo_app(), config=config) as client:
        port = client.base_url.port
        assert port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            with trio.fail_after(5):
                data = await read_to_end(stream)  # the response, then the close
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\ntwelve bytes")
