"""Responses: what a view may return, streamed bodies, HEAD, and the Response object itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from _docs import load_example
from werkzeug.datastructures import Headers

from trioweb import Response, TrioWeb, request

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("value", "status", "body", "content_type", "header"),
    [
        ("text", 200, b"text", HTML, None),
        (b"\x00bytes", 200, b"\x00bytes", HTML, None),
        ({"a": 1, "b": "\u00e9"}, 200, '{"a":1,"b":"\u00e9"}'.encode(), JSON, None),
        ([1, "two"], 200, b'[1,"two"]', JSON, None),
        (Response("made", 202, {"X-A": "1"}), 202, b"made", HTML, "1"),
        (("created", 201), 201, b"created", HTML, None),
        (("teapot", "418 I'M A TEAPOT"), 418, b"teapot", HTML, None),
        (({"id": 7}, 201), 201, b'{"id":7}', JSON, None),
        ((Response("r"), 203), 203, b"r", HTML, None),
        (("body", 201, {"X-A": "1"}), 201, b"body", HTML, "1"),
        (("body", {"X-A": "1"}), 200, b"body", HTML, "1"),
        (("body", [("X-A", "1")]), 200, b"body", HTML, "1"),
        (("body", Headers({"X-A": "1"})), 200, b"body", HTML, "1"),
        (("body", 200, None), 200, b"body", HTML, None),
        (("plain", 200, {"Content-Type": "text/plain"}), 200, b"plain", "text/plain", None),
    ],
)
async def test_view_return_values(
    value: Any, status: int, body: bytes, content_type: str, header: str | None
) -> None:
    """Each accepted return value form becomes the expected status, body and headers."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Any:
        return value

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == status
    assert await response.get_data() == body
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers.get("X-A") == header


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "the view returned None"),
        (42, "a view cannot return a int"),
        (("a", 200, {}, "extra"), "not a 4-tuple"),
        (("lonely",), "not a 1-tuple"),
    ],
)
async def test_invalid_return_values_are_a_logged_500(
    value: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """None and values of unsupported types or tuple lengths are a 500, with the TypeError that
    says what to return logged."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Any:
        return value

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert len(errors) == 1
    assert isinstance(errors[0], TypeError)
    assert message in str(errors[0])


async def test_async_generator_body_is_streamed(http_scope, asgi_peer) -> None:
    """An async generator body is sent chunk by chunk as it is produced (the first chunk goes out
    before the second is made), without Content-Length; str chunks are UTF-8 encoded and empty
    chunks skipped."""
    app = TrioWeb(__name__)
    peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
    first_chunk_seen = trio.Event()
    record = peer.send

    async def send(message: dict[str, Any]) -> None:
        await record(message)
        if message.get("body") == b"first ":
            first_chunk_seen.set()

    async def produce() -> AsyncIterator[bytes | str]:
        yield b"first "
        await first_chunk_seen.wait()  # would deadlock if the body were buffered
        yield ""
        yield "s\u00e9cond"

    @app.route("/stream")
    async def stream() -> Any:
        return produce(), {"X-Streamed": "yes"}

    await app(http_scope("/stream"), peer.receive, send)
    assert peer.status == 200
    assert b"content-length" not in peer.headers
    assert peer.headers[b"x-streamed"] == b"yes"
    assert [(m["body"], m["more_body"]) for m in peer.sent[1:]] == [
        (b"first ", True),
        ("s\u00e9cond".encode(), True),
        (b"", False),
    ]


async def test_streamed_body_through_the_test_client() -> None:
    """The test client collects a streamed body whole."""
    app = TrioWeb(__name__)

    async def numbers() -> AsyncIterator[str]:
        for n in range(3):
            yield f"{n},"

    @app.route("/")
    async def index() -> Any:
        return numbers()

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"0,1,2,"


async def test_streaming_stops_and_closes_the_generator_when_the_client_leaves(
    http_scope, asgi_peer, autojump_clock: trio.testing.MockClock
) -> None:
    """A client that disconnects during an endless stream ends it: the generator is closed."""
    app = TrioWeb(__name__)
    closed = trio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick\n"
                await trio.sleep(1)
        finally:
            closed.set()

    @app.route("/ticks")
    async def ticks() -> Any:
        return endless()

    peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])

    async def leave_after_a_while() -> None:
        await trio.sleep(3.5)
        peer.disconnect()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leave_after_a_while)
        await app(http_scope("/ticks"), peer.receive, peer.send)
    assert closed.is_set()
    assert peer.body == b"tick\n" * 4
    assert peer.sent[-1]["more_body"] is True  # never finished


async def test_stream_that_fails_midway(caplog: pytest.LogCaptureFixture) -> None:
    """A streamed body that raises after the headers went out is logged and passed to teardown;
    the response stays incomplete (the test client says so) and the app keeps serving."""
    app = TrioWeb(__name__)
    seen: list[BaseException | None] = []

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise OSError("disk gone")

    @app.route("/broken")
    async def view() -> Any:
        return broken()

    @app.route("/ok")
    async def ok() -> str:
        return "ok"

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    async with app.test_client() as client:
        with pytest.raises(RuntimeError, match="without sending a complete response"):
            await client.get("/broken")
        assert (await client.get("/ok")).status_code == 200
    assert isinstance(seen[0], OSError)
    assert seen[1] is None
    assert any("Error while answering" in r.getMessage() for r in caplog.records)


async def test_head_sends_headers_only() -> None:
    """HEAD runs the GET view and sends its status and headers, Content-Length included, but no
    body; a streamed body is not even produced."""
    app = TrioWeb(__name__)
    produced: list[str] = []

    async def produce() -> AsyncIterator[bytes]:
        produced.append("started")
        yield b"streamed"

    @app.route("/page")
    async def page() -> Any:
        return "twelve bytes", {"X-Page": "1"}

    @app.route("/stream")
    async def stream() -> Any:
        return produce()

    async with app.test_client() as client:
        response = await client.head("/page")
        assert response.status_code == 200
        assert response.headers["Content-Length"] == "12"
        assert response.headers["X-Page"] == "1"
        assert await response.get_data() == b""
        response = await client.head("/stream")
        assert (response.status_code, await response.get_data()) == (200, b"")
    assert produced == []


async def test_response_cookies_and_headers() -> None:
    """A view can set cookies and headers on a Response; they reach the client."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Response:
        response = Response("ok", headers=[("X-Multi", "1"), ("X-Multi", "2")])
        response.set_cookie("session", "abc", httponly=True)
        return response

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.headers.getlist("X-Multi") == ["1", "2"]
    assert response.headers["Set-Cookie"].startswith("session=abc;")
    assert "HttpOnly" in response.headers["Set-Cookie"]


# The Response object ------------------------------------------------------------------------------


async def test_response_defaults_and_arguments() -> None:
    """A Response defaults to 200, HTML and an empty body; status lines, mimetype and
    content_type are honoured."""
    empty = Response()
    assert (empty.status_code, empty.mimetype, await empty.get_data()) == (200, "text/html", b"")
    assert not empty.is_streamed
    teapot = Response(b"x", "418 I'M A TEAPOT", mimetype="text/plain")
    assert (teapot.status_code, teapot.content_type) == (418, "text/plain; charset=utf-8")
    csv = Response("a,b", content_type="text/csv")
    assert csv.headers["Content-Type"] == "text/csv"
    assert await csv.get_data(as_text=True) == "a,b"


async def test_set_data() -> None:
    """`set_data` replaces the body and Content-Length; it accepts str and bytes-likes only."""
    response = Response("old")
    response.set_data(bytearray(b"new body"))
    assert await response.get_data() == b"new body"
    assert response.headers["Content-Length"] == "8"
    with pytest.raises(TypeError, match="must be str or bytes, not int"):
        response.set_data(5)  # type: ignore[arg-type]


async def test_get_data_consumes_a_stream_once() -> None:
    """`get_data()` on a streamed response reads the stream and keeps the bytes."""

    async def chunks() -> AsyncIterator[bytes | str]:
        yield b"a"
        yield "b"

    response = Response(chunks())
    assert response.is_streamed
    assert await response.get_data() == b"ab"
    assert not response.is_streamed
    assert await response.get_data() == b"ab"
    assert response.headers["Content-Length"] == "2"


async def test_stream_without_aclose() -> None:
    """Any async iterable works as a body, also one without `aclose`."""

    class Countdown:
        def __init__(self) -> None:
            self.left = 3

        def __aiter__(self) -> Countdown:
            return self

        async def __anext__(self) -> bytes:
            if self.left == 0:
                raise StopAsyncIteration
            self.left -= 1
            return str(self.left).encode()

    assert await Response(Countdown()).get_data() == b"210"


async def test_iter_encoded_of_an_empty_body_yields_nothing() -> None:
    """An empty body has no chunks; a non-empty one is a single chunk."""
    assert [c async for c in Response().iter_encoded()] == []
    assert [c async for c in Response("x").iter_encoded()] == [b"x"]


async def test_response_get_json() -> None:
    """`Response.get_json()` parses the body, and raises ValueError when it is not JSON."""
    assert await Response('{"a": [1]}').get_json() == {"a": [1]}
    with pytest.raises(ValueError, match="Expecting value"):
        await Response("<html>").get_json()


# As the docs show (docs/examples/responses.py) ----------------------------------------------------

responses_example = load_example("responses")


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body"),
    [
        ("GET", "/text", 200, "text/html; charset=utf-8", None),
        ("GET", "/data", 200, "application/json", b'{"name":"trioweb","tags":["trio","web"]}'),
        ("GET", "/teapot", 418, "text/html; charset=utf-8", b"I'm a teapot\n"),
        ("POST", "/things", 201, "application/json", b'{"id":1}'),
        ("GET", "/list", 200, "application/json", b"[1,2,3]"),
        ("GET", "/csv", 200, "text/csv; charset=utf-8", b"id,name\n1,trioweb\n"),
    ],
)
async def test_responses(
    method: str, path: str, status: int, content_type: str, body: bytes | None
) -> None:
    """Each kind of return value becomes the response the HTTP how-to says."""
    with trio.fail_after(5):
        async with responses_example.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            assert response.headers["Content-Type"] == content_type
            if body is not None:
                assert await response.get_data() == body


