"""The connection layer's trio-side glue (trioweb._layer._server and _connection): which paths
serve with it, what stock Hypercorn keeps serving, containment, sends, keep-alive, shutdown.

Real sockets on 127.0.0.1, port 0; every wait is on an event or the client's own reads.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import attrs
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trio
import trio.testing
import trustme
import wsproto
import wsproto.events
from _e2e import HYPERCORN, running
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, RawData, Updated
from trio_websocket import open_websocket_url

import trioweb
from trioweb import TrioWeb, WebsocketClosed, websocket
from trioweb._layer import _connection, _server
from trioweb._layer._apps import ConnectionBroken, TaskGroup
from trioweb._layer._connection import Connection, Shared
from trioweb._layer._limits import Limits
from trioweb._servedby import LAYER, MISSING, TEST_CLIENT
from trioweb._serving import hypercorn_config, worker_for

# Helpers ----------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(
    app: Any, *, layer: bool = True, config: HypercornConfig | None = None, **settings: Any
) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:0 (Hypercorn ``settings``); yields the URL, shuts down after."""
    cfg = hypercorn_config(config=config, **settings)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(trioweb.serve, app, port=0, config=cfg, layer=layer))
        yield url
        nursery.cancel_scope.cancel()


@attrs.define
class Server:
    """A server that a test stops by itself (cancelling only the server, not the test)."""

    url: str = ""
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    stopped: trio.Event = attrs.Factory(trio.Event)
    stopping_since: float = 0.0

    async def run(self, app: Any, cfg: HypercornConfig, *, task_status: Any) -> None:
        with self.scope:
            await trioweb.serve(app, port=0, config=cfg, task_status=task_status)
        self.stopped.set()

    def stop(self) -> None:
        self.stopping_since = trio.current_time()
        self.scope.cancel()

    async def stop_took(self) -> float:
        """Seconds from stop() until the server had shut down."""
        await self.stopped.wait()
        return trio.current_time() - self.stopping_since


@asynccontextmanager
async def stoppable(app: Any, **settings: Any) -> AsyncIterator[Server]:
    """Serve ``app``; the test may stop the server while its clients stay open."""
    server = Server()
    async with trio.open_nursery() as nursery:
        server.url = await nursery.start(server.run, app, hypercorn_config(**settings))
        yield server
        server.scope.cancel()


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def raw_connect(url: str, *, rcvbuf: int | None = None) -> trio.SocketStream:
    """A plain TCP connection to the server of ``url`` (with a small receive buffer if asked)."""
    sock = trio.socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect(address(url))
    return trio.SocketStream(sock)


async def read_to_end(stream: trio.abc.ReceiveStream) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    data = bytearray()
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:
        pass
    return bytes(data)


def handshake(path: str = "/ws") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def frame(text: str) -> bytes:
    """A masked text frame (mask 0: the payload as is), as a client sends it."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def read_head(stream: trio.SocketStream) -> bytes:
    """Read a response's head (through the blank line); what follows stays unread."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += await stream.receive_some(1)
    return head


def echo_app() -> TrioWeb:
    app = TrioWeb("layer")

    @app.get("/")
    async def index() -> str:
        return "hello"

    @app.websocket("/ws")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    return app


async def still_serves(url: str) -> None:
    """Another client gets its answer."""
    async with httpx.AsyncClient() as client:
        assert (await client.get(url + "/")).text == "hello"


# Which paths serve with the layer ----------------------------------------------------------------


class ScopeRecorder:
    """An ASGI app that records its lifespan scope and answers HTTP with 200."""

    def __init__(self) -> None:
        self.lifespan: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.lifespan = scope
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("layer", [True, False])
async def test_serve_uses_the_layer_unless_told_not_to(layer: bool) -> None:
    """trioweb.serve (and so app.run and trioweb run) serves with the layer, whose lifespan scope
    says so; layer=False serves with stock Hypercorn."""
    app = ScopeRecorder()
    async with serving(app, layer=layer) as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).text == "ok"
    assert (LAYER in app.lifespan.get("extensions", {})) is layer


