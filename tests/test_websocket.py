"""The websocket object and its lifecycle: messages, the disconnect listener, closing, errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from typing import Any

import pytest
import trio
import trio.testing
from _asgi_peer import ASGIPeer, Message, ws_scope
from _docs import load_example
from _ws import closed_by_app, leaves, refusal
from werkzeug.exceptions import BadRequest

import trioweb
from trioweb import TrioWeb, WebsocketClosed, WebsocketState, websocket
from trioweb._listener import MAX_PENDING
from trioweb.testing import WebsocketDisconnectError, WebsocketResponseError


async def test_the_listener_queues_messages_for_a_busy_handler_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Messages that arrive while the handler is busy elsewhere are received later, in order."""
    app = TrioWeb(__name__)
    release = trio.Event()

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await release.wait()  # busy for longer than the listener's delay
        await websocket.send_json([await websocket.receive() for _ in range(4)])

    async with app.test_client() as client, client.websocket("/ws") as conn:
        for message in ["one", "two", "three"]:
            await conn.send(message)
        await trio.sleep(1)  # the handler's wait, on the virtual clock: a listener takes over
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        await conn.send("four")  # taken over from the listen task by receive()
        assert await conn.receive_json() == ["one", "two", "three", "four"]


async def test_receive_takes_over_from_a_listen_task(autojump_clock: trio.abc.Clock) -> None:
    """A receive() that starts while a listen task waits gets the next message."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)
        for _ in range(3):
            await websocket.send(await websocket.receive())

    async with app.test_client() as client, client.websocket("/ws") as conn:
        for message in ["a", "b", "c"]:
            await conn.send(message)
            assert await conn.receive() == message


async def test_a_handler_that_does_not_receive_applies_backpressure(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Inbound buffering is bounded (listener queue plus server queue); then the client waits."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep_forever()

    async with app.test_client(timeout=1) as client, client.websocket("/ws") as conn:
        await trio.sleep(1)
        for index in range(MAX_PENDING + 10):
            await conn.send(str(index))
        with pytest.raises(trio.TooSlowError, match="did not take a message"):
            await conn.send("one too many")
    # Leaving with the queue full tears the connection down instead of hanging.


async def test_two_tasks_cannot_receive_at_once() -> None:
    """A second concurrent receive() raises trio.BusyResourceError."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(websocket.receive)
            await trio.testing.wait_all_tasks_blocked()
            try:
                await websocket.receive()
            except trio.BusyResourceError as error:
                await websocket.send(str(error))
            nursery.cancel_scope.cancel()

    async with app.test_client() as client, client.websocket("/ws") as conn:
        assert await conn.receive() == "another task is already receiving on this websocket"


@pytest.mark.parametrize("error", [trio.BrokenResourceError(), trio.ClosedResourceError()])
async def test_a_transport_error_on_send_is_a_disconnect(error: BaseException) -> None:
    """A server send that fails cancels the handler like a disconnect and never leaks."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await websocket.send("hello")
        finally:
            seen.append(websocket.close_code)

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(("teardown", error))

    failing = {"websocket.send": error, "websocket.close": error}
    peer = ASGIPeer([{"type": "websocket.connect"}], fail_sends=failing)
    await app(ws_scope(), peer.receive, peer.send)
    assert seen == [1006, ("teardown", None)]


async def test_busy_resource_error_from_the_server_is_a_programming_error() -> None:
    """trio.BusyResourceError from the server's send is a bug (two tasks in one stream), not a
    disconnect: it ends the handler as an error and reaches the server."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send("hello")

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        seen.append(type(error).__name__)

    busy = trio.BusyResourceError("two senders")
    peer = ASGIPeer(
        [{"type": "websocket.connect"}],
        fail_sends={"websocket.send": busy, "websocket.close": busy},
    )
    with pytest.raises(trio.BusyResourceError, match="two senders"):
        await app(ws_scope(), peer.receive, peer.send)
    assert seen == ["BusyResourceError"]


