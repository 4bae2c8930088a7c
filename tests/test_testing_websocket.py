"""The test client's websocket side against apps that misbehave, and the websocket edge's rarer
endings. The test client drives any ASGI app, so it must say clearly what went wrong."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, ws_scope
from _checkpoints import assert_raises_at_a_checkpoint
from _docs import load_example

from trioweb import Response, TrioWeb, WebsocketClosed, websocket
from trioweb.testing import (
    TestClient,
    TestWebsocket,
    WebsocketDisconnectError,
    WebsocketResponseError,
)
from trioweb.testing._util import lone_exception_unwrapped
from trioweb.testing._websocket import CLIENT_QUEUE_SIZE

Message = dict[str, Any]


def raw_app(*to_send: Message, then: str = "return") -> Any:
    """An ASGI app that answers the handshake with ``to_send``, then returns, raises or hangs."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        for message in to_send:
            await send(message)
        if then == "raise":
            raise ValueError("the app broke")
        if then == "hang":  # until the client leaves
            while (await receive())["type"] != "websocket.disconnect":
                pass
        if then == "ignore":  # even after the client leaves
            await trio.sleep_forever()

    return app


ACCEPT = {"type": "websocket.accept"}


def raw_lifespan(websocket_app: Any) -> Any:
    """``websocket_app`` with a lifespan that just answers, for the test client."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await raw_app()(scope, receive, send)
            return
        await websocket_app(scope, receive, send)

    return app


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        (raw_app(), RuntimeError, "ended without answering"),
        (raw_app(then="raise"), ValueError, "the app broke"),
        (raw_app({"type": "websocket.send", "text": "x"}), RuntimeError, "answered the handshake"),
        (
            raw_app({"type": "websocket.http.response.start", "status": 401, "headers": []}),
            RuntimeError,
            "did not finish its handshake rejection",
        ),
    ],
)
async def test_handshake_misbehaviour_is_reported(app: Any, error: type, match: str) -> None:
    """An app that ends, raises or answers nonsense during the handshake gets a clear error."""
    async with TestClient(app) as client:
        with pytest.raises(error, match=match):
            async with client.websocket("/ws"):
                pass  # pragma: no cover


async def test_messages_after_the_app_has_gone() -> None:
    """An app that accepts then returns: receive/send report a 1006 disconnect."""
    async with TestClient(raw_app(ACCEPT)) as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError, match="finished without closing"):
            await conn.receive()
        with pytest.raises(WebsocketDisconnectError, match="has finished"):
            await conn.send("x")


async def test_an_unexpected_message_on_an_open_websocket() -> None:
    """An app that sends an HTTP message on an open websocket makes receive() raise."""
    app = raw_app(ACCEPT, {"type": "http.response.start", "status": 200}, then="hang")
    async with TestClient(app) as client, client.websocket("/ws") as conn:
        with pytest.raises(RuntimeError, match=r"http\.response\.start"):
            await conn.receive()


async def test_an_app_that_ignores_the_disconnect_times_out(autojump_clock: Any) -> None:
    """Leaving waits for the handler, within the client's timeout."""
    async with TestClient(raw_app(ACCEPT, then="ignore"), timeout=2) as client:
        with pytest.raises(trio.TooSlowError):
            async with client.websocket("/ws"):
                pass


async def test_sending_after_the_app_closed_and_bad_types() -> None:
    """After the app's close frame, send and receive raise it again; a bad type is a TypeError."""
    app = raw_app(ACCEPT, {"type": "websocket.close", "code": 4002, "reason": "x"}, then="hang")
    async with TestClient(app) as client, client.websocket("/ws") as conn:
        with pytest.raises(TypeError, match="not int"):
            await conn.send(3)  # type: ignore[arg-type]
        with pytest.raises(WebsocketDisconnectError, match="4002"):
            await conn.receive()
        for operation in (conn.receive(), conn.send("late")):
            with pytest.raises(WebsocketDisconnectError, match="4002"):
                await operation


