"""The pipeline's ending and its errors: teardown whatever ends a connection, closing by
raising, HTTP errors and exception groups after accept."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, http_scope, ws_scope
from _docs import load_example
from werkzeug.exceptions import NotFound

from trioweb import (
    Blueprint,
    Response,
    TrioWeb,
    WebsocketException,
    _pipeline,
    abort,
    request,
    websocket,
)
from trioweb._listener import DisconnectListener
from trioweb._request import Request
from trioweb._scaffold import Scaffold
from trioweb.testing import TestWebsocket, WebsocketDisconnectError, WebsocketResponseError

# Teardown whatever ends the connection ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["request", "websocket"])
async def test_teardown_runs_when_the_server_cancels_the_connection(
    autojump_clock: trio.abc.Clock, kind: str
) -> None:
    """A server that cancels a connection (shutdown past its grace period) still gets the
    teardown hooks run to their end, await included, shielded; a websocket also gets its
    after_websocket hooks and a 1001 close."""
    app = TrioWeb(__name__)
    app.config["DISCONNECT_LISTENER_DELAY"] = 100  # no listener: only the server ends it
    started = trio.Event()
    seen: list[Any] = []

    @app.route("/")
    async def view() -> str:
        started.set()
        await trio.sleep_forever()
        return "never"  # pragma: no cover

    @app.websocket("/")
    async def handler() -> None:
        await websocket.accept()
        started.set()
        await trio.sleep_forever()

    @app.after_websocket
    async def after(response: Any) -> Any:
        await trio.lowlevel.checkpoint()  # would raise Cancelled unless shielded
        seen.append("after")
        return response

    async def teardown(error: BaseException | None) -> None:
        await trio.lowlevel.checkpoint()  # would raise Cancelled unless shielded
        seen.append(("teardown", error))

    app.teardown_request(teardown)
    app.teardown_websocket(teardown)

    if kind == "request":
        server = ASGIPeer([{"type": "http.request", "body": b""}])
        scope = http_scope("/", headers=[(b"host", b"localhost")])
    else:
        server = ASGIPeer([{"type": "websocket.connect"}])
        scope = ws_scope("/", asgi={"version": "3.0", "spec_version": "2.3"})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, app, scope)
        await started.wait()
        server.cancel_scope.cancel()
    if kind == "request":
        assert seen == [("teardown", None)]
    else:
        assert seen == ["after", ("teardown", None)]
        assert server.sent[-1] == {
            "type": "websocket.close",
            "code": 1001,
            "reason": "the server is shutting down",
        }


@pytest.mark.parametrize("view_awaits", [True, False])
async def test_teardown_sees_the_views_error_when_the_server_cancels_its_error_page(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, view_awaits: bool
) -> None:
    """A view that failed, whose 500 page the server is still sending when it cancels the
    connection: the teardown hooks get the view's error, whether the view was watched for a
    disconnect (it awaits) or not."""
    app = TrioWeb(__name__)
    sending, seen = trio.Event(), []

    async def awaits() -> str:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("boom")

    async def cannot_wait() -> str:
        raise RuntimeError("boom")

    app.route("/")(awaits if view_awaits else cannot_wait)

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    class StuckServer(ASGIPeer):
        async def send(self, message: dict[str, Any]) -> None:
            sending.set()
            await trio.sleep_forever()  # a client that does not read

    server = StuckServer([{"type": "http.request", "body": b""}])
    with caplog.at_level(logging.CRITICAL, logger="trioweb"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve, app, http_scope("/", headers=[(b"host", b"x")]))
            await sending.wait()
            server.cancel_scope.cancel()
    assert [type(error) for error in seen] == [RuntimeError]


async def test_the_ending_is_bounded_by_teardown_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A teardown hook that hangs is cut short after TEARDOWN_TIMEOUT, with a warning."""
    app = TrioWeb(__name__)
    app.config["TEARDOWN_TIMEOUT"] = 2

    @app.route("/")
    async def view() -> str:
        return "ok"

    @app.teardown_request
    async def hangs(error: BaseException | None) -> None:
        await trio.sleep_forever()

    async with app.test_client(timeout=10) as client:
        start = trio.current_time()
        assert (await client.get("/")).status_code == 200
        assert trio.current_time() - start == pytest.approx(2)
    assert any("TEARDOWN_TIMEOUT" in record.getMessage() for record in caplog.records)