async def test_after_a_disconnect_shielded_cleanup_gets_websocket_closed() -> None:
    """Once cancelled by a disconnect, receive/send in a shielded cleanup raise WebsocketClosed."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        try:
            await websocket.receive()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                for operation in (websocket.receive(), websocket.send("x")):
                    try:
                        await operation
                    except WebsocketClosed as closed:
                        seen.append((closed.code, closed.reason))
            raise

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.close(4001, "leaving")
    assert seen == [(4001, "leaving"), (4001, "leaving")]


async def test_a_disconnect_before_accept_cancels_a_slow_hook(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A client that gives up during a slow before_websocket hook cancels it."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.before_websocket
    async def slow_auth() -> None:
        try:
            await trio.sleep_forever()
        finally:
            seen.append("hook cancelled")

    @app.websocket("/ws")
    async def ws() -> None:
        seen.append("handler ran")  # pragma: no cover

    peer = ASGIPeer([{"type": "websocket.connect"}])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, ws_scope(), peer.receive, peer.send)
        await trio.sleep(1)
        await peer.to_app.send({"type": "websocket.disconnect", "code": 1006})
    assert seen == ["hook cancelled"]
    assert peer.sent == []


async def test_closing_rules() -> None:
    """accept is idempotent; close validates its code; a closed socket refuses everything."""
    app = TrioWeb(__name__)
    seen: list[Any] = []

    @app.websocket("/ws")
    async def ws() -> None:
        assert websocket.state is WebsocketState.CONNECTING
        await websocket.accept()
        await websocket.accept()
        for code, reason in [(1005, ""), (999, ""), (2000, ""), (1000, "x" * 124)]:
            with pytest.raises(ValueError, match=r"close code|123 bytes"):
                await websocket.close(code, reason)
        await websocket.close(3000, "done")
        await websocket.close(1000)  # already closed: nothing happens
        assert websocket.state is WebsocketState.CLOSED
        for operation in (websocket.accept(), websocket.receive(), websocket.send("x")):
            with pytest.raises(WebsocketClosed) as closed:
                await operation
            seen.append((closed.value.code, closed.value.reason))

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
        assert (closed.value.code, closed.value.reason) == (3000, "done")
        assert (conn.close_code, conn.close_reason) == (3000, "done")
    assert seen == [(3000, "done")] * 3


async def test_a_rejected_websocket_refuses_messages() -> None:
    """After close() before accept (a 403), the handler cannot send or accept."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.close(1000)
        assert websocket.state is WebsocketState.REJECTED
        for operation in (websocket.accept(), websocket.send("x")):
            with pytest.raises(WebsocketClosed, match="rejected"):
                await operation
            seen.append("refused")

    async with app.test_client() as client:
        with pytest.raises(WebsocketResponseError) as rejected:
            async with client.websocket("/ws"):
                pass  # pragma: no cover
    assert rejected.value.response.status_code == 403
    assert seen == ["refused", "refused"]