async def test_a_send_after_the_app_closed_and_finished_reports_its_close() -> None:
    """A send after the handler closed and ended, its close frame not read yet, raises the
    app's code and reason, not 1006 (found by tests/test_lifecycle_fuzz.py); the messages
    before the close are still there to receive."""
    app = TrioWeb(__name__)
    ended = trio.Event()

    @app.websocket("/ws")
    async def bye() -> None:
        await websocket.send("last words")
        await websocket.close(4001, "bye")

    @app.teardown_websocket
    async def done(error: BaseException | None) -> None:
        ended.set()

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await ended.wait()
        await trio.testing.wait_all_tasks_blocked()  # the app call returns after teardown
        with pytest.raises(WebsocketDisconnectError, match="4001: bye") as raised:
            await conn.send("late")
        assert (raised.value.code, raised.value.reason) == (4001, "bye")
        assert await conn.receive() == "last words"
        with pytest.raises(WebsocketDisconnectError, match="4001: bye"):
            await conn.receive()


async def test_query_strings_and_headers_reach_the_scope() -> None:
    """query_string as str, bytes or dict, and the path's own query, all reach the app."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.send(f"{websocket.query_string.decode()} {websocket.host}")

    async with app.test_client() as client:
        for kwargs, expected in [
            ({"query_string": "a=1"}, "a=1 localhost"),
            ({"query_string": b"b=2"}, "b=2 localhost"),
            ({"query_string": {"c": ["3", "4"]}}, "c=3&c=4 localhost"),
            ({"headers": {"Host": "ignored.example"}}, " localhost"),
        ]:
            async with client.websocket("/ws", **kwargs) as conn:
                assert await conn.receive() == expected
        async with client.websocket("/ws?d=5") as conn:
            assert await conn.receive() == "d=5 localhost"


def test_a_group_of_several_exceptions_stays_a_group() -> None:
    """Only a group of one is unwrapped; several errors stay together."""
    group = ExceptionGroup("two", [ValueError(), KeyError()])
    with pytest.raises(ExceptionGroup) as raised, lone_exception_unwrapped():
        raise group
    assert raised.value is group


# Checkpoints ----------------------------------------------------------------------------------


def _echo_until(word: str) -> TrioWeb:
    """An app whose /ws echoes text, closes with 4000 on "close", and raises on "boom"."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message == "boom":
                raise ValueError("the handler broke")
            if message == word:
                await websocket.close(4000, "asked to")
                return
            await websocket.send(message)

    return app


async def _closed_by_the_app(conn: TestWebsocket) -> None:
    await conn.send("close")
    with pytest.raises(WebsocketDisconnectError):
        await conn.receive()


async def _handler_raised(conn: TestWebsocket) -> None:
    await conn.send("boom")
    await trio.testing.wait_all_tasks_blocked()


async def _nothing(conn: TestWebsocket) -> None:
    await trio.lowlevel.checkpoint()


async def _sent_not_json(conn: TestWebsocket) -> None:
    await conn.send("not json")


@pytest.mark.parametrize(
    ("prepare", "call", "error", "match"),
    [
        (_nothing, lambda conn: conn.send(3), TypeError, "not int"),
        (_closed_by_the_app, lambda conn: conn.send("x"), WebsocketDisconnectError, "4000"),
        (_handler_raised, lambda conn: conn.send("x"), ValueError, "the handler broke"),
        (_nothing, lambda conn: conn.send_json({1, 2}), TypeError, "set"),
        (_closed_by_the_app, lambda conn: conn.receive(), WebsocketDisconnectError, "4000"),
        (_handler_raised, lambda conn: conn.receive(), ValueError, "the handler broke"),
        (_sent_not_json, lambda conn: conn.receive_json(), ValueError, "Expecting value"),
        (_handler_raised, lambda conn: conn.close(), ValueError, "the handler broke"),
    ],
    ids=[
        "send-bad-type",
        "send-after-close",
        "send-after-handler-error",
        "send_json-not-encodable",
        "receive-after-close",
        "receive-handler-error",
        "receive_json-not-json",
        "close-handler-error",
    ],
)
async def test_methods_are_checkpoints_even_when_they_raise(
    prepare: Callable[[TestWebsocket], Awaitable[None]],
    call: Callable[[TestWebsocket], Awaitable[Any]],
    error: type[Exception],
    match: str,
) -> None:
    """Each method of TestWebsocket that raises is a checkpoint first: a test that loops on it
    catching the error can still be cancelled, and lets other tasks run."""
    async with _echo_until("close").test_client() as client, client.websocket("/ws") as conn:
        await prepare(conn)
        await assert_raises_at_a_checkpoint(lambda: call(conn), error, match)


