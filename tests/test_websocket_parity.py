"""One table of websocket behaviours, run through the test client and through real Hypercorn.

Each case builds an app and drives it with a client script. The harness records what the client
saw (messages, the rejection response, the close frame) and what the server did (hooks,
cancellations), and both transports must give exactly the case's expected outcome.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, wrap_client_stream
from werkzeug.exceptions import BadRequest, Forbidden

import trioweb
from trioweb import Blueprint, Response, TrioWeb, abort, websocket
from trioweb.testing import WebsocketDisconnectError, WebsocketResponseError


@dataclasses.dataclass
class Rejected(Exception):
    status: int
    body: bytes
    why: str | None = None


@dataclasses.dataclass
class Closed(Exception):
    code: int
    reason: str


@attrs.frozen
class Conn:
    send: Callable[[str | bytes], Awaitable[None]]
    receive: Callable[[], Awaitable[str | bytes]]
    close: Callable[..., Awaitable[None]]
    subprotocol: str | None


Connect = Callable[..., Any]
#: One event per expected teardown, set as each connection's teardown_websocket hook runs.
Ended = list[trio.Event]


@asynccontextmanager
async def via_test_client(app: TrioWeb) -> AsyncIterator[Connect]:
    async with app.test_client() as client:

        @asynccontextmanager
        async def connect(path: str, **kwargs: Any) -> AsyncIterator[Conn]:
            try:
                async with client.websocket(path, **kwargs) as ws:

                    async def receive() -> str | bytes:
                        try:
                            return await ws.receive()
                        except WebsocketDisconnectError as closed:
                            raise Closed(closed.code, closed.reason) from None
                        except ValueError:  # the handler's error, re-raised by the test client
                            assert ws.close_code is not None
                            raise Closed(ws.close_code, ws.close_reason or "") from None

                    yield Conn(ws.send, receive, ws.close, ws.subprotocol)
            except WebsocketResponseError as rejection:
                response = rejection.response
                body = await response.get_data()
                raise Rejected(response.status_code, body, response.headers.get("X-Why")) from None

        yield connect


@asynccontextmanager
async def via_hypercorn(app: TrioWeb) -> AsyncIterator[Connect]:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(trioweb.serve, app, host="127.0.0.1", port=0))
        port = int(url.rpartition(":")[2])

        @asynccontextmanager
        async def connect(path: str, **kwargs: Any) -> AsyncIterator[Conn]:
            headers = [(k.encode(), v.encode()) for k, v in (kwargs.get("headers") or {}).items()]
            # Our own stream, closed by us: trio-websocket leaves a rejected handshake's open.
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                try:
                    async with trio.open_nursery() as ws_nursery:
                        ws = await wrap_client_stream(
                            ws_nursery,
                            stream,
                            "127.0.0.1",
                            path,
                            subprotocols=kwargs.get("subprotocols"),
                            extra_headers=headers,
                        )

                        async def receive() -> str | bytes:
                            try:
                                message: str | bytes = await ws.get_message()
                            except ConnectionClosed as closed:
                                reason = closed.reason
                                raise Closed(reason.code, reason.reason or "") from None
                            return message

                        async def close(code: int = 1000, reason: str = "") -> None:
                            await ws.aclose(code, reason)

                        try:
                            yield Conn(ws.send_message, receive, close, ws.subprotocol)
                        finally:
                            await ws.aclose()
                except BaseExceptionGroup as group:
                    leaf = lone_leaf(group)
                    if isinstance(leaf, ConnectionRejected):
                        why = dict(leaf.headers or []).get(b"x-why")
                        raise Rejected(
                            leaf.status_code, leaf.body or b"", why.decode() if why else None
                        ) from None
                    if leaf is not None:
                        raise leaf from None
                    raise

        yield connect
        nursery.cancel_scope.cancel()


def lone_leaf(error: BaseException) -> BaseException | None:
    """The single exception inside (nested) one-member groups, if that is what ``error`` is."""
    while isinstance(error, BaseExceptionGroup):
        if len(error.exceptions) != 1:
            return None
        error = error.exceptions[0]
    return error


async def read_until_closed(conn: Conn, seen: list[Any]) -> None:
    try:
        while True:
            seen.append(await conn.receive())
    except Closed as closed:
        seen.append(closed)


async def connect_and_read(connect: Connect, seen: list[Any], path: str, **kwargs: Any) -> None:
    """Connect, record every message and the close; or record the rejection."""
    try:
        async with connect(path, **kwargs) as conn:
            await read_until_closed(conn, seen)
    except Rejected as rejected:
        seen.append(rejected)


# Cases: each is build(app, log), script(connect, seen), then what the client sees and the log.


def build_echo(app: TrioWeb, log: list[Any]) -> None:
    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        async for message in websocket:
            await websocket.send(message)


ECHOED: list[str | bytes] = ["text", b"bytes", b"", "", "\u00e9t\u00e9", b"\x00\xff"]


async def script_echo(connect: Connect, seen: list[Any], ended: Ended) -> None:
    async with connect("/ws") as conn:
        for message in ECHOED:
            await conn.send(message)
            seen.append(await conn.receive())


def build_json(app: TrioWeb, log: list[Any]) -> None:
    @app.websocket("/ws")
    async def ws() -> None:
        data = await websocket.receive_json()  # accepts implicitly
        await websocket.send_json(data)
        try:
            await websocket.receive_json()
        except BadRequest:
            await websocket.send_json(error="bad json")
        await websocket.send_json(1, 2, 3)
        try:
            await websocket.send(42)  # type: ignore[arg-type]
        except TypeError as error:
            await websocket.send(str(error).split(";")[0])


async def script_json(connect: Connect, seen: list[Any], ended: Ended) -> None:
    async with connect("/ws") as conn:
        await conn.send('{"a": [1, 2]}')
        seen.append(await conn.receive())
        await conn.send("{not json")
        for _ in range(3):
            seen.append(await conn.receive())


def build_attributes(app: TrioWeb, log: list[Any]) -> None:
    bp = Blueprint("rooms", __name__, url_prefix="/rooms")

    @bp.websocket("/<int:room>")
    async def join(room: int) -> None:
        auth = websocket.authorization
        found: dict[str, Any] = {}

        async def in_child_task() -> None:  # the global works in tasks the handler starts
            found.update(
                path=websocket.path,
                full_path=websocket.full_path,
                scheme=websocket.scheme,
                args=websocket.args.to_dict(),
                header=websocket.headers.get("X-Custom"),
                cookie=websocket.cookies.get("flavour"),
                auth=[auth.type, auth.username, auth.password] if auth else None,
                remote_addr=websocket.remote_addr,
                view_args=websocket.view_args,
                endpoint=websocket.endpoint,
                blueprint=websocket.blueprint,
                rule=websocket.url_rule.rule if websocket.url_rule else None,
                subprotocols=websocket.requested_subprotocols,
                url_path=websocket.url.split("/", 3)[3],
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(in_child_task)
        await websocket.accept(subprotocol="v2", headers={"X-Accepted": "yes"})
        await websocket.send_json(found)

    app.register_blueprint(bp)


async def script_attributes(connect: Connect, seen: list[Any], ended: Ended) -> None:
    basic = base64.b64encode(b"ann:secret").decode()
    headers = {"X-Custom": "1", "Cookie": "flavour=mint", "Authorization": f"Basic {basic}"}
    async with connect("/rooms/7?x=1&y=two", headers=headers, subprotocols=["v1", "v2"]) as conn:
        seen.append(conn.subprotocol)
        seen.append(await conn.receive())


ATTRIBUTES = (
    '{"path":"/rooms/7","full_path":"/rooms/7?x=1&y=two","scheme":"ws",'
    '"args":{"x":"1","y":"two"},"header":"1","cookie":"mint","auth":["basic","ann","secret"],'
    '"remote_addr":"127.0.0.1","view_args":{"room":7},"endpoint":"rooms.join",'
    '"blueprint":"rooms","rule":"/rooms/<int:room>","subprotocols":["v1","v2"],'
    '"url_path":"rooms/7?x=1&y=two"}'
)


def build_rejections(app: TrioWeb, log: list[Any]) -> None:
    @app.websocket("/tuple")
    async def by_tuple() -> Any:
        return "Invalid password", 403, {"X-Why": "tuple"}

    @app.websocket("/response")
    async def by_response() -> Response:
        return Response("teapot", 418, {"X-Why": "response"})

    @app.websocket("/abort")
    async def by_abort() -> None:
        abort(401)

    @app.websocket("/raise")
    async def by_raise() -> None:
        raise Forbidden("not you")

    @app.websocket("/close-first")
    async def by_close() -> None:
        await websocket.close(1008, "ignored before accept")

    @app.websocket("/nothing")
    async def by_nothing() -> None:
        log.append("returned without accepting")

    @app.websocket("/crash-before")
    async def crash_before() -> None:
        raise ValueError("before accept")

    @app.websocket("/bad-subprotocol")
    async def bad_subprotocol() -> None:
        await websocket.accept(subprotocol="not-offered")

    @app.route("/http-only")
    async def http_only() -> str:
        return "http"


async def script_rejections(connect: Connect, seen: list[Any], ended: Ended) -> None:
    for index, path in enumerate(
        [
            "/tuple",
            "/response",
            "/abort",
            "/raise",
            "/close-first",
            "/nothing",
            "/crash-before",
            "/bad-subprotocol",
            "/http-only",
            "/missing",
        ]
    ):
        try:
            async with connect(path):
                seen.append(f"{path} accepted")
        except Rejected as rejected:
            seen.append((path, rejected.status, rejected.why, rejected.body.startswith(b"<!doc")))
        await ended[index].wait()


REJECTIONS = [
    ("/tuple", 403, "tuple", False),
    ("/response", 418, "response", False),
    ("/abort", 401, None, True),
    ("/raise", 403, None, True),
    ("/close-first", 403, None, False),
    ("/nothing", 500, None, True),
    ("/crash-before", 500, None, True),
    ("/bad-subprotocol", 500, None, True),
    ("/http-only", 400, None, True),
    ("/missing", 404, None, True),
]


def build_hook_rejects(app: TrioWeb, log: list[Any]) -> None:
    bp = Blueprint("private", __name__, url_prefix="/private")

    @app.before_websocket
    async def app_hook() -> Any:
        log.append("app before")
        if websocket.args.get("app") == "no":
            return "app says no", 401
        return None

    @bp.before_websocket
    async def bp_hook() -> None:
        log.append("bp before")
        if websocket.args.get("token") != "t0k3n":
            abort(403)

    @bp.after_websocket
    async def bp_after(response: Response | None) -> Response | None:
        log.append(f"bp after {response.status_code if response else None}")
        return response

    @bp.websocket("/ws")
    async def ws() -> None:
        log.append("handler")
        await websocket.send("welcome")

    app.register_blueprint(bp)


async def script_hook_rejects(connect: Connect, seen: list[Any], ended: Ended) -> None:
    for index, query in enumerate(["app=no", "token=wrong", "token=t0k3n"]):
        await connect_and_read(connect, seen, f"/private/ws?{query}")
        await ended[index].wait()


def build_closing(app: TrioWeb, log: list[Any]) -> None:
    @app.websocket("/close")
    async def close() -> None:
        await websocket.accept()
        await websocket.send("bye soon")
        await websocket.close(4000, "see you")
        log.append(("after close", websocket.close_code, websocket.close_reason))
        try:
            await websocket.send("too late")
        except trioweb.WebsocketClosed as closed:
            log.append(("send after close", closed.code, closed.reason))

    @app.websocket("/return")
    async def returns() -> str:
        await websocket.accept()
        return "ignored after accept"

    @app.websocket("/crash")
    async def crash() -> None:
        await websocket.send("about to fail")
        raise ValueError("after accept")


async def script_closing(connect: Connect, seen: list[Any], ended: Ended) -> None:
    for index, path in enumerate(["/close", "/return", "/crash"]):
        await connect_and_read(connect, seen, path)
        await ended[index].wait()


# Disconnects: wherever the handler waits, the client leaving cancels it.


def build_disconnects(app: TrioWeb, log: list[Any]) -> None:
    _send_channel, receive_channel = trio.open_memory_channel[str](0)
    app.config["DISCONNECT_LISTENER_DELAY"] = 0.01

    async def wait(where: str) -> None:
        if where == "receive":
            await websocket.receive()
        elif where == "channel":
            await receive_channel.receive()
        elif where == "sleep":
            await trio.sleep_forever()
        elif where == "child":
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(trio.sleep_forever)

    @app.websocket("/wait/<where>")
    async def waits(where: str) -> None:
        await websocket.send("ready")
        try:
            await wait(where)
        except BaseException as error:
            cancelled = isinstance(error, trio.Cancelled) or (
                isinstance(error, BaseExceptionGroup) and error.split(trio.Cancelled)[1] is None
            )
            known = (
                websocket.close_code is not None
            )  # Hypercorn reports 1006 whatever the client sent
            log.append((where, "cancelled" if cancelled else repr(error), known))
            raise

    @app.after_websocket
    async def after(response: Response | None) -> None:
        log.append(("after", response))


async def script_disconnects(connect: Connect, seen: list[Any], ended: Ended) -> None:
    for index, where in enumerate(["receive", "channel", "sleep", "child"]):
        async with connect(f"/wait/{where}") as conn:
            seen.append(await conn.receive())
            await conn.close(1001, "going away")
        await ended[index].wait()  # the server may finish after the client: keep logs in order


@attrs.frozen
class Case:
    build: Callable[[TrioWeb, list[Any]], None]
    script: Callable[[Connect, list[Any], Ended], Awaitable[None]]
    seen: list[Any]
    log: list[Any]


CASES = {
    "echo preserves str, bytes and empty frames": Case(
        build_echo, script_echo, ECHOED, ["teardown None"]
    ),
    "JSON both ways; bad JSON and a bad type leave the socket usable": Case(
        build_json,
        script_json,
        [
            '{"a":[1,2]}',
            '{"error":"bad json"}',
            "[1,2,3]",
            "websocket.send() takes str or bytes, not int",
        ],
        ["teardown None"],
    ),
    "the websocket global mirrors request, in child tasks too": Case(
        build_attributes, script_attributes, ["v2", ATTRIBUTES], ["teardown None"]
    ),
    "rejecting before accept answers HTTP": Case(
        build_rejections,
        script_rejections,
        REJECTIONS,
        ["teardown None"] * 5
        + ["returned without accepting", "teardown None"]
        + ["teardown ValueError"] * 2
        + ["teardown None"] * 2,
    ),
    "before_websocket hooks reject as handlers do": Case(
        build_hook_rejects,
        script_hook_rejects,
        [
            Rejected(401, b"app says no"),
            Rejected(403, Forbidden().get_body().encode()),
            "welcome",
            Closed(1000, ""),
        ],
        [
            "app before",
            "bp after 401",
            "teardown None",
            "app before",
            "bp before",
            "bp after 403",
            "teardown None",
            "app before",
            "bp before",
            "handler",
            "bp after None",
            "teardown None",
        ],
    ),
    "close, return and crash after accept": Case(
        build_closing,
        script_closing,
        [
            "bye soon",
            Closed(4000, "see you"),
            Closed(1000, ""),
            "about to fail",
            Closed(1011, "Internal Server Error"),
        ],
        [
            ("after close", 4000, "see you"),
            ("send after close", 4000, "see you"),
            "teardown None",
            "teardown None",
            "teardown ValueError",
        ],
    ),
    "a disconnect cancels the handler wherever it waits": Case(
        build_disconnects,
        script_disconnects,
        ["ready"] * 4,
        [
            item
            for where in ["receive", "channel", "sleep", "child"]
            for item in [(where, "cancelled", True), ("after", None), "teardown None"]
        ],
    ),
}


@pytest.mark.parametrize(
    "transport", [via_test_client, via_hypercorn], ids=["test-client", "hypercorn"]
)
@pytest.mark.parametrize("name", list(CASES))
async def test_parity(transport: Callable[..., Any], name: str) -> None:
    """Each behaviour gives the same client-side and server-side outcome on both transports."""
    case = CASES[name]
    app = TrioWeb(__name__)
    log: list[Any] = []
    ended = [trio.Event() for item in case.log if str(item).startswith("teardown")]
    teardowns = iter(ended)

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        log.append(f"teardown {type(error).__name__ if error else None}")
        next(teardowns).set()

    case.build(app, log)
    seen: list[Any] = []
    async with transport(app) as connect:
        await case.script(connect, seen, ended)
        # Hypercorn may finish a handler after its client has the answer: wait for teardowns.
        await ended[-1].wait()
    assert seen == case.seen
    assert log == case.log


async def test_http_and_websocket_share_a_path_on_both_transports() -> None:
    """One path serves HTTP and a websocket; HTTP to a websocket-only route is a 400."""
    app = TrioWeb(__name__)

    @app.route("/both")
    async def page() -> str:
        return "http side"

    @app.websocket("/both")
    async def socket() -> None:
        await websocket.send("websocket side")

    @app.websocket("/ws-only")
    async def ws_only() -> None:
        await websocket.send("unreachable over HTTP")  # pragma: no cover

    async with app.test_client() as client:
        assert await (await client.get("/both")).get_data() == b"http side"
        assert (await client.get("/ws-only")).status_code == 400
        async with client.websocket("/both") as conn:
            assert await conn.receive() == "websocket side"
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(trioweb.serve, app, host="127.0.0.1", port=0))
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/both")).text == "http side"
            assert (await http.get("/ws-only")).status_code == 400
        async with via_hypercorn(app) as connect, connect("/both") as conn:
            assert await conn.receive() == "websocket side"
        nursery.cancel_scope.cancel()