async def test_without_the_denial_extension_a_rejection_is_a_403(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server without websocket.http.response answers 403, and the lost status is logged."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> Any:
        return "no entry", 401

    peer = ASGIPeer([{"type": "websocket.connect"}])
    with caplog.at_level(logging.WARNING, "trioweb"):
        await app(ws_scope(extensions={}), peer.receive, peer.send)
    assert peer.sent == [{"type": "websocket.close", "code": 1000}]
    assert "instead of 401 UNAUTHORIZED" in caplog.text


# As the websocket how-to shows (docs/examples/ws_*.py) -----------------------------------------

ws_auth_example = load_example("ws_auth")
ws_cleanup_example = load_example("ws_cleanup")
ws_closing_example = load_example("ws_closing")
ws_handshake_example = load_example("ws_handshake")
ws_heartbeat_example = load_example("ws_heartbeat")
ws_messages_example = load_example("ws_messages")
ws_ticker_example = load_example("ws_ticker")


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["chat.v1", "chat.v2"], "chat.v2"), (["chat.v1"], "chat.v1"), (["x", "chat.v2"], "chat.v2")],
)
async def test_ws_handshake_chat_picks_the_best_subprotocol(
    offered: list[str], chosen: str
) -> None:
    """/chat accepts with the best subprotocol both sides speak and an extra header."""
    async with (
        ws_handshake_example.app.test_client() as client,
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
            b"This page's origin may not open this websocket.",
        ),
        (
            "/chat",
            {"subprotocols": ["chat.v1"], "query_string": {"v": "1"}},
            426,
            b"Update the app: version 2 or newer may connect",
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
    response = await refusal(ws_handshake_example.app, path, **kwargs)
    assert response.status_code == status
    if body is not None:
        assert await response.get_data() == body
    if path.startswith("/rooms"):
        assert "There is no room called &#39;kitchen&#39;." in await response.get_data(True)


async def test_ws_handshake_accepts_the_right_origin_password_and_room() -> None:
    """An allowed Origin, the admin password and a known room are accepted."""
    credentials = base64.b64encode(b"ada:correct horse battery staple").decode()
    async with ws_handshake_example.app.test_client() as client:
        origin = {"Origin": "https://chat.example.com"}
        async with client.websocket("/chat", headers=origin, subprotocols=["chat.v1"]) as ws:
            assert await ws.receive() == "Welcome! We speak chat.v1."
        admin = {"Authorization": f"Basic {credentials}"}
        async with client.websocket("/admin", headers=admin) as ws:
            assert await closed_by_app(ws) == (1000, "", ["Hello, ada."])
        async with client.websocket("/rooms/trio") as ws:
            assert await closed_by_app(ws) == (1000, "", ["You are in trio."])


async def test_ws_close_before_accept_is_403() -> None:
    """close() before accept refuses the handshake; the server answers 403."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def refuse() -> None:
        await websocket.close(4003)

    response = await refusal(app, "/")
    assert response.status_code == 403
    assert await response.get_data() == b""


async def test_ws_returning_without_accepting_is_500(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that neither accepts nor refuses gets a logged 500."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def forgetful() -> None:
        pass

    assert (await refusal(app, "/")).status_code == 500
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

    response = await refusal(app, "/", subprotocols=["chat.v1"])
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
    async with ws_auth_example.app.test_client() as client:
        response = await client.get(path, **kwargs)
        assert response.status_code == status
        if status == 200:
            assert (await response.get_json())["user"] in {"ada", "grace"}


async def test_ws_auth_refuses_an_unknown_token() -> None:
    """login_required refuses a websocket with an unknown token with 401."""
    headers = {"Authorization": "Bearer stolen"}
    assert (await refusal(ws_auth_example.app, "/inbox", headers=headers)).status_code == 401


FRAMES: list[str | bytes] = ["hello", "\u00e9t\u00e9 \u2603", b"\x00\xffbinary", "", b""]


async def test_ws_messages_echo_keeps_type_and_emptiness() -> None:
    """Echo returns every message with its frame type, empty frames included, in order."""
    async with ws_messages_example.app.test_client() as client, client.websocket("/echo") as ws:
        for frame in FRAMES:
            await ws.send(frame)
        for frame in FRAMES:
            reply = await ws.receive()
            assert reply == frame
            assert type(reply) is type(frame)


async def test_ws_messages_sum_survives_bad_input() -> None:
    """receive_json raises BadRequest for invalid JSON and the websocket stays usable."""
    async with ws_messages_example.app.test_client() as client, client.websocket("/sum") as ws:
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
    async with ws_messages_example.app.test_client() as client, client.websocket("/sha256") as ws:
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
        assert await closed_by_app(ws) == (
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
        assert await closed_by_app(ws) == (1000, "", [])


async def test_ws_ticker_refuses_bad_commands(autojump_clock: trio.abc.Clock) -> None:
    """Unknown commands and intervals out of range get an error message."""
    async with ws_ticker_example.app.test_client() as client, client.websocket("/ticks") as ws:
        for command in ["faster", "interval fast", "interval 0.01", "interval nan"]:
            await ws.send(command)
            assert await ws.receive_json() == {"error": "commands: 'interval <0.1 to 60>', 'stop'"}


async def test_ws_cleanup_online_list_and_normal_leave() -> None:
    """Each message lists who is online; leaving without close() reports code 1000."""
    async with ws_cleanup_example.app.test_client() as client:
        async with client.websocket("/online/bob") as bob:
            async with client.websocket("/online/cy") as cy:
                await cy.send("?")
                assert await cy.receive_json() == {"online": ["bob", "cy"]}
            await bob.send("?")
            assert await bob.receive_json() == {"online": ["bob"]}
        assert ws_cleanup_example.presence.online == set()
        assert ws_cleanup_example.departures[-2:] == [("cy", 1000), ("bob", 1000)]


async def test_ws_cleanup_jobs_are_cancelled_with_their_client(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Finished jobs report back; a client that leaves cancels the rest, and both the child task
    and except* around the nursery see it."""
    async with ws_cleanup_example.app.test_client() as client, client.websocket("/jobs") as ws:
        await ws.send("backup")
        assert await ws.receive_json() == {"done": "backup"}
        await ws.send("report")
        await ws.send("invoice")
        await trio.testing.wait_all_tasks_blocked()
        await ws.close(4001, "closing the laptop")
    *abandoned, left = ws_cleanup_example.job_log[-3:]
    assert sorted(abandoned) == ["invoice abandoned", "report abandoned"]  # in either order
    assert left == "client left with code 4001"


async def test_ws_closing_notes(autojump_clock: trio.abc.Clock) -> None:
    """bye closes with 1000, a long note with 1009, and a handled error with 1011 (not raised
    in the test); teardown_websocket runs each time."""
    async with ws_closing_example.app.test_client() as client:
        async with client.websocket("/notes") as ws:
            await ws.send("one")
            assert await ws.receive_json() == {"saved": 1}
            await ws.send("bye")
            assert await closed_by_app(ws) == (1000, "", [])
        async with client.websocket("/notes") as ws:
            await ws.send("x" * 201)
            assert await closed_by_app(ws) == (1009, "notes are at most 200 characters", [])
        async with client.websocket("/notes") as ws:
            for _ in range(4):
                await ws.send("note")
            code, reason, replies = await closed_by_app(ws)
            assert (code, reason) == (1011, "Internal Server Error")
            assert replies == ['{"saved":1}', '{"saved":2}', '{"saved":3}']
    assert ws_closing_example.events[-4:] == [
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
        assert await closed_by_app(ws) == (code, "\u2603" * 41, [])


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
        assert await closed_by_app(ws) == (1000, "", [])
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
        assert await closed_by_app(ws) == (4002, "done", [])
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
            seen.append(trio.Cancelled in leaves(error))
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


async def test_ws_listener_keeps_messages_for_a_busy_handler(
    autojump_clock: trio.abc.Clock,
) -> None:
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


async def test_ws_heartbeat_echoes(autojump_clock: trio.abc.Clock) -> None:
    """Messages other than pong are echoed."""
    async with ws_heartbeat_example.app.test_client() as client, client.websocket("/live") as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"


async def test_ws_heartbeat_closes_a_silent_client(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silent client is pinged every PING_EVERY seconds and closed with 4000 once it has been
    silent for SILENCE_LIMIT seconds."""
    monkeypatch.setattr(ws_heartbeat_example, "PING_EVERY", 1)
    monkeypatch.setattr(ws_heartbeat_example, "SILENCE_LIMIT", 2.5)
    async with ws_heartbeat_example.app.test_client() as client, client.websocket("/live") as ws:
        start = trio.current_time()
        assert await ws.receive() == "ping"
        assert await ws.receive() == "ping"
        assert trio.current_time() - start == pytest.approx(2)
        assert await closed_by_app(ws) == (4000, "nothing received for 2.5 s", [])
        assert trio.current_time() - start == pytest.approx(2.5)


async def test_ws_heartbeat_keeps_an_answering_client(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that answers each ping stays connected."""
    monkeypatch.setattr(ws_heartbeat_example, "PING_EVERY", 0.25)
    monkeypatch.setattr(ws_heartbeat_example, "SILENCE_LIMIT", 0.4)
    async with ws_heartbeat_example.app.test_client() as client, client.websocket("/live") as ws:
        start = trio.current_time()
        for _ in range(10):
            assert await ws.receive() == "ping"
            await ws.send("pong")
        assert trio.current_time() - start == pytest.approx(2.5)


# The websocket object's lifecycle, continued -----------------------------------------------------


async def test_the_test_client_reraises_the_handlers_exception() -> None:
    """An exception after accept closes 1011 and reaches the test, from receive or on exit."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.send("hi")
        raise KeyError("lost")

    async def receive_twice(client: Any) -> None:
        async with client.websocket("/ws") as conn:
            assert await conn.receive() == "hi"
            await conn.receive()

    async def leave_after_one(client: Any) -> None:
        async with client.websocket("/ws") as conn:
            assert await conn.receive() == "hi"

    async with app.test_client() as client:
        with pytest.raises(KeyError, match="lost"):
            await receive_twice(client)
        with pytest.raises(KeyError, match="lost"):
            await leave_after_one(client)


async def test_an_error_handler_after_accept_runs_and_the_socket_closes_1011() -> None:
    """A handled error after accept runs its handler, closes 1011 and is not re-raised."""
    app = TrioWeb(__name__)
    handled: list[str] = []

    @app.errorhandler(LookupError)
    async def lookup_failed(error: LookupError) -> str:
        handled.append(repr(error))
        return "ignored after accept"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise KeyError("k")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await conn.receive()
    assert closed.value.code == 1011
    assert handled == ["KeyError('k')"]


async def test_the_test_client_bounds_every_wait(autojump_clock: trio.abc.Clock) -> None:
    """A handler that never answers or never sends makes the test fail with TooSlowError."""
    app = TrioWeb(__name__)

    @app.websocket("/silent")
    async def silent() -> None:
        await websocket.accept()
        await trio.sleep_forever()

    @app.websocket("/stuck")
    async def stuck() -> None:
        await trio.sleep_forever()

    async with app.test_client(timeout=2) as client:
        async with client.websocket("/silent") as conn:
            with pytest.raises(trio.TooSlowError, match="sent nothing within 2"):
                await conn.receive()
        with pytest.raises(trio.TooSlowError):
            async with client.websocket("/stuck"):
                pass  # pragma: no cover


async def test_subprotocol_and_accept_headers_reach_the_client() -> None:
    """accept(subprotocol=..., headers=...) is what the client sees."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept(headers={"X-Room": "7"}, subprotocol="v2")
        await websocket.send(websocket.subprotocol or "")

    async with app.test_client() as client:
        connect = client.websocket("/ws", subprotocols=["v1", "v2"])
        async with connect as c:
            assert c.subprotocol == "v2"
            assert c.accept_headers["X-Room"] == "7"
            assert await c.receive() == "v2"


async def test_a_cancelled_receive_keeps_a_queued_message(autojump_clock: trio.abc.Clock) -> None:
    """receive() cancelled before it runs leaves the listener's queued message for the next one."""
    app = TrioWeb(__name__)
    got: list[str | bytes] = []

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await trio.sleep(1)  # not receiving: a listener queues what arrives
        with trio.move_on_after(0):
            got.append(await websocket.receive())
        got.append(await websocket.receive())
        await websocket.close(1000)

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send("hello")
        with pytest.raises(WebsocketDisconnectError):
            await conn.receive()
    assert got == ["hello"]


async def test_leaving_async_for_early_is_clean() -> None:
    """Breaking out of `async for message in websocket` leaves nothing unfinished behind."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        async for message in websocket:
            if message == "stop":
                break
        await websocket.close(1000, "bye")

    async with app.test_client() as client, client.websocket("/ws") as conn:
        await conn.send("stop")
        with pytest.raises(WebsocketDisconnectError, match="bye"):
            await conn.receive()


async def test_leaving_with_a_full_queue_does_not_cancel_the_test(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that never receives: leaving tears the app down, the test goes on, it is logged."""
    app = TrioWeb(__name__)
    cleaned_up = trio.Event()

    @app.websocket("/silent")
    async def silent() -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up.set()

    async with app.test_client() as client:
        async with client.websocket("/silent") as conn:
            await trio.sleep(1)
            for _ in range(MAX_PENDING + 10):
                await conn.send("x")
        assert cleaned_up.is_set()
        await trio.lowlevel.checkpoint()  # the test itself was not cancelled
    assert "a disconnect will not be noticed" in caplog.text


async def test_an_error_handler_failing_after_accept_is_reraised() -> None:
    """An error handler that itself fails: the socket closes 1011 and the new error surfaces."""
    app = TrioWeb(__name__)

    @app.errorhandler(KeyError)
    async def broken_handler(error: KeyError) -> str:
        raise RuntimeError("handler broke")

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        raise KeyError("k")

    async with app.test_client() as client:
        with pytest.raises(RuntimeError, match="handler broke"):
            async with client.websocket("/ws") as conn:
                await conn.receive()


async def test_a_listen_task_started_too_late_stands_down() -> None:
    """A listen task whose handler entered receive() before it ran does nothing and ends."""
    from trioweb._listener import DisconnectListener, Inbox

    async def never() -> Any:
        await trio.sleep_forever()  # pragma: no cover

    inbox = Inbox(never, lambda code, reason: None)
    listener = DisconnectListener(1)
    async with trio.open_nursery() as nursery:
        listener.enroll(inbox, nursery)
        inbox._look()  # first look: notes the read count
        inbox._look()  # second: no read since, so a listen task is started...
        inbox._reading = True  # ...but the handler starts receiving before it runs
    assert inbox._listening is False
    listener.withdraw(inbox)
    inbox._idle.add(inbox)  # what a late receive() does: kept nowhere, no leak
    assert listener._idle == set()
    assert len(inbox._idle) == 0


# Every async method is a checkpoint, even when it raises ------------------------------------------


def _closed_websocket(state: str) -> Any:
    """A websocket in ``state``: "rejected", "closed by the handler" or "closed by the client"."""
    from trioweb import Websocket

    peer = ASGIPeer()
    ws = Websocket(ws_scope(), peer.receive, peer.send)
    ws.state = {
        "rejected": WebsocketState.REJECTED,
        "closed by the handler": WebsocketState.CLOSED,
        "closed by the client": WebsocketState.CLOSED,
    }[state]
    return ws


@pytest.mark.parametrize("state", ["rejected", "closed by the handler", "closed by the client"])
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda ws: ws.receive(), WebsocketClosed),
        (lambda ws: ws.receive_json(), WebsocketClosed),
        (lambda ws: ws.send("x"), WebsocketClosed),
        (lambda ws: ws.send_json({}), WebsocketClosed),
        (lambda ws: ws.send(42), TypeError),
        (lambda ws: ws.accept(), WebsocketClosed),
        (lambda ws: ws.close(999), ValueError),
        (lambda ws: ws.close(), None),
        (lambda ws: ws.reject(403, [], _nothing()), WebsocketClosed),
    ],
    ids=[
        "receive",
        "receive_json",
        "send",
        "send_json",
        "send-bad-type",
        "accept",
        "close-bad-code",
        "close-again",
        "reject",
    ],
)
async def test_every_method_is_a_checkpoint_even_when_it_raises(
    state: str, call: Any, error: type[Exception] | None
) -> None:
    """Trio's rule: a handler that swallows the error in a loop still yields to other tasks."""
    ws = _closed_websocket(state)
    with trio.testing.assert_checkpoints():
        if error is None:
            await call(ws)
        else:
            with pytest.raises(error):
                await call(ws)