async def test_entering_and_leaving_are_checkpoints_even_when_they_raise() -> None:
    """A refused handshake and a handler's error at the block's end raise at a checkpoint."""
    app = _echo_until("close")

    @app.websocket("/refused")
    async def refused() -> Any:
        return "no", 403

    async with app.test_client() as client:
        await assert_raises_at_a_checkpoint(
            lambda: client.websocket("/refused").__aenter__(), WebsocketResponseError, "403"
        )
        task = trio.lowlevel.current_task()
        with pytest.raises(ValueError, match="broke"):  # noqa: PT012 (the block's end raises)
            async with client.websocket("/ws") as conn:
                await _handler_raised(conn)
                schedule_points = task._schedule_points
        assert task._schedule_points > schedule_points


# Errors on both sides ---------------------------------------------------------------------------


async def test_the_handlers_error_is_noted_on_the_tests_own_failure() -> None:
    """When the test body raises while the handler has raised too, the body's exception leaves
    the block with a note that shows the handler's exception and its traceback."""
    async with _echo_until("close").test_client() as client:
        with pytest.raises(AssertionError, match="the test's own failure") as raised:  # noqa: PT012
            async with client.websocket("/ws") as conn:
                await _handler_raised(conn)
                raise AssertionError("the test's own failure")
    (note,) = raised.value.__notes__
    assert note.startswith("The websocket handler of /ws also raised:\nTraceback")
    assert "in ws\n" in note
    assert note.endswith("ValueError: the handler broke")


async def test_a_body_that_raises_alone_has_no_note() -> None:
    """A handler that ended well adds nothing to the test's exception."""
    async with _echo_until("close").test_client() as client:
        with pytest.raises(KeyError) as raised:
            async with client.websocket("/ws"):
                raise KeyError("only this")
    assert not hasattr(raised.value, "__notes__")


# The app's outbox -------------------------------------------------------------------------------