@pytest.mark.parametrize("kwargs", [{}, {"layer": False}])
def test_app_run_passes_the_layer_choice_on(
    kwargs: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """app.run() serves with the layer unless given layer=False."""
    seen: list[bool] = []
    monkeypatch.setattr(
        "trioweb._serving.serve_in_process", lambda *args, layer, **kw: seen.append(layer)
    )
    monkeypatch.setattr("trioweb._serving.print", lambda *args, **kw: None, raising=False)
    echo_app().run(port=0, **kwargs)
    assert seen == [kwargs.get("layer", True)]


def test_worker_for_picks_the_layer_or_stock_hypercorn() -> None:
    """The layer's worker by default; Hypercorn's own with layer=False."""
    from hypercorn.trio.run import worker_serve as stock

    assert worker_for(HypercornConfig(), True) is _server.worker_serve
    assert worker_for(HypercornConfig(), False) is stock


@pytest.mark.parametrize("installed", ["0.16.0", "0.19.0", "1.0"])
def test_an_unsupported_hypercorn_is_served_stock_and_said_so(
    installed: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a Hypercorn the layer is not tested with, trioweb serves with stock Hypercorn and logs
    one warning saying so."""
    from hypercorn.trio.run import worker_serve as stock

    monkeypatch.setattr("trioweb._layer.version", lambda name: installed)
    assert worker_for(HypercornConfig(), True) is stock
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"Hypercorn {installed} is installed" in record.getMessage()
    assert "0.17.x and 0.18.x" in record.getMessage()


def test_http3_is_served_stock_and_said_so(caplog: pytest.LogCaptureFixture) -> None:
    """The layer does not cover QUIC: with quic_bind set, stock Hypercorn serves, with a line."""
    from hypercorn.trio.run import worker_serve as stock

    assert worker_for(hypercorn_config(quic_bind=["127.0.0.1:4433"]), True) is stock
    (record,) = caplog.records
    assert "quic_bind" in record.getMessage()


@pytest.mark.parametrize(("layer", "warned"), [(True, False), (False, True)])
async def test_the_app_warns_once_when_served_without_the_layer(
    layer: bool, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A trioweb app served by stock Hypercorn logs one WARNING naming the missing
    protections; under the layer it says nothing."""
    async with serving(echo_app(), layer=layer) as url:
        await still_serves(url)
    warnings = [r for r in caplog.records if r.getMessage() == MISSING]
    assert len(warnings) == (1 if warned else 0)
    assert all(r.levelno == logging.WARNING for r in warnings)


async def test_the_test_client_declares_itself(caplog: pytest.LogCaptureFixture) -> None:
    """The test client's lifespan carries its own extension, so tests stay quiet."""
    seen: list[Any] = []
    app = echo_app()

    @app.before_serving
    async def look() -> None:
        seen.append(True)

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 200
    assert seen == [True]
    assert MISSING not in caplog.text
    assert TEST_CLIENT == "trioweb.test_client"


async def test_hypercorn_k_trio_serves_stock_and_warns() -> None:
    """``hypercorn -k trio`` keeps working on stock Hypercorn; the app warns once at startup."""
    async with running(
        *HYPERCORN, "-k", "trio", "-b", "127.0.0.1:0", "tests.apps.basic:app"
    ) as cmd:
        await cmd.wait_for("served without its connection layer")
        await cmd.wait_for(r"Running on http://127\.0\.0\.1:\d+")


# Everything stock serves, through the layer ----------------------------------------------------


async def test_http11_keep_alive_reuses_the_connection() -> None:
    """Two requests on one client share one connection."""
    app = TrioWeb("keep")
    ports: list[int] = []

    @app.get("/")
    async def index() -> str:
        ports.append(trioweb.request.scope["client"][1])
        return "hello"

    async with serving(app) as url, httpx.AsyncClient() as client:
        for _ in range(2):
            assert (await client.get(url + "/")).text == "hello"
    assert len(ports) == 2
    assert ports[0] == ports[1]


async def test_h2c_with_prior_knowledge() -> None:
    """HTTP/2 in clear text (prior knowledge) is served."""
    async with serving(echo_app()) as url, httpx.AsyncClient(http1=False, http2=True) as client:
        response = await client.get(url + "/")
    assert (response.http_version, response.text) == ("HTTP/2", "hello")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[HypercornConfig, ssl.SSLContext]:
    """A server config with a certificate of a test CA (trustme), and a client context that
    trusts the CA."""
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(pem)
    config = HypercornConfig()
    config.certfile = config.keyfile = str(pem)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return config, client


@pytest.mark.parametrize("http2", [False, True])
async def test_tls_with_alpn(http2: bool, tls: tuple[HypercornConfig, ssl.SSLContext]) -> None:
    """HTTPS, HTTP/1.1 or HTTP/2 as ALPN chooses."""
    config, context = tls
    async with serving(echo_app(), config=config) as url:
        assert url.startswith("https://")
        context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
        async with httpx.AsyncClient(verify=context, http2=http2) as client:
            response = await client.get(url + "/")
    assert response.text == "hello"
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")


async def test_websocket_over_tls(tls: tuple[HypercornConfig, ssl.SSLContext]) -> None:
    """wss:// through the layer."""
    config, context = tls
    context.set_alpn_protocols(["http/1.1"])
    async with serving(echo_app(), config=config) as url:
        ws_url = url.replace("https://", "wss://") + "/ws"
        async with open_websocket_url(ws_url, ssl_context=context) as connection:
            await connection.send_message("over tls")
            assert await connection.get_message() == "over tls"


async def test_a_failed_tls_handshake_ends_only_that_connection(
    tls: tuple[HypercornConfig, ssl.SSLContext],
) -> None:
    """A client that speaks plain HTTP to the TLS port is dropped; others are served."""
    config, context = tls
    async with serving(echo_app(), config=config) as url, await raw_connect(url) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_to_end(stream)
        context.set_alpn_protocols(["http/1.1"])
        async with httpx.AsyncClient(verify=context) as client:
            assert (await client.get(url + "/")).text == "hello"


async def test_websocket_over_http2_rfc8441() -> None:
    """A websocket over an HTTP/2 stream (extended CONNECT, RFC 8441)."""
    async with serving(echo_app()) as url, await raw_connect(url) as stream:
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
        h2c.initiate_connection()
        stream_id = h2c.get_next_available_stream_id()
        h2c.send_headers(
            stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/ws"),
                (b":authority", b"localhost"),
                (b"sec-websocket-version", b"13"),
            ],
        )
        await stream.send_all(h2c.data_to_send())
        ws = wsproto.connection.Connection(wsproto.connection.ConnectionType.CLIENT)
        sent = False
        received: list[str] = []
        while not received:
            for event in h2c.receive_data(await stream.receive_some()):
                if isinstance(event, h2.events.ResponseReceived):
                    assert dict(event.headers)[b":status"] == b"200"
                    h2c.send_data(stream_id, ws.send(wsproto.events.TextMessage("over h2")))
                    sent = True
                elif isinstance(event, h2.events.DataReceived):
                    h2c.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    ws.receive_data(event.data)
                    received += [
                        e.data for e in ws.events() if isinstance(e, wsproto.events.Message)
                    ]
            await stream.send_all(h2c.data_to_send())
        assert sent
        assert received == ["over h2"]


# Containment: no client ends the process or another connection ---------------------------------


async def read_until_closed_or(stream: trio.SocketStream, wanted: bytes) -> bytes:
    """Read until the server closes the connection or has sent ``wanted``."""
    data = bytearray()
    try:
        while wanted not in data and (chunk := await stream.receive_some()):
            data += chunk
    except trio.BrokenResourceError:
        pass
    return bytes(data)


HOSTILE = {
    # pgjones/hypercorn#225: the handshake and the first frame in one write end stock's process.
    # (Whether the frame is then echoed or refused is the protocol side's: its tests.)
    "pipelined-first-frame": (handshake() + frame("hi"), b"HTTP/1.1 "),
    # #203-like: bytes after a request that asked to close.
    "trailing-bytes": (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nXYZ", b"\r\n\r\n"),
    "h11-garbage": (b"\x00\x01garbage\r\n\r\n", b"400"),
}


@pytest.mark.parametrize("sent", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_a_hostile_client_ends_only_its_own_connection(
    sent: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever a client sends, the server gives it an answer or closes its connection, keeps
    serving the others, and logs nothing at ERROR level from the layer."""
    data, answer = sent
    async with serving(echo_app(), graceful_timeout=0.5) as url, httpx.AsyncClient() as bystander:
        assert (await bystander.get(url + "/")).text == "hello"
        async with await raw_connect(url) as stream:
            await stream.send_all(data)
            await read_until_closed_or(stream, answer)
        assert (await bystander.get(url + "/")).text == "hello"
    assert not [r for r in caplog.records if r.name == "trioweb.layer" and r.levelno >= 40]


async def test_on_stock_hypercorn_a_pipelined_first_frame_ends_the_server() -> None:
    """What the layer answers (pgjones/hypercorn#225): on stock Hypercorn the error escapes
    the worker and ends serve(). When this fails, upstream fixed it."""
    import h11

    with pytest.RaisesGroup(pytest.RaisesExc(h11.LocalProtocolError), flatten_subgroups=True):
        async with serving(echo_app(), layer=False) as url, await raw_connect(url) as stream:
            await stream.send_all(handshake() + frame("hi"))
            await trio.sleep_forever()  # until the server's crash cancels this


async def test_an_unexpected_error_is_logged_with_its_traceback_and_contained(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the protocol machinery ends that connection only, logged once at ERROR with
    its traceback."""

    class Buggy(_connection.ProtocolWrapper):
        async def handle(self, event: Any) -> None:
            if isinstance(event, RawData) and event.data.startswith(b"BUG"):
                raise RuntimeError("a bug in the machinery")
            await super().handle(event)

    monkeypatch.setattr(_connection, "ProtocolWrapper", Buggy)
    async with serving(echo_app()) as url, await raw_connect(url) as stream:
        await stream.send_all(b"BUG / HTTP/1.1\r\n\r\n")
        assert await read_to_end(stream) == b""
        await still_serves(url)
    (record,) = [r for r in caplog.records if r.name == "trioweb.layer"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (__import__("h11").RemoteProtocolError("bad", 400), logging.INFO),
        (__import__("h11").LocalProtocolError("refused"), logging.WARNING),
        (ExceptionGroup("g", [ConnectionResetError()]), logging.DEBUG),
        (ExceptionGroup("g", [KeyError(1), KeyError(2)]), logging.ERROR),
    ],
    ids=["client", "refusal", "transport", "bug"],
)
def test_contained_errors_are_logged_at_their_level(
    error: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A client's bad input is INFO, a state machine's refusal WARNING, a broken transport
    DEBUG, anything else ERROR."""
    caplog.set_level(logging.DEBUG, logger="trioweb.layer")
    _connection._log_contained(error, ("127.0.0.1", 1))
    (record,) = caplog.records
    assert record.levelno == level


async def test_a_contained_error_beside_a_cancellation_is_logged_and_the_cancel_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When an error and the connection's cancellation leave its task together, the error is
    logged and the cancellation passes (to the server's nursery)."""
    conn, peer = bare_connection()
    with peer, trio.CancelScope() as scope:

        async def fail_when_cancelled() -> None:
            try:
                await trio.sleep_forever()
            finally:
                raise KeyError("bug")

        async def failing(self: Any) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fail_when_cancelled)
                nursery.start_soon(trio.sleep_forever)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()

        monkeypatch.setattr(type(conn), "_serve", failing)
        await conn.run()
    assert scope.cancelled_caught
    assert conn.hung_up
    assert "KeyError" in caplog.text


# Sends -------------------------------------------------------------------------------------------


_pairs: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_pairs() -> Iterator[None]:
    yield
    while _pairs:
        _pairs.pop().close()


def bare_connection(limits: Limits | None = None) -> tuple[Connection, socket.socket]:
    """A connection over one end of a socket pair (not running), and the other end; both are
    closed after the test."""
    from hypercorn.trio.worker_context import WorkerContext

    ours, peer = socket.socketpair()
    _pairs.extend([ours, peer])
    ours.setblocking(False)
    shared = Shared(None, HypercornConfig(), WorkerContext(None), {}, limits or Limits())  # type: ignore[arg-type]
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    return Connection(shared, stream, ours), peer


BIG = b"x" * (8 * 1024 * 1024)  # more than socket buffers hold


async def drain(peer: socket.socket, size: int) -> bytes:
    trio_peer = trio.socket.from_stdlib_socket(peer)
    data = bytearray()
    while len(data) < size:
        data += await trio_peer.recv(1 << 20)
    return bytes(data)


async def test_a_send_that_fits_goes_straight_out_and_is_a_checkpoint() -> None:
    """A small send is written at once, and is a checkpoint."""
    conn, peer = bare_connection()
    with peer:
        with trio.testing.assert_checkpoints():
            await conn.send(RawData(b"hello"))
        assert peer.recv(100) == b"hello"


async def test_sends_keep_their_order_through_partial_writes() -> None:
    """A write that does not fit waits for the client; a send behind it waits its turn."""
    conn, peer = bare_connection()
    with peer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, RawData(BIG))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(conn.send, RawData(b"after"))
            received = await drain(peer, len(BIG) + 5)
    assert received == BIG + b"after"
    assert not conn.hung_up


async def test_a_send_to_a_client_that_stopped_reading_times_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Past send_timeout without progress, the connection is aborted and the send raises
    ConnectionAbortedError, naming the setting."""
    conn, peer = bare_connection(Limits(send_timeout=2))
    with peer:
        start = trio.current_time()
        with pytest.raises(ConnectionAbortedError, match="WEBSOCKET_SEND_TIMEOUT"):
            await conn.send(RawData(BIG))
        assert trio.current_time() - start == pytest.approx(2, abs=0.5)
        assert conn.hung_up
        with pytest.raises(ConnectionBroken):  # a send after the end
            await conn.send(RawData(b"later"))


@pytest.mark.parametrize("shielded", [False, True])
async def test_hanging_up_ends_a_waiting_send_even_a_shielded_one(shielded: bool) -> None:
    """A send waiting for the client ends as soon as the connection is hung up (shutdown's
    deadline), whatever shields its caller; it raises ConnectionBroken."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    with peer:

        async def sender() -> None:
            with trio.CancelScope(shield=shielded), pytest.raises(ConnectionBroken):
                await conn.send(RawData(BIG))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            conn.hang_up(abort=True)


async def test_a_send_cancelled_half_way_aborts_the_connection() -> None:
    """An app's own move_on_after ends a send; with part of the bytes out, the connection is
    aborted (the client's framing could not recover)."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    with peer:
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                nursery.start_soon(_cancel_when_blocked, scope)
                await conn.send(RawData(BIG))
        assert scope.cancelled_caught
        assert conn.hung_up


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def test_a_send_cancelled_before_any_byte_leaves_the_connection_open() -> None:
    """Cancelled before it wrote anything (waiting for another send), a send changes nothing."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    with peer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, RawData(BIG))
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:
                nursery.start_soon(_cancel_when_blocked, scope)
                await conn.send(RawData(b"queued"))
            assert scope.cancelled_caught
            assert not conn.hung_up
            assert await drain(peer, len(BIG)) == BIG


async def test_a_send_into_a_full_buffer_waits_for_the_client_and_can_be_cancelled() -> None:
    """With the socket's buffer full, a send waits for the client to read; cancelled before
    any of its bytes went out, it leaves the connection open."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    filled = 0
    while (sent := _connection._send_some(conn.raw, memoryview(BIG))) > 0:
        filled += sent
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_blocked, scope)
            await conn.send(RawData(b"dropped"))
    assert scope.cancelled_caught
    assert not conn.hung_up
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.send, RawData(b"kept"))
        assert await drain(peer, filled + 4) == BIG[:filled] + b"kept"


async def test_a_connection_whose_peer_is_gone_before_it_starts_ends_quietly(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error before the connection's nursery (the client left before getpeername) is
    contained like any other."""
    caplog.set_level(logging.DEBUG, logger="trioweb.layer")
    conn, _peer = bare_connection()

    async def gone(self: Any) -> None:
        await trio.lowlevel.checkpoint()
        raise OSError("not connected")

    monkeypatch.setattr(type(conn), "_serve", gone)
    await conn.run()
    assert conn.hung_up
    assert "not connected" in caplog.text


@pytest.mark.parametrize("when", ["fits", "partial"])
async def test_a_send_to_a_client_that_left_raises_and_hangs_up(when: str) -> None:
    """A send to a closed peer hangs up and raises ConnectionBroken (the app learns that its
    client left; the reader then ends the connection); so does every send after it."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    if when == "fits":
        peer.close()
        with pytest.raises(ConnectionBroken):
            await conn.send(RawData(b"into the void"))
    else:
        with pytest.RaisesGroup(ConnectionBroken):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.send, RawData(BIG))
                await trio.testing.wait_all_tasks_blocked()
                peer.close()
    assert conn.hung_up
    with pytest.raises(ConnectionBroken, match="is closed"):
        await conn.send(RawData(b"again"))


async def test_updated_and_closed_events_mark_the_connection_idle_or_busy() -> None:
    """Busy: not idle; idle: idle from now (the server's sweeper closes it keep_alive_timeout
    later), or closed at once during shutdown; Closed hangs up. Each is a cancel point."""
    conn, peer = bare_connection()
    with peer:
        conn.idle_since = 123.0
        with trio.CancelScope() as scope:
            scope.cancel()
            await conn.send(Updated(idle=False))
        assert scope.cancelled_caught
        assert conn.idle_since == 123.0
        await conn.send(Updated(idle=False))
        assert conn.idle_since == float("inf")
        await conn.send(Updated(idle=True))
        assert conn.idle_since == pytest.approx(trio.current_time(), abs=0.5)
        assert not conn.hung_up
        await conn.shared.context.terminated.set()
        await conn.send(Updated(idle=True))
        assert conn.hung_up
    conn, peer = bare_connection()
    with peer:
        await conn.send(Closed())
        assert conn.hung_up


# The app's queue and helpers -------------------------------------------------------------------


async def test_the_app_queue_takes_a_message_without_yielding_and_drops_it_once_the_app_ended() -> (
    None
):
    """put() is a cancel point that does not yield when the queue has room; a message for an
    ended app is dropped; a full queue makes the reader wait."""
    conn, peer = bare_connection()
    received: list[Any] = []
    release = trio.Event()

    async def app(scope: Any, receive: Any, send: Any, *_: Any) -> None:
        received.append(await receive())
        await release.wait()
        received.append(await receive())

    async def protocol_send(message: Any) -> None:
        await trio.lowlevel.checkpoint()

    config = HypercornConfig()
    config.max_app_queue_size = 1
    with peer:
        async with trio.open_nursery() as nursery:
            put = await TaskGroup(nursery, conn).spawn_app(app, config, {}, protocol_send)  # type: ignore[arg-type]
            await put({"n": 1})
            await trio.testing.wait_all_tasks_blocked()
            await put({"n": 2})  # the queue holds it
            nursery.start_soon(put, {"n": 3})  # waits for room
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        await put({"n": 4})  # the app has ended: dropped
    assert received == [{"n": 1}, {"n": 2}]


async def test_an_app_error_is_logged_as_hypercorn_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that raises is logged as "Error in ASGI Framework"; a transport error after the
    connection closed only at DEBUG."""
    conn, peer = bare_connection()

    async def app(scope: Any, receive: Any, send: Any, *_: Any) -> None:
        raise scope["error"]

    async def protocol_send(message: Any) -> None:
        await trio.lowlevel.checkpoint()

    with peer:
        async with trio.open_nursery() as nursery:
            group = TaskGroup(nursery, conn)
            await group.spawn_app(app, conn.shared.config, {"error": KeyError()}, protocol_send)  # type: ignore[arg-type]
            await trio.testing.wait_all_tasks_blocked()
            conn.hung_up = True
            await group.spawn_app(app, conn.shared.config, {"error": OSError()}, protocol_send)  # type: ignore[arg-type]
    records = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert records == ["Error in ASGI Framework"]


async def test_an_app_error_beside_a_cancellation_is_logged_and_the_cancel_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app whose nursery raises an error together with Cancelled: logged, and cancelled."""
    conn, peer = bare_connection()

    async def fail_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise KeyError("bug")

    async def app(scope: Any, receive: Any, send: Any, *_: Any) -> None:
        async with trio.open_nursery() as inner:
            inner.start_soon(fail_when_cancelled)
            await trio.sleep_forever()

    async def protocol_send(message: Any) -> None:
        await trio.lowlevel.checkpoint()

    with peer:
        async with trio.open_nursery() as nursery:
            await TaskGroup(nursery, conn).spawn_app(app, conn.shared.config, {}, protocol_send)  # type: ignore[arg-type]
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert "Error in ASGI Framework" in caplog.text


async def test_an_app_cancelled_inside_its_own_nursery_is_cancelled_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelling the connection while its app waits in a nursery of its own logs nothing."""
    conn, _peer = bare_connection()

    async def app(scope: Any, receive: Any, send: Any, *_: Any) -> None:
        async with trio.open_nursery() as inner:
            inner.start_soon(trio.sleep_forever)
            await trio.sleep_forever()

    async def protocol_send(message: Any) -> None:
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        await TaskGroup(nursery, conn).spawn_app(app, conn.shared.config, {}, protocol_send)  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert caplog.records == []


async def test_a_helper_ends_quietly_on_a_transport_error_after_the_hang_up() -> None:
    """A protocol helper task (pings, h2's sender) that fails on the transport once the
    connection has hung up ends quietly; before that, the error is the connection's."""
    conn, peer = bare_connection()

    async def helper() -> None:
        await trio.lowlevel.checkpoint()
        raise trio.BrokenResourceError

    with peer:
        with pytest.raises(ExceptionGroup):
            async with trio.open_nursery() as nursery:
                TaskGroup(nursery, conn).spawn(helper)
        conn.hang_up()
        async with trio.open_nursery() as nursery:
            TaskGroup(nursery, conn).spawn(helper)


async def test_a_handler_that_only_sends_learns_of_a_reset_behind_full_queues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client floods a handler that never receives (the reader waits for room in the app's
    full queue, so it cannot hand on a disconnect), then leaves: the handler's next send fails,
    the handler is cancelled with the websocket closed 1006, and every task of the connection
    ends. (Before: the send returned as if it had worked, and the handler and the connection
    lived on.)"""
    from hypercorn.utils import wrap_app

    app = TrioWeb("sender")
    steps, step = trio.open_memory_channel[None](0)
    seen: list[Any] = []

    @app.websocket("/ticks")
    async def ticks() -> None:
        await websocket.accept()
        try:
            while True:
                await step.receive()
                await websocket.send("tick")
        finally:  # cancelled, as for any disconnect
            seen.append((websocket.close_code, websocket.close_reason))

    conn, peer = bare_connection(Limits(ping_interval=None))
    conn.shared.app = wrap_app(app, conn.shared.config.wsgi_max_body_size, None)
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    trio_peer = trio.socket.from_stdlib_socket(peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio_peer.send(client.send(wsproto.events.Request(host="a", target="/ticks")))
        client.receive_data(await trio_peer.recv(4096))
        assert isinstance(next(client.events()), wsproto.events.AcceptConnection)
        flood = b"".join(client.send(wsproto.events.TextMessage("x")) for _ in range(64))
        await trio_peer.send(flood)  # 64 messages: the app's queue holds 10
        await trio.testing.wait_all_tasks_blocked()
        await steps.send(None)
        client.receive_data(await trio_peer.recv(4096))
        assert [e.data for e in client.events()] == ["tick"]  # the handler still sends
        assert conn.apps == 1
        peer.close()  # the client is gone
        await steps.send(None)  # the handler's next send fails
    assert seen == [(1006, f"the connection broke: {conn._broken()!r}")]
    assert conn.hung_up
    assert conn.apps == 0
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_send_that_waited_its_turn_on_a_connection_that_hung_up_raises() -> None:
    """A send queued behind one that waits for the client raises ConnectionBroken when the
    connection hangs up meanwhile, like every send after the end."""
    conn, peer = bare_connection(Limits(send_timeout=None))
    with peer:

        async def send_expecting_broken(data: bytes) -> None:
            with pytest.raises(ConnectionBroken):
                await conn.send(RawData(data))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_expecting_broken, BIG)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(send_expecting_broken, b"behind")
            await trio.testing.wait_all_tasks_blocked()
            conn.hang_up()


# A websocket client that stopped reading ---------------------------------------------------------


async def stalled_websocket(url: str, path: str) -> trio.SocketStream:
    """A websocket client, with a small receive buffer, that reads the 101 and nothing else."""
    stream = await raw_connect(url, rcvbuf=4096)
    await stream.send_all(handshake(path))
    assert (await read_head(stream)).startswith(b"HTTP/1.1 101")
    return stream


def flooding_app(seen: dict[str, Any], done: trio.Event, **config: Any) -> TrioWeb:
    """An app whose /flood handler sends 64 KiB messages until something stops it."""
    app = TrioWeb("flood")
    app.config.update(config)

    @app.websocket("/flood")
    async def flood() -> None:
        await websocket.accept()
        try:
            with trio.move_on_after(seen.get("own_timeout", float("inf"))) as own:
                while True:
                    await websocket.send(b"x" * 65536)
            seen["own_timeout_caught"] = own.cancelled_caught
        except WebsocketClosed as closed:
            seen["closed"] = closed.code
        finally:
            seen["code"] = websocket.close_code
            done.set()

    return app


async def test_a_client_that_stops_reading_is_closed_after_the_send_timeout() -> None:
    """WEBSOCKET_SEND_TIMEOUT bounds a send to a client that stopped reading: the connection is
    aborted and the handler is cancelled, its websocket closed with 1006."""
    seen: dict[str, Any] = {}
    done = trio.Event()
    app = flooding_app(seen, done, WEBSOCKET_SEND_TIMEOUT=0.3)
    async with serving(app) as url, await stalled_websocket(url, "/flood") as stream:
        await done.wait()
        await read_to_end(stream)  # the server closed it
    assert seen["code"] == 1006
    assert "closed" not in seen  # cancelled, not left to find out on its next send


async def test_an_apps_own_move_on_after_around_send_works() -> None:
    """With no send timeout, the app's own move_on_after ends a send the client does not
    take."""
    seen: dict[str, Any] = {"own_timeout": 0.3}
    done = trio.Event()
    app = flooding_app(seen, done, WEBSOCKET_SEND_TIMEOUT=None)
    async with serving(app) as url, await stalled_websocket(url, "/flood"):
        await done.wait()
    assert seen["own_timeout_caught"] is True


async def test_shutdown_ends_within_the_graceful_timeout_despite_a_stalled_reader() -> None:
    """Cancelling serve while a handler sends to a client that stopped reading ends within
    graceful_timeout + 1 s; the handler's finally runs (stock's shielded send never ends)."""
    seen: dict[str, Any] = {}
    done = trio.Event()
    app = flooding_app(seen, done, WEBSOCKET_SEND_TIMEOUT=None)
    async with (
        stoppable(app, graceful_timeout=0.5) as server,
        await stalled_websocket(server.url, "/flood"),
    ):
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        server.stop()
        assert await server.stop_took() < 0.5 + 1
    assert done.is_set()


async def test_websockets_are_closed_with_1001_at_shutdown() -> None:
    """At shutdown every websocket gets a close frame with 1001 "going away"."""
    async with (
        stoppable(echo_app(), graceful_timeout=2) as server,
        await raw_connect(server.url) as stream,
    ):
        await stream.send_all(handshake())
        assert (await read_head(stream)).startswith(b"HTTP/1.1 101")
        server.stop()
        close = await read_to_end(stream)
        assert close[:1] == b"\x88"
        assert struct.unpack("!H", close[2:4]) == (1001,)
        assert await server.stop_took() < 1


async def test_going_away_that_fails_is_logged_and_hangs_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A going_away that raises at shutdown ends that connection, logged."""

    async def broken(self: Any) -> None:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("going_away failed")

    monkeypatch.setattr(_connection.ProtocolWrapper, "going_away", broken)
    async with (
        stoppable(echo_app(), graceful_timeout=3) as server,
        await raw_connect(server.url) as stream,
    ):
        await stream.send_all(handshake())
        assert (await read_head(stream)).startswith(b"HTTP/1.1 101")
        await stream.send_all(frame("hi"))
        assert await stream.receive_some() == b"\x81\x02hi"
        server.stop()
        await read_to_end(stream)
        assert await server.stop_took() < 1
    assert "going_away failed" in caplog.text


async def test_a_keyboard_interrupt_in_the_worker_is_a_graceful_shutdown() -> None:
    """As on stock Hypercorn, KeyboardInterrupt reaching the worker (no signal handler) shuts
    down gracefully: after_serving runs and the worker returns."""
    from hypercorn.utils import wrap_app

    app = echo_app()
    ran: list[str] = []

    @app.after_serving
    async def done() -> None:
        ran.append("after_serving")

    async def interrupted() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyboardInterrupt

    config = hypercorn_config(port=0)
    await _server.worker_serve(wrap_app(app, 0, "asgi"), config, shutdown_trigger=interrupted)
    assert ran == ["after_serving"]


async def test_an_error_in_the_accept_loop_is_raised() -> None:
    """What is not a shutdown (a broken shutdown trigger) leaves the worker, after the
    lifespan's shutdown."""
    from hypercorn.utils import wrap_app

    async def broken() -> None:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("trigger broke")

    config = hypercorn_config(port=0)
    with pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="trigger broke"), flatten_subgroups=True
    ):
        await _server.worker_serve(wrap_app(echo_app(), 0, "asgi"), config, shutdown_trigger=broken)