async def test_accepting_with_a_subprotocol_not_offered_is_a_checkpoint() -> None:
    """The ValueError for a subprotocol the client did not offer comes after a checkpoint."""
    from trioweb import Websocket

    peer = ASGIPeer()
    ws = Websocket(ws_scope(), peer.receive, peer.send)
    with trio.testing.assert_checkpoints(), pytest.raises(ValueError, match="not offered"):
        await ws.accept(subprotocol="chat")


async def test_busy_receive_is_a_checkpoint() -> None:
    """trio.BusyResourceError for a second receiver comes after a checkpoint too."""
    from trioweb import Websocket

    peer = ASGIPeer()
    ws = Websocket(ws_scope(), peer.receive, peer.send)
    ws.state = WebsocketState.CONNECTED
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.receive)
        await trio.testing.wait_all_tasks_blocked()
        with trio.testing.assert_checkpoints(), pytest.raises(trio.BusyResourceError):
            await ws.receive()
        nursery.cancel_scope.cancel()


async def _nothing() -> Any:
    for chunk in ():  # pragma: no cover
        yield chunk


async def test_a_handler_swallowing_cancelled_cannot_freeze_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that catches BaseException around receive() in a loop keeps yielding after its
    client left, so other tasks run; a warning names it."""
    app = TrioWeb(__name__)
    ticks = 0
    done = trio.Event()

    @app.websocket("/ws")
    async def stubborn() -> None:
        await websocket.accept()
        for _ in range(2000):  # bounded, so that the test ends even without the fix
            with contextlib.suppress(BaseException):  # the mistake under test
                await websocket.receive()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with app.test_client() as client, trio.open_nursery() as nursery:
        async with client.websocket("/ws") as conn:
            nursery.start_soon(ticker)
            ticks_before = ticks
            await conn.close(1001)  # returns once the handler has spun 2000 times and ended
            assert ticks > ticks_before + 1000  # the ticker ran while the handler spun
        done.set()
    (warning,) = [r for r in caplog.records if "stubborn" in r.getMessage()]
    assert "catches trio.Cancelled" in warning.getMessage()


class NonYieldingPeer(ASGIPeer):
    """A server side like Hypercorn's once its client has gone: ``send`` returns at once,
    without yielding. It gives up after many sends, so a regression fails instead of hanging."""

    def __init__(self) -> None:
        super().__init__()
        self.sends = 0

    async def send(self, message: Message) -> None:
        self.sends += 1
        if self.sends > 200_000:
            raise AssertionError("the handler never yielded")


async def test_a_handler_that_only_sends_sees_the_disconnect_on_a_non_yielding_server() -> None:
    """A ticker that only sends is cancelled by its client's disconnect even when the server's
    send never yields: trioweb's send() yields for it."""
    app = TrioWeb(__name__)
    app.config["DISCONNECT_LISTENER_DELAY"] = 0.01
    ended = trio.Event()

    @app.websocket("/ws")
    async def ticker() -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send("tick")
        finally:
            ended.set()

    peer = NonYieldingPeer()
    await peer.to_app.send({"type": "websocket.connect"})
    await peer.to_app.send({"type": "websocket.disconnect", "code": 1001})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, ws_scope(), peer.receive, peer.send)
    assert ended.is_set()