def _firehose(sent: list[int], cleaned_up: trio.Event) -> TrioWeb:
    """An app whose /ws sends numbers as fast as it can, forever, recording each sent."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            for number in itertools.count():
                await websocket.send(str(number))
                sent.append(number)
        finally:
            cleaned_up.set()

    return app


async def test_a_handler_that_sends_faster_than_the_test_receives_is_held_back() -> None:
    """The handler gets at most CLIENT_QUEUE_SIZE (10) messages ahead of the test's receive();
    its send() then waits, as on a socket whose client reads slowly. Leaving lets the waiting
    send complete, and the handler's cleanup runs (once trioweb's disconnect listener notices
    the handler is not receiving and cancels it)."""
    sent: list[int] = []
    cleaned_up = trio.Event()
    async with _firehose(sent, cleaned_up).test_client() as client:
        async with client.websocket("/ws") as conn:
            assert [await conn.receive() for _ in range(3)] == ["0", "1", "2"]
            await trio.testing.wait_all_tasks_blocked()
            assert len(sent) == 3 + CLIENT_QUEUE_SIZE
            assert CLIENT_QUEUE_SIZE == 10
        assert cleaned_up.is_set()


@pytest.mark.parametrize("leave", ["block", "close"])
async def test_leaving_completes_the_apps_waiting_sends(leave: str) -> None:
    """Once the test has left (the block ends, or close()), the sends of an app stuck on a full
    outbox complete and go nowhere, as Hypercorn's do once the client is gone; the app then
    sees the disconnect."""
    seen: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for number in range(CLIENT_QUEUE_SIZE + 5):
            await send({"type": "websocket.send", "text": str(number)})
        seen.append("all sent")
        seen.append(await receive())

    async with TestClient(raw_lifespan(app)) as client:
        async with client.websocket("/ws") as conn:
            await trio.testing.wait_all_tasks_blocked()
            assert seen == []
            if leave == "close":
                await conn.close(4001, "enough")
        code = 4001 if leave == "close" else 1000
    assert seen[0] == "all sent"
    assert seen[1]["type"] == "websocket.disconnect"
    assert seen[1]["code"] == code


async def test_the_apps_close_behind_a_full_outbox() -> None:
    """An app that closes after filling the outbox: the test receives every message, then the
    close; if the test leaves instead, the close completes and the handler finishes."""
    done: list[str] = []
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            for number in range(CLIENT_QUEUE_SIZE + 2):
                await websocket.send(str(number))
            await websocket.close(4002, "that is all")
        finally:
            done.append("handler finished")

    async with app.test_client() as client:
        async with client.websocket("/ws") as conn:
            received = [await conn.receive() for _ in range(CLIENT_QUEUE_SIZE + 2)]
            with pytest.raises(WebsocketDisconnectError, match="4002: that is all"):
                await conn.receive()
        assert received == [str(n) for n in range(CLIENT_QUEUE_SIZE + 2)]
        async with client.websocket("/ws"):
            await trio.testing.wait_all_tasks_blocked()
            assert len(done) == 1  # the second handler is still waiting to send
    assert done == ["handler finished"] * 2


# Several receivers ------------------------------------------------------------------------------


async def test_several_tasks_may_receive_at_once() -> None:
    """As with trio-websocket, two tasks may wait in receive() at once (no BusyResourceError):
    each message goes to one of them, and both see the app's close."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.receive()
        await websocket.send("a")
        await websocket.send("b")
        await websocket.receive()
        await websocket.close(4003)

    got: list[Any] = []

    async def receive_twice(conn: TestWebsocket) -> None:
        got.append(await conn.receive())
        try:
            await conn.receive()
        except WebsocketDisconnectError as closed:
            got.append(closed.code)

    async with (
        app.test_client() as client,
        client.websocket("/ws") as conn,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(receive_twice, conn)
        nursery.start_soon(receive_twice, conn)
        await trio.testing.wait_all_tasks_blocked()
        await conn.send("go")
        await trio.testing.wait_all_tasks_blocked()
        await conn.send("close")
    assert sorted(map(str, got)) == ["4003", "4003", "a", "b"]


# The websocket edge's rarer endings -------------------------------------------------------------


async def test_a_broken_transport_on_accept_and_on_the_final_close() -> None:
    """Failed accept or close sends count as a disconnect; nothing leaks to the server."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        try:
            await websocket.accept()
        finally:
            seen.append(websocket.close_code)

    for failing in ({"websocket.accept"}, {"websocket.close"}):
        fail_sends = dict.fromkeys(failing, trio.BrokenResourceError("gone"))
        peer = ASGIPeer([{"type": "websocket.connect"}], fail_sends=fail_sends)
        await app(ws_scope(), peer.receive, peer.send)
    assert seen == [1006, None]


async def test_an_after_hook_returning_none_rejects_with_403() -> None:
    """If an after_websocket hook drops the rejection response, the handshake gets a 403."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> Any:
        return "teapot", 418

    @app.after_websocket
    async def drop(response: Response | None) -> None:
        return None

    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as rejected:
            async with client.websocket("/ws"):
                pass  # pragma: no cover
    assert rejected.value.response.status_code == 403


async def test_reject_after_accept_is_refused() -> None:
    """Websocket.reject() only works before accept."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()

        async def no_body() -> Any:
            yield b""  # pragma: no cover

        try:
            await websocket.reject(400, [], no_body())
        except WebsocketClosed as closed:
            await websocket.send(f"refused {closed.code}")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        assert await conn.receive() == "refused 1006"


async def test_an_unexpected_asgi_message_and_a_first_message_that_is_not_connect() -> None:
    """A server that sends nonsense gets a RuntimeError naming it."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.receive()

    peer = ASGIPeer([{"type": "websocket.connect"}, {"type": "http.request"}])
    with pytest.raises(RuntimeError, match=r"unexpected ASGI message 'http\.request'"):
        await app(ws_scope(), peer.receive, peer.send)
    peer = ASGIPeer([{"type": "websocket.receive", "text": "early"}])
    with pytest.raises(RuntimeError, match=r"expected websocket\.connect"):
        await app(ws_scope(), peer.receive, peer.send)


async def test_a_disconnect_seen_by_receive_in_a_shielded_scope() -> None:
    """receive() that meets the disconnect while shielded raises WebsocketClosed with its code."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        with trio.CancelScope(shield=True):
            try:
                await websocket.receive()
            except WebsocketClosed as closed:
                seen.append((closed.code, closed.reason))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.close(4009, "bye")
    assert seen == [(4009, "bye")]


async def test_queued_binary_messages_and_a_disconnect_after_the_handler_closed(
    autojump_clock: Any,
) -> None:
    """Queued bytes stay bytes; a client leaving after the handler closed still cancels it."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)  # the listener queues what arrives meanwhile
        seen.append(await websocket.receive())
        await websocket.close(4000)
        try:
            await trio.sleep_forever()
        finally:
            seen.append(("cancelled", websocket.close_code))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send(b"\x01")
        with pytest.raises(WebsocketDisconnectError):
            await conn.receive()
    assert seen == [b"\x01", ("cancelled", 4000)]


async def test_an_error_dragged_out_of_the_handler_by_a_disconnect() -> None:
    """A group of Cancelled and an error from the handler's nursery: teardown sees it, no leak."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    async def fail_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("cleanup failed")

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail_when_cancelled)
            await websocket.receive()

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(type(error).__name__)

    peer = ASGIPeer([{"type": "websocket.connect"}, {"type": "websocket.disconnect"}])
    with pytest.raises(ExceptionGroup):
        await app(ws_scope(), peer.receive, peer.send)
    assert seen == ["ExceptionGroup"]


async def test_a_pipeline_failure_before_accept_answers_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the pipeline itself fails before accept, the edge still answers 500 and tears down."""
    seen: list[Any] = []

    async def broken(app: Any, ws: Any) -> Any:
        raise ExceptionGroup("pipeline", [ValueError("v"), KeyError("k")])

    monkeypatch.setattr("trioweb._pipeline.dispatch_websocket", broken)
    app = TrioWeb(__name__)

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(type(error).__name__)

    peer = ASGIPeer([{"type": "websocket.connect"}])
    with pytest.raises(ExceptionGroup):
        await app(ws_scope(), peer.receive, peer.send)
    assert seen == ["ExceptionGroup"]
    assert [peer.sent[0]["type"], peer.sent[0]["status"]] == ["websocket.http.response.start", 500]


async def test_templates_see_the_websocket() -> None:
    """render_template_string in a websocket handler has `websocket` in its context."""
    from trioweb import render_template_string

    app = TrioWeb(__name__)

    @app.websocket("/room/<name>")
    async def room(name: str) -> None:
        await websocket.send(await render_template_string("{{ websocket.path }}"))

    async with app.test_client() as client, client.websocket("/room/blue") as conn:
        assert await conn.receive() == "/room/blue"


def test_python_dash_m_trioweb_runs_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m trioweb` is the trioweb command (here: its usage error without --app)."""
    monkeypatch.delenv("TRIOWEB_APP", raising=False)
    import importlib
    import sys

    argv = sys.argv
    sys.argv = ["trioweb", "run"]
    sys.modules.pop("trioweb.__main__", None)
    try:
        with pytest.raises(SystemExit) as exited:
            importlib.import_module("trioweb.__main__")
    finally:
        sys.argv = argv
    assert exited.value.code == 2
    assert "--app" in capsys.readouterr().err


# As the docs show (docs/examples/ws_messages.py) --------------------------------------------------

ws_messages_example = load_example("ws_messages")


async def test_ws_test_client_timeout_bounds_every_wait(autojump_clock: trio.abc.Clock) -> None:
    """A receive that the app never answers fails after the client's timeout."""
    async with (
        ws_messages_example.app.test_client(timeout=2) as client,
        client.websocket("/echo") as ws,
    ):
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            await ws.receive()
        assert trio.current_time() - start == 2