# Keep-alive, read timeout, shutdown of HTTP ----------------------------------------------------


async def test_an_idle_connection_is_closed_after_keep_alive_timeout() -> None:
    """A connection with no request in flight is closed keep_alive_timeout after its last
    response (or after it opened)."""
    async with serving(echo_app(), keep_alive_timeout=0.2) as url, await raw_connect(url) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_to_end(stream)).endswith(b"hello")


async def test_a_client_that_sends_too_slowly_is_dropped_after_read_timeout() -> None:
    """With Hypercorn's read_timeout set, a client silent that long is dropped."""
    async with (
        serving(echo_app(), read_timeout=0.2, keep_alive_timeout=30) as url,
        await raw_connect(url) as stream,
    ):
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        assert await read_to_end(stream) == b""


async def test_at_shutdown_idle_connections_close_and_requests_in_flight_finish() -> None:
    """Shutdown closes an idle keep-alive connection at once, and a request in flight gets
    to finish (within graceful_timeout)."""
    app = TrioWeb("inflight")
    arrived, release = trio.Event(), trio.Event()

    @app.get("/slow")
    async def slow() -> str:
        arrived.set()
        await release.wait()
        return "finished"

    async with (
        stoppable(app, graceful_timeout=3) as server,
        await raw_connect(server.url) as idle,
        await raw_connect(server.url) as busy,
    ):
        await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await arrived.wait()
        server.stop()
        assert await read_to_end(idle) == b""
        release.set()
        assert (await read_to_end(busy)).endswith(b"finished")
        assert await server.stop_took() < 1