async def test_send_adds_no_checkpoint_when_the_server_yields() -> None:
    """On a server whose send yields (a live Hypercorn connection), send() yields once, not
    twice: the extra checkpoint is only for a server that did not yield."""
    from trioweb import Websocket

    peer = ASGIPeer()
    ws = Websocket(ws_scope(), peer.receive, peer.send)
    ws.state = WebsocketState.CONNECTED
    task = trio.lowlevel.current_task()
    before = task._schedule_points
    await ws.send("x")
    assert task._schedule_points == before + 1
    non_yielding = NonYieldingPeer()
    ws = Websocket(ws_scope(), non_yielding.receive, non_yielding.send)
    ws.state = WebsocketState.CONNECTED
    before = task._schedule_points
    await ws.send("x")
    assert task._schedule_points == before + 1


# The server's ASGI spec_version -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_version", "headers_sent", "reason_sent"),
    [(None, False, False), ("2.0", False, False), ("2.1", True, False), ("2.3", True, True)],
)
async def test_messages_follow_the_servers_spec_version(
    caplog: pytest.LogCaptureFixture,
    spec_version: str | None,
    headers_sent: bool,
    reason_sent: bool,
) -> None:
    """Accept headers need ASGI spec 2.1 (left out with a warning before), a close reason 2.3
    (left out before); without a spec_version the server speaks 2.0."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept(headers={"X-Room": "lobby"})
        await websocket.close(4000, "bye")

    asgi = (
        {"version": "3.0"}
        if spec_version is None
        else {"version": "3.0", "spec_version": spec_version}
    )
    peer = ASGIPeer([{"type": "websocket.connect"}])
    await app(ws_scope(asgi=asgi), peer.receive, peer.send)
    accept, close = peer.sent
    assert ("headers" in accept) is headers_sent
    assert ("reason" in close) is reason_sent
    assert close["code"] == 4000
    warned = [r for r in caplog.records if "x-room" in r.getMessage()]
    assert len(warned) == (0 if headers_sent else 1)


# Hostile payloads (issue 10, item 2) ------------------------------------------------------------

#: Messages receive_json cannot read, and the words the close reason starts with.
UNREADABLE = [
    pytest.param("{bad", "Cannot read the message as JSON: not valid JSON:", id="invalid"),
    pytest.param("[" * 2000, "Cannot read the message as JSON: arrays and objects", id="2000-deep"),
    pytest.param(
        "[" * 129 + "]" * 129, "Cannot read the message as JSON: arrays and objects", id="129-deep"
    ),
    pytest.param("1" * 5000, "Cannot read the message as JSON: a number of more", id="5000-digits"),
    pytest.param(b'["\xff"]', "Cannot read the message as JSON: not valid UTF-8", id="bad-utf8"),
    pytest.param(
        '{"a": "\\udc00"}', "Cannot read the message as JSON: a \\ud800-\\udfff escape", id="lone"
    ),
]


@pytest.mark.parametrize(("message", "reason"), UNREADABLE)
async def test_receive_json_refuses_what_it_cannot_read_with_1007(
    caplog: pytest.LogCaptureFixture, message: str | bytes, reason: str
) -> None:
    """Whatever receive_json cannot read is InvalidPayload (a BadRequest); uncaught, it closes
    with 1007 and the description as reason, logged at INFO with no traceback."""
    app = TrioWeb(__name__)
    raised: list[BaseException] = []

    @app.websocket("/")
    async def reader() -> None:
        try:
            await websocket.receive_json()
        except BaseException as error:
            raised.append(error)
            raise

    caplog.set_level(logging.INFO, "trioweb")
    async with app.test_client() as client, client.websocket("/") as ws:
        await ws.send(message)
        code, got, _ = await closed_by_app(ws)
    assert (code, got[: len(reason)]) == (1007, reason)
    assert len(got.encode()) <= 123
    (error,) = raised
    assert isinstance(error, trioweb.InvalidPayload)
    assert isinstance(error, BadRequest)
    assert error.description.startswith(reason)
    assert all(record.exc_info is None for record in caplog.records)
    assert [r.levelname for r in caplog.records if "closed with 1007" in r.getMessage()] == ["INFO"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_receive_json_errors_leave_the_websocket_usable() -> None:
    """Caught, InvalidPayload leaves the websocket as it was: the next message is read."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def lenient() -> None:
        while True:
            try:
                await websocket.send_json({"got": await websocket.receive_json()})
            except BadRequest as error:
                await websocket.send_json({"error": error.description})

    async with app.test_client() as client, client.websocket("/") as ws:
        await ws.send("[" * 200 + "]" * 200)
        assert (await ws.receive_json())["error"].startswith("Cannot read the message as JSON")
        await ws.send(b'{"a": "\xc3\xa9"}')  # a binary frame of UTF-8 JSON is read
        assert await ws.receive_json() == {"got": {"a": "é"}}
        await ws.send("[" * 128 + "]" * 128)  # exactly JSON_MAX_DEPTH
        assert await ws.receive() == '{"got":' + "[" * 128 + "]" * 128 + "}"