async def test_the_request_files_are_closed_even_when_teardown_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The uploaded files are closed after the teardown hooks, whatever they do."""
    app = TrioWeb(__name__)
    files: list[Any] = []

    @app.post("/")
    async def upload() -> str:
        files.extend((await request.files).values())
        return "ok"

    @app.teardown_request
    async def broken(error: BaseException | None) -> None:
        raise RuntimeError("teardown broke")

    async with app.test_client() as client:
        response = await client.post("/", data={"f": (__import__("io").BytesIO(b"x"), "f.txt")})
        assert response.status_code == 200
    assert [file.stream.closed for file in files] == [True]
    assert any("teardown broke" in str(record.exc_info) for record in caplog.records)


async def _talk(conn: TestWebsocket, *messages: str) -> None:
    """Open ``conn``, send ``messages``, then receive until the app closes it."""
    async with conn:
        for message in messages:
            await conn.send(message)
        await conn.receive()


# Closing by raising, HTTP errors after accept ---------------------------------------------------


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return all(record.exc_info is None for record in caplog.records)


async def test_websocket_exception_closes_with_its_code_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Raising WebsocketException after accept closes with its code and reason, no traceback,
    and the teardown hooks see no error."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise WebsocketException(4001, "token expired")

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert (closed.value.code, closed.value.reason) == (4001, "token expired")
    assert seen == [None]
    assert _no_tracebacks(caplog)


async def test_websocket_exception_before_accept_refuses_with_403() -> None:
    """Before accept, WebsocketException refuses the handshake with 403 (a handshake has no
    close code)."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        raise WebsocketException(4003)

    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/ws"):
                pass  # pragma: no cover
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(("code", "reason"), [(999, ""), (1005, ""), (1000, "x" * 124)])
async def test_websocket_exception_refuses_what_cannot_be_sent(code: int, reason: str) -> None:
    """A close code a server may not send, or a reason too long, is a ValueError at once."""
    with pytest.raises(ValueError, match="close"):
        WebsocketException(code, reason)


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, 1008), (400, 1008), (404, 1008), (500, 1011), (503, 1011)],
)
async def test_abort_after_accept_closes_with_a_documented_code(
    caplog: pytest.LogCaptureFixture, status: int, code: int
) -> None:
    """abort(4xx) after accept closes with 1008 and the description, abort(5xx) with 1011; no
    traceback either way."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        abort(status, "you may not do that")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert (closed.value.code, closed.value.reason) == (code, "you may not do that")
    assert _no_tracebacks(caplog)


async def test_a_long_description_is_cut_to_a_close_reason() -> None:
    """A description longer than a close reason may be is cut to 123 bytes of UTF-8."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        abort(403, "é" * 100)

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert closed.value.reason.endswith("...")
    assert len(closed.value.reason.encode()) <= 123


async def test_a_value_returned_after_accept_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that returns a value after accept gets a warning naming it; it closes 1000."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def chat() -> str:
        await websocket.accept()
        return "bye"

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert closed.value.code == 1000
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'chat'" in warning.getMessage()
    assert "'bye'" in warning.getMessage()