# The accept loop ------------------------------------------------------------------------------


class FlakyListener:
    """A listening socket whose accept() fails as listed, then has nothing."""

    def __init__(self, errors: list[OSError]) -> None:
        self.errors = errors
        self.real = socket.create_server(("127.0.0.1", 0))  # no client ever comes

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        if self.errors:
            raise self.errors.pop(0)
        raise BlockingIOError


async def test_the_accept_loop_rides_out_accept_errors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that gave up before accept is skipped; running out of file descriptors is
    logged, with what to do, and retried a little later."""
    import errno

    listener = FlakyListener([OSError(errno.ECONNABORTED, "gone"), OSError(errno.EMFILE, "fds")])
    with listener.real:
        with trio.move_on_after(1):
            await _server._accept(listener, None, None, None)  # type: ignore[arg-type]
    assert not listener.errors
    (record,) = caplog.records
    assert "open files" in record.getMessage()


class _SpuriousWake:
    """A socket that reports itself readable once before it has anything to read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.wakes = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        self.wakes += 1
        if self.wakes == 1:
            raise BlockingIOError
        return self.sock.recv(size)


async def test_a_read_after_a_spurious_wake_up_waits_again() -> None:
    """A socket that was readable and then was not (``EAGAIN``): the read waits again and
    returns what comes next, rather than failing or taking the end of the stream."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.send(b"GET")
        sock = _SpuriousWake(ours)
        assert await _connection._receive(sock) == b"GET"  # type: ignore[arg-type]
        assert sock.wakes == 2