async def test_responses_headers_cookie_and_redirect() -> None:
    """A tuple's headers are sent, set_cookie sets a cookie, redirect answers 301."""
    with trio.fail_after(5):
        async with responses_example.app.test_client() as client:
            created = await client.post("/things")
            assert created.headers["Location"] == "/things/1"
            csv = await client.get("/csv")
            assert csv.headers["Set-Cookie"] == "seen=yes; HttpOnly; Path=/"
            moved = await client.get("/old-text")
            assert moved.status_code == 301
            assert moved.headers["Location"] == "/text"


async def test_responses_stream(autojump_clock: trio.abc.Clock) -> None:
    """A response built from an async generator is streamed, without Content-Length."""
    with trio.fail_after(5):
        async with responses_example.app.test_client() as client:
            response = await client.get("/countdown")
            assert await response.get_data() == b"3...\n2...\n1...\nliftoff!\n"
            assert "Content-Length" not in response.headers


async def test_responses_stream_is_cancelled_when_the_client_leaves(
    autojump_clock: trio.abc.Clock, http_scope: Any, asgi_peer: Any
) -> None:
    """A client that leaves mid-stream cancels the generator: no more chunks are sent."""
    with trio.fail_after(5):
        peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
        peer.disconnect()
        await responses_example.app(http_scope("/countdown"), peer.receive, peer.send)
        assert peer.status == 200
        assert peer.body == b"3...\n"
        assert not any(m["type"] == "http.response.body" and not m["more_body"] for m in peer.sent)