@pytest.mark.parametrize(
    ("config", "message", "reads"),
    [
        ({}, "[" * 128 + "]" * 128, True),
        ({"JSON_MAX_DEPTH": 3}, "[[[1]]]", True),
        ({"JSON_MAX_DEPTH": 3}, "[[[[1]]]]", False),
        ({"JSON_MAX_DEPTH": 3}, '["[[[[", {"a": [[1]]}]', False),
        ({"JSON_MAX_DEPTH": 3}, '["[[[[[[[[", {"a": [1]}]', True),
        ({"JSON_MAX_DEPTH": 3}, "[[], {}, [], {}, [1]]", True),
        ({"JSON_MAX_DEPTH": None}, "[" * 300 + "]" * 300, True),
        ({"JSON_MAX_DEPTH": None}, "[" * 5000 + "]" * 5000, False),
        ({}, "[NaN, Infinity]", True),
        ({}, '["\\ud83d\\ude00", "\\\\ud800", 1]', True),  # a pair; an escaped backslash
        ({"JSON_ALLOW_NAN": False}, "[NaN]", False),
        ({"JSON_ALLOW_NAN": False}, "[-Infinity]", False),
    ],
)
async def test_receive_json_limits_follow_the_config(
    config: dict[str, Any], message: str, reads: bool
) -> None:
    """JSON_MAX_DEPTH bounds the nesting exactly (brackets in strings do not count; None
    leaves only Python's recursion limit), JSON_ALLOW_NAN=False refuses NaN and Infinity."""
    app = TrioWeb(__name__)
    app.config.update(config)

    @app.websocket("/")
    async def reader() -> None:
        try:
            await websocket.receive_json()
        except trioweb.InvalidPayload:
            await websocket.send("refused")
        else:
            await websocket.send("read")

    async with app.test_client() as client, client.websocket("/") as ws:
        await ws.send(message)
        assert await ws.receive() == ("read" if reads else "refused")


