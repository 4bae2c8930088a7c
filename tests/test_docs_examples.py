"""The examples the docs include (docs/examples/*.py) do what the docs say they do.

Each example is loaded from its file under its own name (``notes``, ``routing``, ...), the way a
reader would import it, and exercised through ``app.test_client()``; the cancellation example is
driven by hand (the ``asgi_peer`` fixture) because it needs a client that leaves. The websocket
examples (``ws_*``) go through the test client's websockets, and some through real Hypercorn
(the pytest plugin's ``live_server`` with trio-websocket). Behaviour that the websocket guide
states in prose only is checked here too, on apps built inline.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed

import trioweb
import trioweb.testing
from trioweb import TrioWeb, request, websocket
from trioweb._config import DEFAULTS
from trioweb.testing import TestWebsocket, WebsocketDisconnectError, WebsocketResponseError
from trioweb.testing.pytest_plugin import LiveServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"


def _load(name: str) -> ModuleType:
    """Import docs/examples/{name}.py as module ``name`` (then ``from notes import app`` works)."""
    path = EXAMPLES / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        assert Path(str(loaded.__file__)) == path, f"module {name!r} is already {loaded!r}"
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


notes = _load("notes")
testing_example = _load("testing_example")
routing = _load("routing")
bodies = _load("bodies")
responses = _load("responses")
hooks = _load("hooks")
errors = _load("errors")
blueprints = _load("blueprints")
pages = _load("pages")
lifespan = _load("lifespan")
contexts = _load("contexts")
sessions = _load("sessions")
templating = _load("templating")
serving = _load("serving")
cancellation = _load("cancellation")
ws_handshake = _load("ws_handshake")
ws_auth = _load("ws_auth")
ws_messages = _load("ws_messages")
ws_ticker = _load("ws_ticker")
ws_cleanup = _load("ws_cleanup")
ws_closing = _load("ws_closing")
ws_raising = _load("ws_raising")
ws_heartbeat = _load("ws_heartbeat")
ws_routes = _load("ws_routes")
ws_testing_example = _load("ws_testing_example")  # imports the ws_* apps it tests

EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))

#: The tutorial's test client fixture, used by the wrappers of testing_example's tests below.
client = testing_example.client


# The docs themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
async def test_example_is_loaded_and_has_an_app(name: str) -> None:
    """Every docs/examples/*.py is loaded by this module and has a TrioWeb ``app``."""
    assert name in globals(), f"tests/test_docs_examples.py does not exercise {name}.py"
    app = _load(name).app
    if not isinstance(app, TrioWeb):  # a test module's ``app`` fixture, for the pytest plugin
        app = app.__wrapped__()
    assert isinstance(app, TrioWeb)


@pytest.mark.parametrize("name", [*EXAMPLE_NAMES, "templates/hello.html"])
async def test_example_is_included_in_the_docs(name: str) -> None:
    """Every example file is shown somewhere in the docs with literalinclude."""
    filename = name if "." in name else f"{name}.py"
    sources = "\n".join(path.read_text() for path in DOCS.rglob("*.rst"))
    assert re.search(rf"literalinclude:: [./]*examples/{re.escape(filename)}\b", sources)


async def test_configuration_table_lists_every_key_with_its_default() -> None:
    """The reference's configuration table has a row for each key of Config, with its default."""
    reference = (DOCS / "reference.rst").read_text()
    rows = dict(re.findall(r"^   \* - ``(\w+)``\n     - ``(.+?)``$", reference, re.MULTILINE))
    assert set(rows) == set(DEFAULTS)
    for key, default in DEFAULTS.items():
        assert eval(rows[key]) == default, key


async def test_reference_documents_the_public_api() -> None:
    """Every public name of trioweb and trioweb.testing, and the pytest plugin's LiveServer, has
    an entry in the reference."""
    reference = (DOCS / "reference.rst").read_text()
    pattern = r"^\.\. (?:autoclass|autofunction|autoexception|data):: (\w+)$"
    documented = set(re.findall(pattern, reference, re.MULTILINE))
    public = set(trioweb.__all__) | set(trioweb.testing.__all__) | {LiveServer.__name__}
    assert documented == public


# Tutorial and testing how-to (the tests of testing_example.py) -----------------------------------


@pytest.mark.parametrize(
    "test",
    [
        testing_example.test_index_says_hello,
        testing_example.test_added_note_can_be_read_back,
        testing_example.test_note_without_text_is_rejected,
        testing_example.test_unknown_note_is_not_found,
        testing_example.test_requests_run_concurrently,
    ],
    ids=lambda test: test.__name__,
)
async def test_testing_example_with_client(test: Callable[..., Any], client: Any) -> None:
    """The testing how-to's tests that use the client fixture pass."""
    with trio.fail_after(5):
        await test(client)


async def test_testing_example_background_task() -> None:
    """The testing how-to's background task test passes."""
    with trio.fail_after(5):
        await testing_example.test_background_task_runs()


async def test_testing_example_failing_background_task() -> None:
    """The testing how-to's failing background task test passes."""
    with trio.fail_after(5):
        await testing_example.test_failing_background_task_fails_the_test()


async def test_testing_example_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """The testing how-to's autojump_clock test passes."""
    with trio.fail_after(5):
        await testing_example.test_slow_view_on_a_virtual_clock(autojump_clock)


async def test_testing_example_failing_startup() -> None:
    """The testing how-to's failing-startup test passes."""
    with trio.fail_after(5):
        await testing_example.test_failing_startup_is_reported()


async def test_notes_lists_the_welcome_note() -> None:
    """The notes app starts with one note, listed with its URL."""
    with trio.fail_after(5):
        async with notes.app.test_client() as client:
            response = await client.get("/notes")
            assert await response.get_json() == {
                "notes": [{"id": 1, "text": "Try trioweb", "url": "/notes/1"}]
            }


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
        async with notes.app.test_client() as client:
            response = await client.open(path, method=method, **kwargs)
            assert response.status_code == status


# How-to: HTTP ------------------------------------------------------------------------------------


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
        async with routing.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            if body is not None:
                assert await response.get_data() == body


async def test_routing_wrong_method_is_405_with_allow() -> None:
    """A method the rule does not accept is a 405 that lists the allowed ones."""
    with trio.fail_after(5):
        async with routing.app.test_client() as client:
            response = await client.delete("/items/")
            assert response.status_code == 405
            assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


async def test_routing_missing_slash_redirects() -> None:
    """A rule that ends in a slash redirects the URL without it."""
    with trio.fail_after(5):
        async with routing.app.test_client() as client:
            response = await client.get("/items")
            assert response.status_code == 308
            assert response.headers["Location"].endswith("/items/")


async def test_routing_url_for() -> None:
    """url_for builds paths, puts unknown values in the query string, and absolute URLs."""
    with trio.fail_after(5):
        async with routing.app.test_client() as client:
            response = await client.get("/links")
            assert await response.get_json() == {
                "user": "/users/7",
                "search": "/search?q=trio&page=2",
                "absolute": "http://localhost/",
            }


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
        async with bodies.app.test_client() as client:
            response = await client.post(path, **kwargs)
            assert response.status_code == status
            if body is not None:
                assert await response.get_data() == body


async def test_bodies_upload() -> None:
    """An uploaded file arrives in request.files with its name and content."""
    with trio.fail_after(5):
        async with bodies.app.test_client() as client:
            photo = (io.BytesIO(b"JPEG..."), "cat.jpg")
            response = await client.post("/upload", data={"photo": photo})
            assert await response.get_json() == {"filename": "cat.jpg", "size": 7}


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
        async with responses.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            assert response.headers["Content-Type"] == content_type
            if body is not None:
                assert await response.get_data() == body


async def test_responses_headers_cookie_and_redirect() -> None:
    """A tuple's headers are sent, set_cookie sets a cookie, redirect answers 301."""
    with trio.fail_after(5):
        async with responses.app.test_client() as client:
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
        async with responses.app.test_client() as client:
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
        await responses.app(http_scope("/countdown"), peer.receive, peer.send)
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


async def test_teardown_receives_the_exception_of_a_500() -> None:
    """teardown_request gets the exception that made the request a 500, else None."""
    app = TrioWeb(__name__)
    seen: list[BaseException | None] = []

    @app.get("/ok")
    async def ok() -> str:
        return "ok"

    @app.get("/broken")
    async def broken() -> str:
        raise RuntimeError("a bug")

    @app.teardown_request
    async def record(error: BaseException | None) -> None:
        seen.append(error)

    with trio.fail_after(5):
        async with app.test_client() as client:
            assert (await client.get("/ok")).status_code == 200
            assert (await client.get("/broken")).status_code == 500
    assert seen[0] is None
    assert isinstance(seen[1], RuntimeError)


@pytest.mark.parametrize(
    ("path", "key", "status", "body"),
    [
        ("/me", "secret-key", 200, b'{"user":"ada"}'),
        ("/me", "wrong", 401, b'{"error":"send a valid X-API-Key header"}'),
        ("/me", None, 401, b'{"error":"send a valid X-API-Key header"}'),
        ("/nowhere", None, 401, None),
        ("/nowhere", "secret-key", 404, None),
    ],
)
async def test_hooks(path: str, key: str | None, status: int, body: bytes | None) -> None:
    """before_request guards every URL, after_request adjusts every response, teardown
    releases what before_request acquired."""
    with trio.fail_after(5):
        headers = {"X-API-Key": key} if key is not None else {}
        async with hooks.app.test_client() as client:
            response = await client.get(path, headers=headers)
            assert response.status_code == status
            assert response.headers["Cache-Control"] == "no-store"
            if body is not None:
                assert await response.get_data() == body
        assert hooks.pool.in_use == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/items/apple", 200, {"name": "apple", "stock": 3}),
        ("GET", "/items/kiwi", 404, {"error": "no such page"}),
        ("GET", "/nowhere", 404, {"error": "no such page"}),
        ("POST", "/basket?item=apple", 200, {"reserved": ["apple"]}),
        (
            "POST",
            "/basket?item=apple&item=pear",
            409,
            {"error": "pear is out of stock", "item": "pear"},
        ),
        # Two tasks fail: the first leaf of the group with a handler decides (either item).
        ("POST", "/basket?item=pear&item=plum", 409, None),
        ("GET", "/broken", 500, {"error": "something went wrong on our side"}),
    ],
)
async def test_errors(method: str, path: str, status: int, body: Any) -> None:
    """abort, error handlers and errors from a nursery give the responses the how-to says."""
    with trio.fail_after(5):
        async with errors.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            if body is None:
                assert (await response.get_json())["item"] in ("pear", "plum")
            else:
                assert await response.get_json() == body


async def test_errors_group_of_several_goes_to_an_exception_group_handler() -> None:
    """A group of several exceptions from a nursery reaches a handler for ExceptionGroup."""
    app = TrioWeb(__name__)

    async def fail(n: int) -> None:
        raise ValueError(n)

    @app.get("/")
    async def both() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail, 1)
            nursery.start_soon(fail, 2)
        return "unreachable"

    @app.errorhandler(ExceptionGroup)
    async def group(error: ExceptionGroup[Exception]) -> tuple[str, int]:
        return f"{len(error.exceptions)} failures", 502

    with trio.fail_after(5):
        async with app.test_client() as client:
            response = await client.get("/")
            assert response.status_code == 502
            assert await response.get_data() == b"2 failures"


async def test_errors_abort_without_handler_is_werkzeug_page() -> None:
    """abort(403, description) without a 403 handler answers werkzeug's page with the text."""
    with trio.fail_after(5):
        async with errors.app.test_client() as client:
            response = await client.get("/members")
            assert response.status_code == 403
            assert "Members only: log in first." in await response.get_data(as_text=True)


async def test_errors_debug_shows_traceback() -> None:
    """With DEBUG and no 500 handler, an exception's traceback is the 500 body."""
    app = TrioWeb(__name__)
    app.debug = True

    @app.get("/")
    async def broken() -> str:
        raise RuntimeError("a bug")

    with trio.fail_after(5):
        async with app.test_client() as client:
            response = await client.get("/")
            assert response.status_code == 500
            assert "RuntimeError: a bug" in await response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "status", "api", "body"),
    [
        ("/", 200, False, None),
        ("/api/status", 200, True, {"status": "ok", "users": "/api/users/"}),
        ("/api/users/", 200, True, {"users": ["/api/users/1", "/api/users/2"]}),
        ("/api/users/2", 200, True, {"id": 2, "name": "grace"}),
        ("/api/users/3", 404, True, {"error": "Not Found", "status": 404}),
        ("/api/nothing", 404, False, None),
    ],
)
async def test_blueprints(path: str, status: int, api: bool, body: Any) -> None:
    """Blueprint prefixes, nesting, url_for, hooks and error handlers work as the how-to says."""
    with trio.fail_after(5):
        async with blueprints.app.test_client() as client:
            response = await client.get(path)
            assert response.status_code == status
            assert ("X-API-Version" in response.headers) is api
            if body is not None:
                assert await response.get_json() == body


async def test_pages_template_escapes_and_links_static() -> None:
    """render_template escapes values and url_for('static') links the stylesheet."""
    with trio.fail_after(5):
        async with pages.app.test_client() as client:
            response = await client.get("/hello/Tom&Jerry")
            html = await response.get_data(as_text=True)
            assert "Hello, Tom&amp;Jerry!" in html
            assert 'href="/static/style.css"' in html
            assert "You asked for /hello/Tom&amp;Jerry." in html
            shout = await client.get("/shout/trio")
            assert await shout.get_data() == b"<b>TRIO!</b>"


async def test_pages_static_file_is_cached() -> None:
    """A static file is served with an ETag, and a request that sends it back gets a 304."""
    with trio.fail_after(5):
        async with pages.app.test_client() as client:
            response = await client.get("/static/style.css")
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/css")
            etag = response.headers["ETag"]
            again = await client.get("/static/style.css", headers={"If-None-Match": etag})
            assert again.status_code == 304


@pytest.mark.parametrize(
    ("filename", "status"),
    [("report.txt", 200), ("missing.txt", 404), ("../pages.py", 404)],
)
async def test_pages_download(filename: str, status: int) -> None:
    """send_from_directory serves files of its folder as attachments, and nothing outside it."""
    with trio.fail_after(5):
        async with pages.app.test_client() as client:
            response = await client.get(f"/downloads/{filename}")
            assert response.status_code == status
            if status == 200:
                assert response.headers["Content-Disposition"] == "attachment; filename=report.txt"
                assert await response.get_data() == b"Quarterly report: all good.\n"


# How-to: lifespan and serving -----------------------------------------------------------------


async def test_lifespan_worker_drains_the_queue_at_shutdown() -> None:
    """Jobs queued by views are all done by the worker before the app stops."""
    with trio.fail_after(5):
        async with lifespan.app.test_client() as client:
            for job in ["resize", "email", "archive"]:
                response = await client.post("/jobs", data=job)
                assert response.status_code == 202
        assert lifespan.jobs.done == ["resize", "email", "archive"]
        assert lifespan.app.nursery is None


async def test_lifespan_background_task_runs_after_the_response() -> None:
    """add_background_task runs the function in the app nursery, without the request."""
    with trio.fail_after(5):
        async with lifespan.app.test_client() as client:
            response = await client.post("/welcome/ada")
            assert response.status_code == 202
            await trio.testing.wait_all_tasks_blocked()
            assert lifespan.welcomed[-1] == "ada"


async def test_lifespan_background_task_needs_a_serving_app() -> None:
    """add_background_task outside serving raises RuntimeError."""
    with pytest.raises(RuntimeError, match="needs the app to be serving"):
        lifespan.app.add_background_task(lifespan.send_welcome, "ada")


async def _http_get(url: str, path: str = "/") -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        chunks = []
        while chunk := await stream.receive_some():
            chunks.append(chunk)
    return b"".join(chunks)


async def test_serving_serve_until_stop() -> None:
    """nursery.start(serve_until, stop) returns the URL of a live server that stops on stop."""
    with trio.fail_after(5):
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serving.serve_until, stop)
            assert url.startswith("http://127.0.0.1:")
            reply = await _http_get(url)
            assert reply.startswith(b"HTTP/1.1 200")
            assert reply.endswith(b"Served from inside a Trio program\n")
            stop.set()


async def test_serving_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    """main() serves the app and prints its URL once it accepts connections."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serving.main, port=0))
            await trio.testing.wait_all_tasks_blocked()
            url = capsys.readouterr().out.removeprefix("serving on ").strip()
            reply = await _http_get(url)
            assert reply.startswith(b"HTTP/1.1 200")
            nursery.cancel_scope.cancel()


# Explanation: cancellation ---------------------------------------------------------------------


async def test_cancellation_poll_answers_when_a_message_arrives() -> None:
    """A long poll returns the messages posted while it waited."""
    with trio.fail_after(5):
        async with cancellation.app.test_client() as client:
            async with trio.open_nursery() as nursery:
                replies = []

                async def poll() -> None:
                    replies.append(await client.get("/rooms/news?after=0"))

                nursery.start_soon(poll)
                await trio.testing.wait_all_tasks_blocked()
                assert cancellation.rooms["news"].waiting == 1
                await client.post("/rooms/news", data="hello")
            assert await replies[0].get_json() == {"messages": ["hello"]}
            assert cancellation.rooms["news"].waiting == 0


async def test_cancellation_poll_cleans_up_when_the_client_leaves(
    autojump_clock: trio.abc.Clock, http_scope: Any, asgi_peer: Any
) -> None:
    """A client that leaves cancels the poll: finally runs, shielded cleanup completes, and
    nothing is sent."""
    with trio.fail_after(5):
        peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
        peer.disconnect()
        await cancellation.app(http_scope("/rooms/quiet"), peer.receive, peer.send)
        assert peer.sent == []
        assert cancellation.rooms["quiet"].waiting == 0
        assert cancellation.log[-1] == "stopped polling quiet"


async def test_cancellation_digest_sees_the_group_with_except_star(
    autojump_clock: trio.abc.Clock, http_scope: Any, asgi_peer: Any
) -> None:
    """A client that leaves during a view's nursery reaches except* trio.Cancelled, and the
    re-raised group ends the request quietly."""
    with trio.fail_after(5):
        peer = asgi_peer([{"type": "http.request", "body": b"", "more_body": False}])
        peer.disconnect()
        scope = http_scope("/digest", query_string=b"room=a&room=b")
        await cancellation.app(scope, peer.receive, peer.send)
        assert peer.sent == []
        assert cancellation.log[-1] == "client left while waiting for a, b"


# How-to: websockets ------------------------------------------------------------------------------


async def _closed_by_app(ws: TestWebsocket) -> tuple[int, str, list[str | bytes]]:
    """Read until the app closes: its close code and reason, and the messages before them."""
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await ws.receive())
        except WebsocketDisconnectError as closed:
            return closed.code, closed.reason, messages


async def _refusal(app: TrioWeb, path: str, **kwargs: Any) -> trioweb.testing.TestResponse:
    """The HTTP response with which ``app`` refuses a websocket handshake to ``path``."""
    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket(path, **kwargs):
                pass
    response: trioweb.testing.TestResponse = refused.value.response
    return response


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["chat.v1", "chat.v2"], "chat.v2"), (["chat.v1"], "chat.v1"), (["x", "chat.v2"], "chat.v2")],
)
async def test_ws_handshake_chat_picks_the_best_subprotocol(
    offered: list[str], chosen: str
) -> None:
    """/chat accepts with the best subprotocol both sides speak and an extra header."""
    async with (
        ws_handshake.app.test_client() as client,
        client.websocket("/chat", subprotocols=offered) as ws,
    ):
        assert ws.subprotocol == chosen
        assert ws.accept_headers["X-Chat-Server"] == "trioweb"
        assert await ws.receive() == f"Welcome! We speak {chosen}."
        await ws.send("hi")
        assert await ws.receive() == "hi"


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "body"),
    [
        ("/chat", {}, 400, b"Offer one of these subprotocols: chat.v2, chat.v1"),
        (
            "/chat",
            {"subprotocols": ["chat.v1"], "headers": {"Origin": "https://evil.example"}},
            403,
            b"Pages from https://evil.example may not connect here",
        ),
        ("/admin", {}, 401, None),
        ("/admin", {"headers": {"Authorization": "Basic YWRhOndyb25n"}}, 403, b"Invalid password"),
        ("/rooms/kitchen", {}, 404, None),
    ],
)
async def test_ws_handshake_refusals(
    path: str, kwargs: dict[str, Any], status: int, body: bytes | None
) -> None:
    """Returned values, abort, raised HTTP errors and before_websocket refuse with HTTP."""
    response = await _refusal(ws_handshake.app, path, **kwargs)
    assert response.status_code == status
    if body is not None:
        assert await response.get_data() == body
    if path.startswith("/rooms"):
        assert "There is no room called &#39;kitchen&#39;." in await response.get_data(True)


async def test_ws_handshake_accepts_the_right_origin_password_and_room() -> None:
    """An allowed Origin, the admin password and a known room are accepted."""
    credentials = base64.b64encode(b"ada:correct horse battery staple").decode()
    async with ws_handshake.app.test_client() as client:
        origin = {"Origin": "https://chat.example.com"}
        async with client.websocket("/chat", headers=origin, subprotocols=["chat.v1"]) as ws:
            assert await ws.receive() == "Welcome! We speak chat.v1."
        admin = {"Authorization": f"Basic {credentials}"}
        async with client.websocket("/admin", headers=admin) as ws:
            assert await _closed_by_app(ws) == (1000, "", ["Hello, ada."])
        async with client.websocket("/rooms/trio") as ws:
            assert await _closed_by_app(ws) == (1000, "", ["You are in trio."])


async def test_ws_close_before_accept_is_403() -> None:
    """close() before accept refuses the handshake; the server answers 403."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def refuse() -> None:
        await websocket.close(4003)

    response = await _refusal(app, "/")
    assert response.status_code == 403
    assert await response.get_data() == b""


async def test_ws_before_websocket_abort_refuses() -> None:
    """abort() in a before_websocket hook refuses the handshake with that status."""
    app = TrioWeb(__name__)

    @app.before_websocket
    async def closed_for_maintenance() -> None:
        trioweb.abort(503)

    @app.websocket("/")
    async def never_runs() -> None:
        raise AssertionError("the hook refused first")

    assert (await _refusal(app, "/")).status_code == 503


async def test_ws_returning_without_accepting_is_500(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that neither accepts nor refuses gets a logged 500."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def forgetful() -> None:
        pass

    assert (await _refusal(app, "/")).status_code == 500
    assert "returned without accepting" in caplog.text


async def test_ws_accept_with_a_subprotocol_not_offered_is_a_500_before_anything_is_sent() -> None:
    """accept(subprotocol=...) with a name the client did not offer raises ValueError, which
    (before accept) becomes a 500 refusal."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.websocket("/")
    async def wrong() -> None:
        try:
            await websocket.accept(subprotocol="chat.v3")
        except ValueError as error:
            seen.append(str(error))
            raise

    response = await _refusal(app, "/", subprotocols=["chat.v1"])
    assert response.status_code == 500
    assert seen == ["subprotocol 'chat.v3' was not offered by the client; it offered ['chat.v1']"]


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/me", {"headers": {"Authorization": "Bearer tok-ada-7f3a"}}, 200),
        ("/me", {"query_string": {"token": "tok-grace-91c2"}}, 200),
        ("/me", {"headers": {"Authorization": "Bearer stolen"}}, 401),
        ("/me", {}, 401),
    ],
)
async def test_ws_auth_guards_http_views(path: str, kwargs: dict[str, Any], status: int) -> None:
    """login_required works on an HTTP view too."""
    async with ws_auth.app.test_client() as client:
        response = await client.get(path, **kwargs)
        assert response.status_code == status
        if status == 200:
            assert (await response.get_json())["user"] in {"ada", "grace"}


async def test_ws_auth_refuses_an_unknown_token() -> None:
    """login_required refuses a websocket with an unknown token with 401."""
    headers = {"Authorization": "Bearer stolen"}
    assert (await _refusal(ws_auth.app, "/inbox", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "test",
    [
        ws_testing_example.test_inbox_greets_the_user,
        ws_testing_example.test_inbox_takes_a_token_in_the_query_string,
        ws_testing_example.test_inbox_without_a_token_is_refused,
    ],
    ids=lambda test: test.__name__,
)
async def test_ws_testing_example_with_client(test: Callable[..., Any]) -> None:
    """The websocket testing how-to's tests that use the plugin's client fixture pass."""
    async with ws_auth.app.test_client() as plugin_client:
        await test(plugin_client)


@pytest.mark.parametrize(
    "test",
    [
        ws_testing_example.test_text_is_refused_with_close_1003,
        ws_testing_example.test_leaving_runs_the_handlers_cleanup,
        ws_testing_example.test_handler_errors_fail_the_test,
        ws_testing_example.test_a_fast_sender_waits_for_the_test,
    ],
    ids=lambda test: test.__name__,
)
async def test_ws_testing_example_own_client(test: Callable[..., Any]) -> None:
    """The websocket testing how-to's tests that open their own client pass."""
    await test()


async def test_ws_testing_example_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """The websocket testing how-to's ticker test passes."""
    await ws_testing_example.test_ticker_on_a_virtual_clock(autojump_clock)


@pytest.mark.parametrize("app", [ws_auth.app], ids=["ws_auth"])
async def test_ws_testing_example_live_server(live_server: LiveServer) -> None:
    """The websocket testing how-to's live_server test passes against real Hypercorn."""
    assert live_server.ws_url == "ws" + live_server.url.removeprefix("http")
    await ws_testing_example.test_inbox_over_a_real_connection(live_server)


FRAMES: list[str | bytes] = ["hello", "\u00e9t\u00e9 \u2603", b"\x00\xffbinary", "", b""]


async def test_ws_messages_echo_keeps_type_and_emptiness() -> None:
    """Echo returns every message with its frame type, empty frames included, in order."""
    async with ws_messages.app.test_client() as client, client.websocket("/echo") as ws:
        for frame in FRAMES:
            await ws.send(frame)
        for frame in FRAMES:
            reply = await ws.receive()
            assert reply == frame
            assert type(reply) is type(frame)


async def test_ws_messages_sum_survives_bad_input() -> None:
    """receive_json raises BadRequest for invalid JSON and the websocket stays usable."""
    async with ws_messages.app.test_client() as client, client.websocket("/sum") as ws:
        await ws.send_json([1, 2.5])
        assert await ws.receive_json() == {"total": 3.5, "count": 2}
        await ws.send("[1, 2")
        assert await ws.receive_json() == {"error": "that was not JSON"}
        await ws.send_json({"numbers": [1]})
        assert await ws.receive_json() == {"error": "send a list of numbers, like [1, 2.5]"}
        await ws.send_json([True])
        assert await ws.receive_json() == {"error": "send a list of numbers, like [1, 2.5]"}
        await ws.send(b"[4]")
        assert await ws.receive_json() == {"total": 7.5, "count": 1}


async def test_ws_messages_sha256_hashes_binary_frames() -> None:
    """/sha256 answers each binary frame with its hex digest."""
    async with ws_messages.app.test_client() as client, client.websocket("/sha256") as ws:
        await ws.send(b"")
        assert await ws.receive() == hashlib.sha256(b"").hexdigest()


async def test_ws_send_takes_only_str_or_bytes_and_send_json_is_like_jsonify() -> None:
    """send() refuses other types with TypeError; send_json builds what jsonify builds."""
    app = TrioWeb(__name__)
    errors: list[str] = []

    @app.websocket("/")
    async def sender() -> None:
        try:
            await websocket.send({"a": 1})  # type: ignore[arg-type]
        except TypeError as error:
            errors.append(str(error))
        await websocket.send(bytearray(b"ba"))
        await websocket.send_json({"a": 1})
        await websocket.send_json(a=1)
        await websocket.send_json(1, 2)
        await websocket.send_json("text")

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await _closed_by_app(ws) == (
            1000,
            "",
            [b"ba", '{"a":1}', '{"a":1}', "[1,2]", '"text"'],
        )
    assert errors == [
        "websocket.send() takes str or bytes, not dict; use send_json() for other values"
    ]


async def test_ws_one_receiver_at_a_time() -> None:
    """A second task calling receive() while one waits there gets BusyResourceError."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def two_receivers() -> None:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(websocket.receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await websocket.receive()
            await websocket.send("busy")

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await ws.receive() == "busy"
        await ws.send("for the first receiver")
        assert await _closed_by_app(ws) == (1000, "", [])


async def test_ws_ticker_refuses_bad_commands(autojump_clock: trio.abc.Clock) -> None:
    """Unknown commands and intervals out of range get an error message."""
    async with ws_ticker.app.test_client() as client, client.websocket("/ticks") as ws:
        for command in ["faster", "interval fast", "interval 0.01", "interval nan"]:
            await ws.send(command)
            assert await ws.receive_json() == {"error": "commands: 'interval <0.1 to 60>', 'stop'"}


async def test_ws_cleanup_online_list_and_normal_leave() -> None:
    """Each message lists who is online; leaving without close() reports code 1000."""
    async with ws_cleanup.app.test_client() as client:
        async with client.websocket("/online/bob") as bob:
            async with client.websocket("/online/cy") as cy:
                await cy.send("?")
                assert await cy.receive_json() == {"online": ["bob", "cy"]}
            await bob.send("?")
            assert await bob.receive_json() == {"online": ["bob"]}
        assert ws_cleanup.presence.online == set()
        assert ws_cleanup.departures[-2:] == [("cy", 1000), ("bob", 1000)]


async def test_ws_cleanup_jobs_are_cancelled_with_their_client(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Finished jobs report back; a client that leaves cancels the rest, and both the child task
    and except* around the nursery see it."""
    async with ws_cleanup.app.test_client() as client, client.websocket("/jobs") as ws:
        await ws.send("backup")
        assert await ws.receive_json() == {"done": "backup"}
        await ws.send("report")
        await ws.send("invoice")
        await trio.testing.wait_all_tasks_blocked()
        await ws.close(4001, "closing the laptop")
    *abandoned, left = ws_cleanup.job_log[-3:]
    assert sorted(abandoned) == ["invoice abandoned", "report abandoned"]  # in either order
    assert left == "client left with code 4001"


async def test_ws_closing_notes(autojump_clock: trio.abc.Clock) -> None:
    """bye closes with 1000, a long note with 1009, and a handled error with 1011 (not raised
    in the test); teardown_websocket runs each time."""
    async with ws_closing.app.test_client() as client:
        async with client.websocket("/notes") as ws:
            await ws.send("one")
            assert await ws.receive_json() == {"saved": 1}
            await ws.send("bye")
            assert await _closed_by_app(ws) == (1000, "", [])
        async with client.websocket("/notes") as ws:
            await ws.send("x" * 201)
            assert await _closed_by_app(ws) == (1009, "notes are at most 200 characters", [])
        async with client.websocket("/notes") as ws:
            for _ in range(4):
                await ws.send("note")
            code, reason, replies = await _closed_by_app(ws)
            assert (code, reason) == (1011, "Internal Server Error")
            assert replies == ['{"saved":1}', '{"saved":2}', '{"saved":3}']
    assert ws_closing.events[-4:] == [
        "/notes ended after 0 s: ok",
        "/notes ended after 0 s: ok",
        "quota exceeded: 3 notes saved already",
        "/notes ended after 0 s: ok",  # an error handler dealt with QuotaExceeded
    ]


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1014, 3000, 4000, 4999])
async def test_ws_valid_close_codes(code: int) -> None:
    """Codes a server may send close the websocket with that code and reason."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def closer() -> None:
        await websocket.accept()
        await websocket.close(code, "\u2603" * 41)  # 123 bytes of UTF-8

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await _closed_by_app(ws) == (code, "\u2603" * 41, [])


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (999, ""),
        (1004, ""),
        (1005, ""),
        (1006, ""),
        (1015, ""),
        (2999, ""),
        (5000, ""),
        (1000, "\u2603" * 41 + "!"),  # 124 bytes
    ],
)
async def test_ws_invalid_close_is_value_error(code: int, reason: str) -> None:
    """Codes a server may not send, and reasons over 123 bytes, raise ValueError."""
    app = TrioWeb(__name__)
    raised: list[BaseException] = []

    @app.websocket("/")
    async def closer() -> None:
        await websocket.accept()
        try:
            await websocket.close(code, reason)
        except ValueError as error:
            raised.append(error)

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await _closed_by_app(ws) == (1000, "", [])
    assert len(raised) == 1


async def test_ws_after_own_close_send_raises_websocket_closed_which_ends_quietly() -> None:
    """After close(), send raises WebsocketClosed with that code; escaping, it is a normal end."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/")
    async def closer() -> None:
        await websocket.accept()
        await websocket.close(4002, "done")
        try:
            await websocket.send("too late")
        except trioweb.WebsocketClosed as closed:
            seen.append((closed.code, closed.reason))
        await websocket.receive()  # raises WebsocketClosed again, and escapes

    @app.teardown_websocket
    async def record(error: BaseException | None) -> None:
        seen.append(error)

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await _closed_by_app(ws) == (4002, "done", [])
    assert seen == [(4002, "done"), None]


@pytest.mark.parametrize("wait", ["receive", "channel", "child nursery", "sleep"])
async def test_ws_client_leaving_cancels_the_handler_wherever_it_waits(
    wait: str, autojump_clock: trio.abc.Clock
) -> None:
    """The client leaving raises Cancelled at the handler's checkpoint; afterwards close_code and
    close_reason say how it left, and a shielded send raises WebsocketClosed."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/")
    async def waiter() -> None:
        await websocket.accept()
        try:
            if wait == "receive":
                await websocket.receive()
            elif wait == "channel":
                _, receive_channel = trio.open_memory_channel[str](0)
                await receive_channel.receive()
            elif wait == "child nursery":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.sleep_forever)
            else:
                await trio.sleep(3600)
        except BaseException as error:
            seen.append(trio.Cancelled in _leaves(error))
            seen.append((websocket.close_code, websocket.close_reason))
            with trio.CancelScope(shield=True):
                try:
                    await websocket.send("anyone there?")
                except trioweb.WebsocketClosed as closed:
                    seen.append((closed.code, closed.reason))
            raise

    @app.after_websocket
    async def after(response: Any) -> Any:
        seen.append(("after", response))
        return response

    async with app.test_client() as client, client.websocket("/") as ws:
        await trio.testing.wait_all_tasks_blocked()
        await ws.close(4004, "bye")
    assert seen == [True, (4004, "bye"), (4004, "bye"), ("after", None)]


def _leaves(error: BaseException) -> list[type[BaseException]]:
    if isinstance(error, BaseExceptionGroup):
        return [kind for inner in error.exceptions for kind in _leaves(inner)]
    return [type(error)]


async def test_ws_watcher_keeps_messages_for_a_busy_handler(autojump_clock: trio.abc.Clock) -> None:
    """Messages that arrive while the handler is not receiving are handed over in order."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def slow() -> None:
        await websocket.accept()
        await trio.sleep(1)
        await websocket.send_json([await websocket.receive() for _ in range(20)])

    async with app.test_client() as client, client.websocket("/") as ws:
        for n in range(20):
            await ws.send(str(n))
        assert await ws.receive_json() == [str(n) for n in range(20)]


async def test_ws_unhandled_error_closes_1011_runs_hooks_and_is_raised() -> None:
    """After accept, an unhandled exception closes with 1011, runs the after and teardown hooks,
    and reaches the server (here the test client re-raises it)."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/")
    async def broken() -> None:
        await websocket.accept()
        raise KeyError("a bug")

    @app.after_websocket
    async def after(response: Any) -> Any:
        seen.append(("after", response))
        return response

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(("teardown", type(error)))

    async with app.test_client() as client, client.websocket("/") as ws:
        with pytest.raises(KeyError):
            await ws.receive()
        assert (ws.close_code, ws.close_reason) == (1011, "Internal Server Error")
    assert seen == [("after", None), ("teardown", KeyError)]


async def test_ws_after_websocket_sees_the_refusal_response() -> None:
    """Before accept, after_websocket gets the refusal response and may change it."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def refuse() -> tuple[str, int]:
        return "No", 403

    @app.after_websocket
    async def add_header(response: Any) -> Any:
        response.headers["X-Refused"] = "yes"
        return response

    response = await _refusal(app, "/")
    assert response.headers["X-Refused"] == "yes"


async def test_ws_heartbeat_echoes(autojump_clock: trio.abc.Clock) -> None:
    """Messages other than pong are echoed."""
    async with ws_heartbeat.app.test_client() as client, client.websocket("/live") as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_ws_heartbeat_closes_a_silent_client(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silent client is pinged every PING_EVERY seconds and closed with 4000 once it has been
    silent for SILENCE_LIMIT seconds."""
    monkeypatch.setattr(ws_heartbeat, "PING_EVERY", 1)
    monkeypatch.setattr(ws_heartbeat, "SILENCE_LIMIT", 2.5)
    async with ws_heartbeat.app.test_client() as client, client.websocket("/live") as ws:
        start = trio.current_time()
        assert await ws.receive() == "ping"
        assert await ws.receive() == "ping"
        assert trio.current_time() - start == pytest.approx(2)
        assert await _closed_by_app(ws) == (4000, "nothing received for 2.5 s", [])
        assert trio.current_time() - start == pytest.approx(2.5)


async def test_ws_heartbeat_keeps_an_answering_client(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that answers each ping stays connected."""
    monkeypatch.setattr(ws_heartbeat, "PING_EVERY", 0.25)
    monkeypatch.setattr(ws_heartbeat, "SILENCE_LIMIT", 0.4)
    async with ws_heartbeat.app.test_client() as client, client.websocket("/live") as ws:
        start = trio.current_time()
        for _ in range(10):
            assert await ws.receive() == "ping"
            await ws.send("pong")
        assert trio.current_time() - start == pytest.approx(2.5)


async def test_ws_routes_page_and_socket_share_a_path() -> None:
    """GET /feed is the page (linking ws://.../feed) and a websocket to /feed is the feed."""
    async with ws_routes.app.test_client() as client:
        page = await client.get("/feed")
        assert 'new WebSocket("ws://localhost/feed")' in await page.get_data(as_text=True)
        secure = await client.get("/feed", scheme="https")
        assert 'new WebSocket("wss://localhost/feed")' in await secure.get_data(as_text=True)
        async with client.websocket("/feed") as ws:
            assert await _closed_by_app(ws) == (1000, "", ["first", "second", "third"])
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
        assert (await _refusal(ws_routes.app, path)).status_code == status
    else:
        async with ws_routes.app.test_client() as client:
            assert (await client.get(path)).status_code == status


async def test_ws_test_client_timeout_bounds_every_wait(autojump_clock: trio.abc.Clock) -> None:
    """A receive that the app never answers fails after the client's timeout."""
    async with (
        ws_messages.app.test_client(timeout=2) as client,
        client.websocket("/echo") as ws,
    ):
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            await ws.receive()
        assert trio.current_time() - start == 2


#: What the /left handler of _live_app saw, and an event set when its cleanup is done.
_live_state: dict[str, Any] = {}
_live_app = TrioWeb("live")


@_live_app.websocket("/left")
async def _left() -> None:
    try:
        await websocket.receive()
    finally:
        _live_state["code"] = websocket.close_code
        _live_state["done"].set()


@_live_app.websocket("/broken")
async def _broken() -> None:
    await websocket.receive()
    raise KeyError("a bug")


@pytest.mark.parametrize("app", [_live_app], ids=["live"])
async def test_ws_hypercorn_reports_1006_for_a_client_close(live_server: LiveServer) -> None:
    """Under Hypercorn the handler sees 1006, whatever code the client closed with."""
    _live_state["done"] = trio.Event()
    async with live_server.websocket("/left") as connection:
        await connection.aclose(4000, "bye")
    await _live_state["done"].wait()
    assert _live_state["code"] == 1006


@pytest.mark.parametrize("app", [_live_app], ids=["live"])
async def test_ws_hypercorn_logs_an_unhandled_error_and_the_client_sees_1011(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An unhandled exception after accept: the client gets 1011, Hypercorn logs the error."""
    async with live_server.websocket("/broken") as connection:
        await connection.send_message("go")
        with pytest.raises(ConnectionClosed) as closed:
            await connection.get_message()
    assert closed.value.reason.code == 1011
    assert closed.value.reason.reason == "Internal Server Error"
    (record,) = [r for r in caplog.records if r.getMessage() == "Error in ASGI Framework"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


# Sessions, contexts and templates (sessions.py, contexts.py, templating.py) ----------------------


def _session_cookie(response: Any) -> dict[str, str]:
    """The Cookie header a browser would send back after ``response``."""
    (header,) = response.headers.getlist("Set-Cookie")
    return {"Cookie": header.split(";")[0]}


async def test_sessions_login_flash_and_websocket() -> None:
    """Logging in sets the session and flashes a welcome shown once on the next page; the
    websocket knows the user from the same cookie and refuses a client without one."""
    async with sessions.app.test_client() as client:
        wrong = await client.post("/login", data={"user": "ada", "password": "nope"})
        assert wrong.status_code == 302
        page = await client.get("/", headers=_session_cookie(wrong))
        assert b'<p class="error">Wrong user name or password.</p>' in await page.get_data()
        assert b"Not logged in." in await page.get_data()

        login = await client.post("/login", data={"user": "ada", "password": "lovelace"})
        assert "Expires" not in login.headers["Set-Cookie"]  # not "remember me"
        cookie = _session_cookie(login)
        page = await client.get("/", headers=cookie)
        body = await page.get_data()
        assert b'<p class="message">Welcome, ada.</p>' in body
        assert b"Logged in as ada." in body
        cookie = _session_cookie(page)  # the flashed message left the session
        again = await (await client.get("/", headers=cookie)).get_data()
        assert again == b"Logged in as ada."

        async with client.websocket("/chat", headers=cookie) as ws:
            await ws.send("hello")
            assert await ws.receive() == "ada: hello"
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/chat"):
                pass  # pragma: no cover
        assert refused.value.response.status_code == 401

        logout = await client.post("/logout", headers=cookie)
        page = await client.get("/", headers=_session_cookie(logout))
        assert await page.get_data() == b'<p class="message">Logged out.</p>\nNot logged in.'


async def test_sessions_remember_me_makes_the_cookie_permanent() -> None:
    """With "remember" ticked, the cookie gets an expiry (PERMANENT_SESSION_LIFETIME)."""
    async with sessions.app.test_client() as client:
        login = await client.post(
            "/login", data={"user": "grace", "password": "hopper", "remember": "on"}
        )
    assert "Expires=" in login.headers["Set-Cookie"]
    assert "SameSite=Lax" in login.headers["Set-Cookie"]


async def test_contexts_while_serving_and_copied_request_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The database is open exactly while the app serves; the audit task runs after the
    response with the request that started it."""
    assert not contexts.db.open
    async with contexts.app.test_client() as client:
        assert contexts.db.open
        response = await client.post("/orders", json={"item": "teapot"})
        assert response.status_code == 202
        assert contexts.db.rows == []
        await trio.sleep(1)
        assert contexts.db.rows == ["teapot ordered from 127.0.0.1 at /orders"]
    assert not contexts.db.open


async def test_contexts_script_builds_external_links() -> None:
    """The script part builds https links on SERVER_NAME, and the app still answers requests
    for its own host."""
    assert await contexts.print_order_links(2) == [
        "https://shop.example.com/orders/1",
        "https://shop.example.com/orders/2",
    ]


async def test_templating_filters_tests_globals_and_context_processors() -> None:
    """The app's filter, test and global and its context processor apply everywhere; the
    shop's context processor only to the shop's pages; the blueprint's app filter everywhere."""
    async with templating.app.test_client() as client:
        home = await (await client.get("/", headers={"X-User": "ada"})).get_data()
        shop = await (await client.get("/shop/")).get_data()
    assert home == b"HOME for ada: 123.45 EUR, True"
    assert shop == b"THE SHOP for guest: 9.99 EUR (cheap), True"