async def test_responses_stream_sees_the_request() -> None:
    """A streaming generator runs after the view returned, with the request still bound."""
    app = TrioWeb(__name__)

    @app.get("/")
    async def stream() -> Any:
        async def chunks() -> Any:
            yield request.args["word"]

        return chunks()

    with trio.fail_after(5):
        async with app.test_client() as client:
            response = await client.get("/?word=still-here")
            assert await response.get_data() == b"still-here"


@pytest.mark.parametrize("body", ["héllo", b"h\xc3\xa9llo"])
@pytest.mark.parametrize("status", [None, 201, "404 NOT FOUND"])
@pytest.mark.parametrize("mimetype", [None, "application/json", "text/csv"])
def test_a_plain_body_gets_the_same_headers_and_status_on_every_path(
    body: str | bytes, status: int | str | None, mimetype: str | None
) -> None:
    """A str or bytes body alone (the usual view result) is answered exactly as werkzeug's
    general path answers it, including for subclasses with another default type or status."""

    class Plain(Response):
        default_mimetype = "text/plain"

    class Created(Response):
        default_status = 201

    for cls in (Response, Plain, Created):
        untouched = cls(body, status, mimetype=mimetype)  # sent without its Headers ever made
        general = cls(body, status, headers={}, mimetype=mimetype)
        assert untouched.asgi_headers() == general.asgi_headers()
        usual = cls(body, status, mimetype=mimetype)
        assert list(usual.headers.items()) == list(general.headers.items())
        assert (usual.status, usual.status_code) == (general.status, general.status_code)
        assert usual._data == general._data == "héllo".encode()


def test_a_mimetype_with_a_newline_is_refused_as_werkzeug_refuses_it() -> None:
    with pytest.raises(ValueError, match="newline"):
        Response("ok", mimetype="text/plain\r\nX-Injected: 1")