async def test_send_refuses_a_lone_surrogate_before_sending_and_stays_usable() -> None:
    """send() of a str with a lone surrogate (a file name decoded with surrogateescape, say)
    and send_json() of a value holding one raise ValueError before anything is sent; the next
    send goes out."""
    app = TrioWeb(__name__)
    errors: list[str] = []

    @app.websocket("/")
    async def echo() -> None:
        value = {"text": b"caf\xe9".decode(errors="surrogateescape")}
        for attempt in (lambda: websocket.send(value["text"]), lambda: websocket.send_json(value)):
            try:
                await attempt()
            except ValueError as error:
                errors.append(str(error))
        await websocket.send("é still here")

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await closed_by_app(ws) == (1000, "", ["é still here"])
    assert len(errors) == 2
    assert all("lone surrogate" in error for error in errors)
    assert errors[0].startswith("websocket.send() cannot send this str")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")]])
async def test_send_json_refuses_nan_when_strict(value: Any) -> None:
    """With JSON_ALLOW_NAN=False, send_json refuses NaN and the infinities with a ValueError
    that says how to fix it, before anything is sent; by default they go out as Python writes
    them."""
    app = TrioWeb(__name__)
    errors: list[str] = []

    @app.websocket("/")
    async def sender() -> None:
        await websocket.send_json(value)
        app.config["JSON_ALLOW_NAN"] = False
        try:
            await websocket.send_json(value)
        except ValueError as error:
            errors.append(str(error))
        await websocket.send_json(None)

    async with app.test_client() as client, client.websocket("/") as ws:
        code, _, messages = await closed_by_app(ws)
    assert code == 1000
    assert messages[1:] == ["null"]
    assert messages[0] in ("NaN", "Infinity", "[-Infinity]")
    (error,) = errors
    assert "JSON_ALLOW_NAN" in error