async def test_a_view_returning_a_coroutine_asks_about_await(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A view that returns a coroutine (a missing await) is a 500 whose logged error asks
    "did you forget await?"; the coroutine is closed, so Python does not warn about it."""
    app = TrioWeb(__name__)

    async def load() -> str:
        return "data"  # pragma: no cover

    @app.route("/")
    async def view() -> Any:
        return load()

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    assert any("did you forget await?" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_an_after_websocket_hook_that_fails_closes_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An after_websocket hook that raises is logged; the websocket closes 1011 and the
    teardown hooks see the error."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.receive()

    @app.after_websocket
    async def after(response: Any) -> Any:
        raise KeyError("after")

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(type(error).__name__)

    async with app.test_client() as client:
        conn = client.websocket("/ws")
        with pytest.raises(KeyError):
            await _talk(conn, "go")
    assert conn.close_code == 1011
    assert seen == ["KeyError"]


# Exception groups -------------------------------------------------------------------------------


async def test_a_group_after_accept_reaches_the_first_leaf_with_a_handler() -> None:
    """After accept, a group from the handler's nursery goes to the first leaf (depth first)
    that has a handler; a WebsocketException leaf closes with its code."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.errorhandler(NotFound)
    async def not_found(error: NotFound) -> None:
        seen.append("not found")  # pragma: no cover

    @app.errorhandler(WebsocketException)
    async def closing(error: WebsocketException) -> None:
        seen.append(f"closing {error.code}")

    async def fail(error: Exception) -> None:
        raise error

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async with trio.open_nursery() as nursery:  # both fail before either is cancelled
            nursery.start_soon(fail, ValueError("v"))
            nursery.start_soon(fail, WebsocketException(4002, "leaf"))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert (closed.value.code, closed.value.reason) == (4002, "leaf")
    assert seen == ["closing 4002"]


async def test_a_group_before_accept_reaches_a_leaf_handler() -> None:
    """Before accept, the leaf's handler's response refuses the handshake."""
    app = TrioWeb(__name__)

    @app.errorhandler(PermissionError)
    async def denied(error: PermissionError) -> tuple[str, int]:
        return "denied", 401

    @app.websocket("/ws")
    async def ws() -> None:
        raise ExceptionGroup("two", [KeyError("k"), PermissionError("p")])

    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/ws"):
                pass  # pragma: no cover
    assert refused.value.response.status_code == 401


async def test_a_group_after_accept_without_a_handler_closes_1011_and_reaches_the_server() -> None:
    """A group none of whose leaves has a handler closes 1011 and is raised to the server."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise ExceptionGroup("two", [KeyError("k"), ValueError("v")])

    async with app.test_client() as client:
        conn = client.websocket("/ws")
        with pytest.raises(ExceptionGroup):
            await _talk(conn)
    assert conn.close_code == 1011


async def test_the_raising_example_closes_as_documented() -> None:
    """docs/examples/ws_raising.py: an unknown room closes 1008 with abort's description, a
    missing login 4001 with WebsocketException's reason."""
    ws_raising = load_example("ws_raising")
    async with ws_raising.app.test_client() as client:
        async with client.websocket("/rooms", query_string={"token": "tok-ada"}) as conn:
            await conn.send_json({"join": "lobby"})
            assert await conn.receive_json() == {"joined": "lobby", "user": "ada"}
            await conn.send_json({"join": "attic"})
            with pytest.raises(WebsocketDisconnectError) as closed:
                await conn.receive()
        assert (closed.value.code, closed.value.reason) == (1008, "no room 'attic'")
        async with client.websocket("/rooms") as conn:
            await conn.send_json({"join": "lobby"})
            with pytest.raises(WebsocketDisconnectError) as closed:
                await conn.receive()
        assert (closed.value.code, closed.value.reason) == (4001, "log in again")


# Requests that cannot wait get no handler scope ---------------------------------------------------


async def _plain() -> str:
    return "ok"


async def _awaits() -> str:
    await trio.lowlevel.checkpoint()
    return "ok"  # pragma: no cover


async def _async_with(lock: trio.Lock) -> None:
    async with lock:
        pass  # pragma: no cover


async def _async_for(chunks: Any) -> None:
    async for _ in chunks:
        pass  # pragma: no cover


async def _async_comprehension(chunks: Any) -> list[Any]:
    return [chunk async for chunk in chunks]  # pragma: no cover


async def _defines_an_awaiting_function() -> str:
    async def inner() -> None:
        await trio.lowlevel.checkpoint()  # pragma: no cover

    return "ok"


async def _async_generator() -> AsyncIterator[str]:
    yield "ok"  # pragma: no cover


def _sync() -> str:
    return "ok"  # pragma: no cover


class _View:
    async def method(self) -> str:
        return "ok"  # pragma: no cover

    async def __call__(self) -> str:
        return "ok"  # pragma: no cover


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (_plain, True),
        (_defines_an_awaiting_function, True),  # the inner function is not the view's code
        (_awaits, False),
        (_async_with, False),
        (_async_for, False),
        (_async_comprehension, False),
        (_async_generator, False),
        (_sync, False),
        (functools.partial(_plain), False),  # may be anything: not looked into
        (_View().method, False),
        (_View(), False),
    ],
)
def test_only_an_async_function_without_a_suspension_point_never_suspends(
    func: Any, expected: bool
) -> None:
    assert _pipeline.never_suspends(func) is expected
    assert _pipeline.never_suspends(func) is expected  # from the cache