async def test_send_json_refusals_are_checkpoints() -> None:
    """A refused send_json or send still checkpoints (Trio's rule)."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def sender() -> None:
        await websocket.accept()
        with trio.testing.assert_checkpoints(), pytest.raises(TypeError):
            await websocket.send_json(object())
        with trio.testing.assert_checkpoints(), pytest.raises(ValueError, match="surrogate"):
            await websocket.send("\udc80")

    async with app.test_client() as client, client.websocket("/") as ws:
        assert await closed_by_app(ws) == (1000, "", [])


async def test_receive_json_outside_an_app_uses_the_defaults() -> None:
    """With no app bound (a websocket built by hand), receive_json parses with the defaults."""
    peer = ASGIPeer(
        [
            {"type": "websocket.receive", "text": "[" * 129 + "]" * 129},
            {"type": "websocket.receive", "text": "[NaN]"},
        ]
    )
    ws = trioweb.Websocket(ws_scope(), peer.receive, peer.send)
    ws.state = WebsocketState.CONNECTED
    with pytest.raises(trioweb.InvalidPayload):
        await ws.receive_json()
    assert str(await ws.receive_json()) == "[nan]"
    await ws.send_json(float("nan"))
    assert peer.sent[-1] == {"type": "websocket.send", "text": "NaN"}


@pytest.mark.parametrize(
    ("headers", "subprotocol", "words"),
    [
        ({"X-Echo": "a\r\nSet-Cookie: evil=1"}, None, "has '\\r' in its value"),
        ({"X-Echo": "a\nb"}, None, "has '\\n' in its value"),
        ({"X-Echo": "a\x00b"}, None, "has '\\x00' in its value"),
        ({"X-Echo": "日本"}, None, "beyond latin-1"),
        ({"X Bad": "1"}, None, "is not an HTTP token"),
        ({"X-Bad:": "1"}, None, "is not an HTTP token"),
        (None, "chat v2", "is not an HTTP token"),
        (None, "chät", "is not an HTTP token"),
        (None, "other", "was not offered"),
    ],
)
async def test_accept_refuses_what_cannot_go_on_the_wire(
    headers: dict[str, str] | None, subprotocol: str | None, words: str
) -> None:
    """accept() with a header that would break the response (CRLF, NUL, non-latin-1, a name
    that is not a token) or a subprotocol that is not a token raises ValueError saying why
    before anything is sent: the handshake is refused with 500, not a broken 101."""
    app = TrioWeb(__name__)
    errors: list[str] = []

    @app.websocket("/")
    async def handler() -> None:
        try:
            await websocket.accept(headers=headers, subprotocol=subprotocol)
        except ValueError as error:
            errors.append(str(error))
            raise

    response = await refusal(app, "/", subprotocols=["chat v2", "chät"])
    assert response.status_code == 500
    (error,) = errors
    assert words in error


async def test_accept_sends_valid_headers_as_latin_1() -> None:
    """Valid extra headers (latin-1 included) go out with the accept."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def handler() -> None:
        await websocket.accept(headers={"X-Name": "café", "X-Tab": "a\tb"}, subprotocol="chat")

    peer = ASGIPeer([{"type": "websocket.connect"}])
    peer.disconnect({"type": "websocket.disconnect", "code": 1000})
    scope = ws_scope("/", subprotocols=["chat"])
    scope["asgi"]["spec_version"] = "2.4"
    async with app.test_client():
        await app(scope, peer.receive, peer.send)
    accept = peer.sent[0]
    assert accept["subprotocol"] == "chat"
    assert accept["headers"] == [(b"x-name", "café".encode("latin-1")), (b"x-tab", b"a\tb")]


ws_json_limits_example = load_example("ws_json_limits")


async def test_ws_json_limits_answers_what_it_cannot_read_and_goes_on() -> None:
    """docs/examples/ws_json_limits.py: /api answers an unreadable message with the reason
    (nested deeper than its JSON_MAX_DEPTH of 8, NaN refused) and serves the next one."""
    async with (
        ws_json_limits_example.app.test_client() as client,
        client.websocket("/api") as ws,
    ):
        await ws.send("[[[[[[[[[1]]]]]]]]]")
        assert await ws.receive_json() == {
            "error": "Cannot read the message as JSON: arrays and objects nested deeper than 8"
            " levels (JSON_MAX_DEPTH)"
        }
        await ws.send('{"x": NaN}')
        assert (await ws.receive_json())["error"].endswith(
            "NaN is not JSON (JSON_ALLOW_NAN is False)"
        )
        await ws.send_json({"ok": [[1]]})
        assert await ws.receive_json() == {"echo": {"ok": [[1]]}}


async def test_ws_json_limits_strict_closes_with_1007() -> None:
    """docs/examples/ws_json_limits.py: /strict lets InvalidPayload close the websocket with
    1007 and the reason."""
    async with (
        ws_json_limits_example.app.test_client() as client,
        client.websocket("/strict") as ws,
    ):
        await ws.send_json([1])
        await ws.send("not json")
        assert await closed_by_app(ws) == (
            1007,
            "Cannot read the message as JSON: not valid JSON: Expecting value: line 1 column 1"
            " (char 0)",
            ['{"echo":[1]}'],
        )