def _routed(app: TrioWeb, method: str, path: str) -> Request:
    request = Request(http_scope(path, method=method), ASGIPeer().receive)
    app.match_request(request)
    return request


def _register(app: Scaffold, what: str, func: Any) -> None:
    if what == "error handler":
        app.register_error_handler(404, func)
    else:
        getattr(app, what)(func)


async def _plain_hook(*args: Any) -> Any:
    return args[0] if args else None  # pragma: no cover


async def _awaiting_hook(*args: Any) -> Any:
    await trio.lowlevel.checkpoint()  # pragma: no cover
    return args[0] if args else None  # pragma: no cover


@pytest.mark.parametrize("what", ["before_request", "after_request", "error handler"])
def test_a_request_cannot_suspend_only_if_nothing_that_runs_for_it_can(what: str) -> None:
    """The view, the before/after_request hooks and every error handler of the app and the
    request's blueprints count; teardown hooks do not (they run after the answer)."""
    app = TrioWeb(__name__)
    app.route("/plain")(_plain)
    app.route("/awaits")(_awaits)
    blueprint = Blueprint("bp", __name__)
    blueprint.route("/plain")(_plain)
    app.register_blueprint(blueprint, url_prefix="/bp")
    app.teardown_request(_awaiting_hook)
    assert _pipeline.cannot_suspend(app, _routed(app, "GET", "/plain"))
    assert _pipeline.cannot_suspend(app, _routed(app, "GET", "/bp/plain"))
    assert _pipeline.cannot_suspend(app, _routed(app, "GET", "/missing"))  # 404, no handler
    assert not _pipeline.cannot_suspend(app, _routed(app, "GET", "/awaits"))
    assert not _pipeline.cannot_suspend(app, _routed(app, "OPTIONS", "/plain"))  # automatic

    _register(app, what, _plain_hook)
    assert _pipeline.cannot_suspend(app, _routed(app, "GET", "/plain"))
    _register(blueprint, what, _awaiting_hook)  # only the blueprint's requests
    assert _pipeline.cannot_suspend(app, _routed(app, "GET", "/plain"))
    assert not _pipeline.cannot_suspend(app, _routed(app, "GET", "/bp/plain"))
    _register(app, what, _awaiting_hook)
    assert not _pipeline.cannot_suspend(app, _routed(app, "GET", "/plain"))


async def test_only_a_request_that_could_wait_is_watched_for_a_disconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view that cannot suspend costs no handler scope and no disconnect watch, unless its
    body is streamed (the stream's code runs while it is sent); every other request is
    watched."""
    app = TrioWeb(__name__)
    watched: list[str] = []
    watch_http = DisconnectListener.watch_http

    def spy(self: DisconnectListener, watch: Any) -> None:
        watched.append(request.path)
        watch_http(self, watch)

    monkeypatch.setattr(DisconnectListener, "watch_http", spy)

    @app.route("/plain")
    async def plain() -> str:
        return "ok"

    @app.route("/awaits")
    async def awaits() -> str:
        await trio.lowlevel.checkpoint()
        return "ok"

    @app.route("/stream")
    async def stream() -> Response:
        async def chunks() -> AsyncIterator[str]:
            yield "o"
            yield "k"

        return Response(chunks())

    async with app.test_client() as client:
        for path in ("/plain", "/awaits", "/stream", "/missing"):
            response = await client.get(path)
            assert (await response.get_data(as_text=True) == "ok") is (path != "/missing")
    assert watched == ["/awaits", "/stream"]
