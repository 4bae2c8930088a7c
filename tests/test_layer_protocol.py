"""The connection layer's per-stream protocol fixes (trioweb._layer._protocol and the modules under
it), driven through the protocol objects: a fake server feeds them the client's bytes and
collects what they send, a wsproto client speaks the other end, raw ASGI apps record what they
get. Hostile inputs are a table, one row per input."""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trio.testing
import wsproto
import wsproto.events as ws
from _docs import load_example
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app
from trio_websocket import ConnectionClosed, wrap_client_stream
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

import trioweb
from trioweb import TrioWeb, websocket
from trioweb._layer._apps import ConnectionBroken
from trioweb._layer._frames import frame as small_frame
from trioweb._layer._frames import parse_small
from trioweb._layer._limits import Limits
from trioweb._layer._protocol import ProtocolWrapper
from trioweb.testing import WebsocketDisconnectError

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + KEY + b"\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"


def frame(
    payload: bytes, opcode: int = 1, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One client frame, built by hand (so that it can break the rules)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 2**16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


class Recorder:
    """A raw ASGI websocket app: accepts (once ``accept`` is set), records every message, and
    echoes text and bytes; ``script`` may replace the echo loop."""

    def __init__(self, *, accept: bool = True, echo: bool = True, go: bool = True) -> None:
        self.messages: list[dict[str, Any]] = []
        self.accept = trio.Event()
        if accept:
            self.accept.set()
        self.go = trio.Event()  # receives after the accept once set
        if go:
            self.go.set()
        self.echo = echo
        self.disconnected = trio.Event()
        self.ended = trio.Event()
        self.send: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.send = send
        try:
            if scope["type"] != "websocket":
                await receive()
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})
                return
            self.messages.append(await receive())
            await self.accept.wait()
            await send({"type": "websocket.accept"})
            await self.go.wait()
            while True:
                message = await receive()
                self.messages.append(message)
                if message["type"] == "websocket.disconnect":
                    self.disconnected.set()
                    return
                if self.echo:
                    message = {k: v for k, v in message.items() if k != "type"}
                    await send({"type": "websocket.send", **message})
        finally:
            self.ended.set()

    @property
    def received(self) -> list[str | bytes]:
        return [
            m.get("text") or m.get("bytes")
            for m in self.messages
            if m["type"] == "websocket.receive"
        ]

    @property
    def disconnect(self) -> tuple[int, str]:
        message = self.messages[-1]
        assert message["type"] == "websocket.disconnect", self.messages
        return message["code"], message.get("reason", "")


class Wire:
    """The server's side of one connection: what the protocol sent, and whether it hung up."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.out = bytearray()
        self.hung_up = False
        self.protocol: ProtocolWrapper
        self.gate: trio.Event | None = None  # while set, sending bytes waits for it
        self.broken = False  # sending bytes raises, as once the server has hung up
        self.writes = 0  # how many times bytes were sent (the server writes nothing for b"")

    async def send(self, event: Event) -> None:
        if self.broken and isinstance(event, RawData):
            await trio.lowlevel.checkpoint()
            raise ConnectionBroken("hung up")
        await self._send(event)

    async def _send(self, event: Event) -> None:
        await trio.lowlevel.checkpoint()
        if self.gate is not None and isinstance(event, RawData):
            await self.gate.wait()
        if isinstance(event, RawData):
            self.writes += bool(event.data)
            if not self.hung_up:
                self.out += event.data
        elif isinstance(event, Closed):
            if not self.hung_up:  # as the server: hang up, then the reader hands on Closed
                self.hung_up = True
                self.nursery.start_soon(self.protocol.handle, Closed())
        else:
            assert isinstance(event, Updated)

    async def feed(self, data: bytes) -> None:
        """The client sends ``data``; returns once the server has done what it does with it."""
        await self.protocol.handle(RawData(data))
        await trio.testing.wait_all_tasks_blocked()

    def take(self) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data


@asynccontextmanager
async def connection(
    app: Any, limits: Limits | None = None, alpn: str = "http/1.1", **settings: Any
) -> AsyncIterator[Wire]:
    """A connection to ``app`` through the layer's protocol (Hypercorn's ``settings``), served
    in a task group of its own that the block's end cancels."""
    config = Config()
    for name, value in settings.items():
        setattr(config, name, value)
    async with TaskGroup() as task_group:
        wire = Wire(task_group._nursery)  # type: ignore[arg-type]
        wire.protocol = ProtocolWrapper(
            wrap_app(app, config.wsgi_max_body_size, None),
            config,
            WorkerContext(None),
            task_group,
            ConnectionState({}),
            False,
            ("127.0.0.1", 5000),
            ("127.0.0.1", 80),
            wire.send,
            alpn,
            limits=limits or Limits(ping_interval=None),
        )
        await wire.protocol.initiate()
        yield wire
        task_group._nursery.cancel_scope.cancel()  # type: ignore[union-attr]


class Client:
    """A wsproto client on the other end of a :class:`Wire`."""

    def __init__(self, wire: Wire, extensions: list[Any] | None = None) -> None:
        self.wire = wire
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.extensions = extensions or []

    def request(self, **kwargs: Any) -> bytes:
        return self.ws.send(
            ws.Request(host="example.com", target="/ws", extensions=self.extensions, **kwargs)
        )

    async def open(self, extra: bytes = b"") -> list[ws.Event]:
        await self.wire.feed(self.request() + extra)
        return self.events()

    def events(self) -> list[ws.Event]:
        data = self.wire.take()
        if data:  # (b"" would be the end of the connection)
            self.ws.receive_data(data)
        return list(self.ws.events())

    async def send(self, event: ws.Event) -> list[ws.Event]:
        await self.wire.feed(self.ws.send(event))
        return self.events()


def close_of(events: list[ws.Event]) -> tuple[int, str]:
    closes = [e for e in events if isinstance(e, ws.CloseConnection)]
    assert len(closes) == 1, events
    return int(closes[0].code), closes[0].reason or ""


# Containment: the handshake -------------------------------------------------------------------


async def test_a_first_frame_in_the_handshakes_write_is_served() -> None:
    """A client that writes its first frames with the handshake gets them echoed after the 101
    (pgjones/hypercorn#225: stock answered 400, or failed in h11)."""
    app = Recorder()
    async with connection(app) as wire:
        client = Client(wire)
        masked = wsproto.frame_protocol.FrameProtocol(True, [])
        events = await client.open(bytes(masked.send_data("one")) + bytes(masked.send_data(b"two")))
        assert isinstance(events[0], ws.AcceptConnection)
        assert [e.data for e in events[1:]] == ["one", b"two"]
        assert [e.data for e in await client.send(ws.BytesMessage(b"three"))] == [b"three"]
        assert app.received == ["one", b"two", b"three"]


async def test_frames_before_a_slow_accept_wait_for_it() -> None:
    """Frames that come before the app accepts are held and parsed after the 101, in order
    with what comes later; more than ten wait for the app's queue instead of blocking its
    accept."""
    app = Recorder(accept=False)
    async with connection(app) as wire:
        client = Client(wire)
        masked = wsproto.frame_protocol.FrameProtocol(True, [])
        early = b"".join(bytes(masked.send_data(str(n))) for n in range(15))
        assert await client.open(early) == []
        app.accept.set()
        await trio.testing.wait_all_tasks_blocked()
        events = client.events()
        assert isinstance(events[0], ws.AcceptConnection)
        events = await client.send(ws.TextMessage("late"))
        assert app.received == [str(n) for n in range(15)] + ["late"]


async def test_too_much_before_the_accept_is_refused_and_the_app_hears_it() -> None:
    """More than a message's worth before the accept: 400, the connection closes, and the
    waiting app gets its disconnect (stock: 400 and a handler that never ends)."""
    app = Recorder(accept=False)
    async with connection(app, Limits(max_message_size=100, ping_interval=None)) as wire:
        await wire.feed(HANDSHAKE + frame(b"x" * 120))
        assert wire.take().startswith(b"HTTP/1.1 400 ")
        assert wire.hung_up
        app.accept.set()  # the app's accept now goes nowhere
        await app.disconnected.wait()
        assert app.disconnect == (1009, "message too big before the handshake completed")
        assert wire.take() == b""


async def test_frames_after_the_early_ones_wait_while_those_are_parsed() -> None:
    """Bytes that arrive while the early ones are still being parsed (the app is slow to
    receive) wait for them; if the early ones end the connection, the later ones are dropped."""
    app = Recorder(go=False)
    async with connection(app) as wire:
        client = Client(wire)
        early = b"".join(frame(b"%d" % n) for n in range(12)) + frame(b"", 3)
        assert isinstance((await client.open(early))[0], ws.AcceptConnection)
        wire.nursery.start_soon(wire.protocol.handle, RawData(frame(b"late")))
        await trio.testing.wait_all_tasks_blocked()
        app.go.set()
        await app.disconnected.wait()
        assert app.received == [str(n) for n in range(12)]
        assert app.disconnect[0] == 1002
        assert close_of(client.events())[0] == 1002


async def test_early_frames_of_a_connection_that_ended_during_the_accept_are_dropped() -> None:
    """The connection ends while the 101 is being sent: the early frames are not parsed."""
    app = Recorder(accept=False)
    async with connection(app) as wire:
        await wire.feed(HANDSHAKE + frame(b"early"))
        wire.gate = trio.Event()
        app.accept.set()
        await trio.testing.wait_all_tasks_blocked()
        await wire.protocol.handle(Closed())
        wire.gate.set()
        await app.disconnected.wait()
        assert app.received == []
        assert app.disconnect == (1006, "")


async def test_bytes_after_a_refusal_by_response_are_dropped() -> None:
    """The app refuses the handshake with its own response; what the client sends meanwhile
    is dropped, and the connection closes after the response."""
    refusing = trio.Event()
    finish = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"n", "more_body": True})
        refusing.set()
        await finish.wait()
        await send({"type": "websocket.http.response.body", "body": b"o"})

    async with connection(app) as wire:
        await wire.feed(HANDSHAKE)
        await refusing.wait()
        await wire.feed(frame(b"ignored"))
        finish.set()
        await trio.testing.wait_all_tasks_blocked()
        assert wire.take().startswith(b"HTTP/1.1 403 ")
        assert wire.hung_up


async def test_an_unknown_extension_is_not_accepted() -> None:
    """An offer of an extension the layer does not know: the websocket opens without it."""
    async with connection(Recorder()) as wire:
        request = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: x-foo\r\n\r\n")
        await wire.feed(request)
        response = wire.take()
        assert response.startswith(b"HTTP/1.1 101 ")
        assert b"sec-websocket-extensions" not in response.lower()


async def test_raw_headers_pass_when_configured() -> None:
    """Hypercorn's ``h11_pass_raw_headers``: the app sees the header names as sent."""
    app = Recorder()
    scopes: list[dict[str, Any]] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await app(scope, receive, send)

    async with connection(recording, h11_pass_raw_headers=True) as wire:
        await Client(wire).open()
        assert (b"Host", b"example.com") in scopes[0]["headers"]


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        pytest.param(
            HANDSHAKE.replace(b"Sec-WebSocket-Key: " + KEY + b"\r\n", b""), 400, id="no key"
        ),
        pytest.param(HANDSHAKE.replace(b"Version: 13", b"Version: 8"), 400, id="old version"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x00garbage\r\n\r\n", 200, id="garbage"),
        pytest.param(b"GET / HTTP/1.1\r\nHost\r\n\r\n", 400, id="bad header"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nmore",
            400,
            id="data after Connection: close (#203)",
        ),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, id="TLS"),
    ],
)
async def test_a_bad_request_is_answered_and_the_connection_closes(
    request_: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A handshake or request h11 or the handshake check refuses gets its status, then the
    connection closes (stock left a refused handshake's socket open for good)."""
    caplog.set_level(logging.INFO, "trioweb.layer")
    async with connection(Recorder()) as wire:
        await wire.feed(request_)
        assert wire.take().startswith(b"HTTP/1.1 %d " % status)
        assert wire.hung_up
    if b"Host\r\n" in request_ or b"more" in request_:
        assert [r.levelname for r in caplog.records] == ["INFO"]


@pytest.mark.parametrize(
    ("header", "server_names"),
    [
        (b"Sec-WebSocket-Protocol: chat, ch\xe4t", []),
        (b"Sec-WebSocket-Extensions: permessage-deflate; x=\xff", []),
        (b"Connection: Upgrade, \xc3\xa4", []),
        (b"X-Other: \xe4", ["example.com"]),  # the Host below is fine
    ],
    ids=["subprotocol", "extensions", "connection", "host (server_names)"],
)
async def test_a_handshake_header_that_is_not_ascii_gets_400(
    header: bytes, server_names: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A byte over 127 in a header Hypercorn's handshake decodes as ASCII: 400 naming it, one
    INFO line, the connection closes, and no app runs (stock: UnicodeDecodeError, no answer,
    an ERROR)."""
    caplog.set_level(logging.INFO, "trioweb.layer")
    app = Recorder()
    request = HANDSHAKE.replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n")
    if server_names:
        request = request.replace(b"Host: example.com", b"Host: ex\xe4mple.com")
    async with connection(app, server_names=server_names) as wire:
        await wire.feed(request)
        head, _, body = wire.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        name = (b"host" if server_names else header.split(b":")[0]).decode()
        assert body.decode().lower() == f"bad request: the {name.lower()} header is not ascii"
        assert wire.hung_up
    assert app.messages == []
    assert [(r.levelname, name.lower() in r.getMessage().lower()) for r in caplog.records] == [
        ("INFO", True)
    ]


async def test_a_non_ascii_host_passes_without_server_names() -> None:
    """Hypercorn reads Host only to check ``server_names``: without them, a Host that is not
    ASCII is the app's to judge."""
    app = Recorder()
    async with connection(app) as wire:
        await wire.feed(HANDSHAKE.replace(b"Host: example.com", b"Host: ex\xe4mple.com"))
        assert wire.take().startswith(b"HTTP/1.1 101 ")


async def test_an_http_request_hypercorn_cannot_decode_gets_400(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over HTTP/1.1 with ``server_names``, a Host that is not ASCII; over HTTP/2, a path or a
    method that is not: 400 naming it, one INFO line each, no app runs (stock: a
    UnicodeDecodeError, an ERROR, and over HTTP/2 every stream of the connection ended). The
    HTTP/2 connection goes on serving its other streams."""
    caplog.set_level(logging.INFO, "trioweb.layer")
    app = Recorder()
    async with connection(app, server_names=["a"]) as wire:
        await wire.feed(b"GET / HTTP/1.1\r\nHost: \xe4\r\n\r\n")
        head, _, body = wire.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert body == b"Bad Request: the host header is not ASCII"
        assert wire.hung_up
    async with connection(app, alpn="h2") as wire:
        client = H2Client(wire)
        for stream_id, method, path in ((1, b"GET", b"/\xe4"), (3, b"G\xc9T", b"/")):
            client.h2.send_headers(
                stream_id,
                [
                    (b":method", method),
                    (b":scheme", b"http"),
                    (b":path", path),
                    (b":authority", b"a"),
                ],
                end_stream=True,
            )
        client.h2.send_headers(
            5,
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")],
            end_stream=True,
        )
        events = await client.flush()
        statuses = {
            e.stream_id: dict(e.headers)[b":status"]
            for e in events
            if isinstance(e, h2.events.ResponseReceived)
        }
        assert statuses == {1: b"400", 3: b"400", 5: b"200"}
        assert client.data(events, 1) == b"Bad Request: the path is not ASCII"
        assert client.data(events, 3) == b"Bad Request: the method is not ASCII"
        assert client.data(events, 5) == b"ok"
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "trioweb.layer"]
    assert [level for level, _ in messages] == ["INFO"] * 3
    assert all("refused the request" in message for _, message in messages)


async def test_an_http2_websocket_whose_path_is_not_ascii_gets_400() -> None:
    """Over HTTP/2 the path is a header value, not checked by h11: a byte over 127 in it gets
    400 on that stream; the connection goes on."""
    app = Recorder()
    async with connection(app, alpn="h2") as wire:
        client = H2Client(wire)
        client.h2.send_headers(
            1,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/w\xe4"),
                (b":authority", b"example.com"),
                (b"sec-websocket-version", b"13"),
            ],
        )
        events = await client.flush()
        (response,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert dict(response.headers)[b":status"] == b"400"
        assert client.data(events, 1) == b"Bad Request: the path is not ASCII"
        assert not wire.hung_up
    assert app.messages == []


# Containment and close codes after the handshake ------------------------------------------------

HOSTILE = [
    # (id, bytes after the handshake, close code, limits)
    ("trailing byte (#225)", b"x\r\n", 1002),
    ("bad UTF-8", frame(b"\xff\xfe"), 1007),
    (
        "bad UTF-8 across fragments",
        frame(b"ok", fin=False) + frame(b"\xc3", 0, fin=False) + frame(b"(", 0),
        1007,
    ),
    ("reserved opcode", frame(b"", 3), 1002),
    ("reserved control opcode", frame(b"", 0xB), 1002),
    ("RSV bit without extension", frame(b"hi", rsv=2), 1002),
    ("unmasked frame", frame(b"hi", mask=False), 1002),
    ("continuation first", frame(b"hi", 0), 1002),
    ("new message inside a fragmented one", frame(b"a", fin=False) + frame(b"b"), 1002),
    ("fragmented ping", frame(b"", 9, fin=False), 1002),
    ("ping over 125 bytes", frame(b"p" * 126, 9), 1002),
    ("close with one byte", frame(b"\x03", 8), 1002),
    ("close code 999", frame(struct.pack("!H", 999), 8), 1002),
    ("close code 1005", frame(struct.pack("!H", 1005), 8), 1002),
    ("close code 2000", frame(struct.pack("!H", 2000), 8), 1002),
    ("close reason bad UTF-8", frame(struct.pack("!H", 1000) + b"\xff", 8), 1007),
    ("length in 2 bytes that fits in 1", b"\x81\xfe\x00\x05" + MASK + b"hello", 1002),
    ("message over the limit (declared)", frame(b"x" * 1001, 2), 1009),
    (
        "message over the limit (fragments)",
        frame(b"x" * 600, 2, fin=False) + frame(b"x" * 401, 0),
        1009,
    ),
    ("text over the limit in bytes, not characters", frame(("é" * 501).encode()), 1009),
]


@pytest.mark.parametrize(
    ("data", "code"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE]
)
async def test_a_protocol_error_gets_a_close_frame_with_its_code(
    data: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Each broken input after the handshake: a close frame with RFC 6455's code (stock dropped
    the connection: the client saw 1006), the app's disconnect carries it, the connection
    closes, and one INFO line says why."""
    caplog.set_level(logging.INFO, "trioweb.layer")
    app = Recorder()
    async with connection(app, Limits(max_message_size=1000, ping_interval=None)) as wire:
        client = Client(wire)
        await client.open()
        await wire.feed(data)
        assert close_of(client.events())[0] == code
        assert wire.hung_up
        await app.disconnected.wait()
        assert app.disconnect[0] == code
        assert app.received == []
    assert [r.levelname for r in caplog.records if r.name == "trioweb.layer"] == ["INFO"]


@pytest.mark.parametrize(
    "payload", ["", "a", "abcd", "é" * 40, "x" * 125, b"", b"\x00" * 125, b"\xff" * 3]
)
def test_the_direct_path_reads_and_writes_as_wsproto_does(payload: str | bytes) -> None:
    """A single small frame: the direct path's payload is wsproto's; a message out: the same
    bytes as wsproto's frame."""
    client = wsproto.frame_protocol.FrameProtocol(True, [])
    server = wsproto.frame_protocol.FrameProtocol(False, [])
    assert parse_small(bytes(client.send_data(payload))) == payload
    assert small_frame(payload) == bytes(server.send_data(payload))
    assert small_frame(payload * 600) == bytes(server.send_data(payload * 600))


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\x80\x00\x00",  # short
        frame(b"hi", fin=False),
        frame(b"hi", 0),
        frame(b"hi", 9),
        frame(b"hi", rsv=4),
        frame(b"hi", mask=False) + b"....",
        frame(b"x" * 126),
        frame(b"hi") + frame(b"hi"),
        frame(b"\xff\xfe"),
    ],
    ids=["short", "not final", "continuation", "ping", "RSV1", "unmasked", "long", "two", "UTF-8"],
)
def test_the_direct_path_leaves_everything_else_to_wsproto(data: bytes) -> None:
    """Only one whole, final, masked, small text or binary frame takes the direct path."""
    assert parse_small(data) is None


SPLIT_READS = [
    # (id, the reads, the messages the app gets, the close code or None)
    ("a header in two reads", [frame(b"1")[:1], frame(b"1")[1:] + frame(b"2")], ["1", "2"], None),
    ("a payload in two reads", [frame(b"x" * 200)[:50], frame(b"x" * 200)[50:]], ["x" * 200], None),
    ("a message in two frames", [frame(b"a", fin=False), frame(b"b", 0)], ["ab"], None),
    ("a new message inside a fragmented one", [frame(b"a", fin=False), frame(b"b")], [], 1002),
]


@pytest.mark.parametrize(
    ("reads", "messages", "code"),
    [row[1:] for row in SPLIT_READS],
    ids=[row[0] for row in SPLIT_READS],
)
async def test_reads_that_split_frames_go_to_wsproto(
    reads: list[bytes], messages: list[str], code: int | None
) -> None:
    """While wsproto holds part of a frame or of a message, the next read goes to it, even if
    it looks like a whole small frame."""
    app = Recorder()
    async with connection(app) as wire:
        client = Client(wire)
        await client.open()
        for data in reads:
            await wire.feed(data)
        events = client.events()
        assert app.received == messages
        assert [e.data for e in events if isinstance(e, ws.TextMessage)] == messages
        if code is not None:
            assert close_of(events)[0] == code


async def test_the_apps_sends_while_the_clients_close_is_answered_go_nowhere() -> None:
    """The app sends while the answer to the client's close frame is on its way: nothing goes
    out after the close frame; the app's bytes (not bytes) are sent as stock sends them."""
    app = Recorder(echo=False)
    async with connection(app) as wire:
        client = Client(wire)
        await client.open()
        assert app.send is not None
        await app.send({"type": "websocket.send", "bytes": bytearray(b"ab")})
        assert client.events() == [ws.BytesMessage(data=b"ab")]
        wire.gate = trio.Event()
        wire.nursery.start_soon(wire.feed, client.ws.send(ws.CloseConnection(code=1000)))
        await trio.testing.wait_all_tasks_blocked()
        await app.send({"type": "websocket.send", "text": "late"})
        wire.gate.set()
        await app.disconnected.wait()
        await app.send({"type": "websocket.send", "text": "later"})
        await trio.testing.wait_all_tasks_blocked()
        assert close_of(client.events()) == (1000, "")
        assert wire.take() == b""


async def test_a_declared_oversize_message_is_refused_before_its_payload() -> None:
    """A frame header declaring 256 MiB is answered with 1009 at once: none of its payload is
    awaited or held."""
    app = Recorder()
    async with connection(app, Limits(max_message_size=1024, ping_interval=None)) as wire:
        client = Client(wire)
        await client.open()
        await wire.feed(b"\x82\xff" + struct.pack("!Q", 256 * 2**20) + MASK)
        assert close_of(client.events()) == (1009, "message over 1024 bytes")
        assert wire.hung_up


async def test_a_message_at_the_limit_passes() -> None:
    """The limit is inclusive, and counted per message: many messages at the limit pass."""
    app = Recorder()
    async with connection(app, Limits(max_message_size=100, ping_interval=None)) as wire:
        client = Client(wire)
        await client.open()
        for _ in range(3):
            await wire.feed(frame(b"x" * 50, 2, fin=False) + frame(b"", 9) + frame(b"x" * 50, 0))
        assert app.received == [b"x" * 100] * 3
        assert not wire.hung_up


# Close codes both ways -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "app_sees"),
    [(1000, "", (1000, "")), (4001, "bye", (4001, "bye")), (None, None, (1005, ""))],
)
async def test_the_app_hears_the_clients_close_code_and_reason(
    code: int | None, reason: str | None, app_sees: tuple[int, str]
) -> None:
    """The client's close frame: echoed, and its code and reason are the app's disconnect
    (stock: always 1006); then the connection closes."""
    app = Recorder()
    async with connection(app) as wire:
        client = Client(wire)
        await client.open()
        events = await client.send(
            ws.CloseConnection(code=code or CloseReason.NO_STATUS_RCVD, reason=reason)
        )
        assert close_of(events)[0] == (code or 1005)  # echoed
        await app.disconnected.wait()
        assert app.disconnect == app_sees
        assert wire.hung_up


async def test_a_dropped_connection_is_1006() -> None:
    """A connection that ends without a close frame: the app's disconnect says 1006."""
    app = Recorder()
    async with connection(app) as wire:
        await Client(wire).open()
        await wire.protocol.handle(Closed())
        await app.disconnected.wait()
        assert app.disconnect == (1006, "")


async def test_the_apps_close_and_the_clients_reply() -> None:
    """The app closes; the client's reply ends the connection; the app's sends after its
    close and a close from both sides at once raise nothing."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        await send({"type": "websocket.close", "code": 4000})  # again: nothing happens
        seen.append(await receive())

    async with connection(app) as wire:
        client = Client(wire)
        events = await client.open()
        assert close_of(events) == (4000, "done")
        await client.send(ws.CloseConnection(code=4000, reason="done"))
        assert wire.hung_up
    assert seen == [{"type": "websocket.disconnect", "code": 4000, "reason": "done"}]


async def test_garbage_after_the_apps_close_ends_the_connection() -> None:
    """The app has closed; the client answers with garbage: the connection ends, with no
    second close frame."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        await receive()

    async with connection(app) as wire:
        client = Client(wire)
        assert close_of(await client.open())[0] == 1000
        await wire.feed(frame(b"", 3))
        assert wire.take() == b""
        assert wire.hung_up


async def test_closes_that_cross_raise_nothing() -> None:
    """The client's close and the app's close cross: the app's close goes nowhere, no error."""
    app = Recorder(echo=False)
    async with connection(app) as wire:
        client = Client(wire)
        await client.open()
        await wire.protocol.handle(RawData(client.ws.send(ws.CloseConnection(code=1000))))
        assert app.send is not None
        await app.send({"type": "websocket.close", "code": 1000})
        await app.send({"type": "websocket.send", "text": "late"})
        await app.disconnected.wait()
        assert close_of(client.events()) == (1000, "")


# Compression ---------------------------------------------------------------------------------


async def test_a_deflate_bomb_costs_no_more_than_the_limit() -> None:
    """64 MiB of zeros deflated to about 64 KiB: closed with 1009 after inflating at most the
    limit (stock inflated all of it)."""
    import tracemalloc

    app = Recorder()
    limit = 256 * 1024
    async with connection(app, Limits(max_message_size=limit, ping_interval=None)) as wire:
        client = Client(wire, [PerMessageDeflate()])
        events = await client.open()
        assert isinstance(events[0], ws.AcceptConnection)
        assert events[0].extensions
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(bytes(64 * 2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
        assert len(bomb) < limit
        data = frame(bomb, 2, rsv=4)
        tracemalloc.start()
        try:
            await wire.feed(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * limit
        assert close_of(client.events()) == (1009, f"message over {limit} bytes")
        await app.disconnected.wait()
        assert app.disconnect == (1009, f"message over {limit} bytes")


async def test_compressed_messages_within_the_limit_pass() -> None:
    """permessage-deflate still works: messages in several frames, context kept between them,
    and no context when the client asks for none."""
    for offer in (PerMessageDeflate(), PerMessageDeflate(client_no_context_takeover=True)):
        app = Recorder()
        async with connection(app, Limits(max_message_size=1000, ping_interval=None)) as wire:
            client = Client(wire, [offer])
            await client.open()
            for text in ("a" * 1000, "b" * 10):
                events = await client.send(ws.TextMessage(text[:5], message_finished=False))
                events += await client.send(ws.TextMessage(text[5:]))
                assert "".join(e.data for e in events) == text
            await wire.feed(frame(b"plain" * 40))  # a message may go uncompressed
            assert app.received == ["a" * 1000, "b" * 10, "plain" * 40]


async def test_bad_deflate_data_is_1007() -> None:
    """A compressed frame that does not inflate: 1007."""
    app = Recorder()
    async with connection(app) as wire:
        client = Client(wire, [PerMessageDeflate()])
        await client.open()
        await wire.feed(frame(b"\xff\xff\xff\xff", 2, rsv=4))
        assert close_of(client.events())[0] == 1007


async def test_compression_can_be_turned_off() -> None:
    """With ``compression=False`` the layer does not accept permessage-deflate."""
    async with connection(Recorder(), Limits(compression=False, ping_interval=None)) as wire:
        client = Client(wire, [PerMessageDeflate()])
        events = await client.open()
        assert isinstance(events[0], ws.AcceptConnection)
        assert events[0].extensions == []
        assert (await client.send(ws.TextMessage("plain")))[0].data == "plain"


# Dead peers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("receiving", [True, False])
async def test_a_silent_peer_is_pinged_then_dropped(
    autojump_clock: trio.testing.MockClock, receiving: bool
) -> None:
    """Nothing received for ``ping_interval``: a ping; nothing for ``ping_timeout`` more: the
    connection ends and the app gets 1006, whether or not the handler is receiving. (Times in
    tenths: a test has 5 s of the virtual clock.)"""
    app = Recorder()
    go = trio.Event()

    async def busy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait()  # not receiving until the connection has ended
        app.messages.append(await receive())
        app.disconnected.set()

    limits = Limits(ping_interval=2, ping_timeout=0.5)
    async with connection(app if receiving else busy, limits) as wire:
        client = Client(wire)
        await client.open()
        await trio.sleep(1.9)
        assert client.events() == []
        await trio.sleep(0.15)
        assert client.events() == [ws.Ping(payload=b"trioweb")]
        await trio.sleep(0.4)
        assert not wire.hung_up
        await trio.sleep(0.1)
        assert wire.hung_up
        go.set()
        await app.disconnected.wait()
        assert app.disconnect == (1006, "no pong in time")


async def test_a_live_peer_is_kept(autojump_clock: trio.testing.MockClock) -> None:
    """A pong (or any other frame) in time keeps the connection; a busy peer is not pinged."""
    app = Recorder()
    async with connection(app, Limits(ping_interval=0.5, ping_timeout=0.2)) as wire:
        client = Client(wire)
        await client.open()
        for _ in range(3):  # at 0.4, 0.8, 1.2: never quiet for the interval
            await trio.sleep(0.4)
            assert client.events() == []
            await client.send(ws.TextMessage("busy"))
        # Quiet from 1.2: a ping within the interval and two looks (0.5 + 2 x 0.05), which the
        # peer answers before the timeout (0.2) runs out.
        await trio.sleep(0.65)
        events = [e for e in client.events() if not isinstance(e, ws.TextMessage)]
        assert events == [ws.Ping(payload=b"trioweb")]
        await client.send(events[0].response())
        await trio.sleep(0.3)  # past the ping's deadline
        assert not wire.hung_up
        await client.send(ws.CloseConnection(code=1000))
        await app.disconnected.wait()


async def test_pings_can_be_turned_off(autojump_clock: trio.testing.MockClock) -> None:
    """``ping_interval=None``: no pings; ``ping_timeout=None``: pings without a deadline."""
    async with connection(Recorder(), Limits(ping_interval=None)) as wire:
        client = Client(wire)
        await client.open()
        await trio.sleep(4)
        assert client.events() == []
    async with connection(Recorder(), Limits(ping_interval=0.3, ping_timeout=None)) as wire:
        client = Client(wire)
        await client.open()
        await trio.sleep(0.95)
        assert client.events() == [ws.Ping(payload=b"trioweb")] * 3
        assert not wire.hung_up


# Going away ---------------------------------------------------------------------------------


async def test_going_away_closes_with_1001_and_tells_the_app() -> None:
    """Shutdown: a close frame 1001 "going away", the app's disconnect 1001, the app's later
    sends go nowhere, and the client's reply ends the connection."""
    app = Recorder(echo=False)
    async with connection(app) as wire:
        client = Client(wire)
        await client.open()
        await wire.protocol.going_away()
        assert close_of(client.events()) == (1001, "going away")
        await app.disconnected.wait()
        assert app.disconnect == (1001, "going away")
        assert app.send is not None
        await app.send({"type": "websocket.send", "text": "after"})
        await wire.protocol.going_away()  # again: nothing
        assert client.events() == []
        await client.send(ws.CloseConnection(code=1001))
        assert wire.hung_up


async def test_going_away_stops_the_pings(autojump_clock: trio.testing.MockClock) -> None:
    """After going away, a client that does not answer the close is not pinged (nor dropped
    as dead: the server's shutdown deadline ends it)."""
    async with connection(Recorder(), Limits(ping_interval=1, ping_timeout=1)) as wire:
        client = Client(wire)
        await client.open()
        await wire.protocol.going_away()
        assert close_of(client.events()) == (1001, "going away")
        await trio.sleep(4)
        assert client.events() == []
        assert not wire.hung_up


async def test_going_away_during_the_handshake_is_503() -> None:
    """A handshake the app has not answered: HTTP 503, and the app's disconnect 1001."""
    app = Recorder(accept=False)
    async with connection(app) as wire:
        await wire.feed(HANDSHAKE)
        await wire.protocol.going_away()
        assert wire.take().startswith(b"HTTP/1.1 503 ")
        assert wire.hung_up
        app.accept.set()
        await app.disconnected.wait()
        assert app.disconnect == (1001, "going away")
        assert wire.take() == b""


async def test_going_away_leaves_http_alone() -> None:
    """An HTTP/1.1 request in flight, or an idle connection: nothing happens."""
    async with connection(Recorder()) as wire:
        await wire.protocol.going_away()
        assert wire.take() == b""
        await wire.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await wire.protocol.going_away()
        assert wire.take().startswith(b"HTTP/1.1 200 ")
        assert not wire.hung_up


async def test_a_response_leaves_in_one_write() -> None:
    """The head, the body and the end of a response with a Content-Length go to the socket in
    one write (stock: three system calls), and the connection stays open for the next one."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async with connection(app) as wire:
        for _ in range(2):
            await wire.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert wire.writes == 1
            data = wire.take()
            assert data.startswith(b"HTTP/1.1 200 ")
            assert data.endswith(b"\r\n\r\nok")
            wire.writes = 0
        assert not wire.hung_up


async def test_a_head_whose_body_never_comes_still_goes_out() -> None:
    """An app that fails after its response's start: the client gets the head (as from stock),
    then the connection closes (the response cannot end)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the body never comes")

    async with connection(app) as wire:
        await wire.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert wire.take().startswith(b"HTTP/1.1 200 ")
        assert wire.hung_up


# HTTP/2 ---------------------------------------------------------------------------------------


class H2Client:
    """An h2 client on the other end of a :class:`Wire`."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()

    async def flush(self) -> list[h2.events.Event]:
        await self.wire.feed(self.h2.data_to_send())
        events = self.h2.receive_data(self.wire.take())
        await self.wire.feed(self.h2.data_to_send())  # acknowledgements
        return list(events)

    async def websocket(self, stream_id: int) -> None:
        self.h2.send_headers(
            stream_id,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", "/ws"),
                (":authority", "example.com"),
                ("sec-websocket-version", "13"),
            ],
        )

    def data(self, events: list[h2.events.Event], stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )


async def test_websockets_over_http2_are_the_layers() -> None:
    """RFC 8441: a websocket on an HTTP/2 stream gets the layer's stream (its limits and close
    codes); data the client sends after that stream's end is dropped (stock: KeyError, the
    connection ended); HTTP requests beside it are served; going away closes each websocket
    with 1001."""
    apps = [Recorder(), Recorder(), Recorder()]
    calls = iter([*apps, Recorder()])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await next(calls)(scope, receive, send)

    limits = Limits(max_message_size=100, ping_interval=None)
    async with connection(app, limits, alpn="h2") as wire:
        client = H2Client(wire)
        client.h2.prioritize(7, weight=32)  # a PRIORITY frame before its stream's HEADERS
        for stream_id in (1, 3, 5):
            await client.websocket(stream_id)
        client.h2.send_headers(
            7,
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")],
            end_stream=True,
        )
        events = await client.flush()
        responses = {
            e.stream_id: dict(e.headers)
            for e in events
            if isinstance(e, h2.events.ResponseReceived)
        }
        assert {responses[n][b":status"] for n in (1, 3, 5)} == {b"200"}
        assert client.data(events, 7) == b"ok"
        client.h2.send_data(1, frame(b"hello"))
        client.h2.send_data(3, frame(b"x" * 101, 2))
        client.h2.send_data(3, frame(b"more"))  # after the close: dropped
        events = await client.flush()
        assert client.data(events, 1) == b"\x81\x05hello"
        assert client.data(events, 3)[:4] == b"\x88\x18\x03\xf1"  # 1009, "message over 100 bytes"
        await apps[1].disconnected.wait()
        assert apps[1].disconnect[0] == 1009
        assert apps[1].received == []
        await wire.protocol.going_away()
        events = await client.flush()
        for n in (1, 5):
            assert client.data(events, n)[:4] == b"\x88\x0c\x03\xe9"  # 1001, "going away"
        for n in (0, 2):
            await apps[n].disconnected.wait()
            assert apps[n].disconnect == (1001, "going away")
        client.h2.end_stream(1)
        await client.flush()
        assert not wire.hung_up


async def test_an_http2_response_on_a_connection_that_hung_up_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the connection has hung up, a stream's response goes nowhere without an error, as
    in stock (the reader ends the connection; every stream's app gets its disconnect)."""
    sent = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        wire.broken = True
        await send({"type": "http.response.start", "status": 200, "headers": []})
        sent.set()

    async with connection(app, alpn="h2") as wire:
        client = H2Client(wire)
        client.h2.send_headers(
            1,
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")],
            end_stream=True,
        )
        await wire.feed(client.h2.data_to_send())
        await sent.wait()
    assert caplog.records == []


async def test_http2_by_prior_knowledge_and_by_upgrade() -> None:
    """A client may start HTTP/2 over a plain connection with its preface, or upgrade to it
    (h2c); either way the layer's HTTP/2 serves it."""
    async with connection(Recorder()) as wire:
        client = H2Client(wire)
        client.h2.send_headers(
            1,
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")],
            end_stream=True,
        )
        assert client.data(await client.flush(), 1) == b"ok"
    async with connection(Recorder()) as wire:
        client = H2Client(wire)
        settings = client.h2.initiate_upgrade_connection()
        client.h2.data_to_send()
        await wire.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
        )
        head, _, rest = wire.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        events = client.h2.receive_data(rest)
        await wire.feed(client.h2.data_to_send())
        events += client.h2.receive_data(wire.take())
        assert client.data(events, 1) == b"ok"


# End to end: served by Hypercorn's trio worker with the layer's protocol ------------------------


@asynccontextmanager
async def served_by_layer(app: TrioWeb, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    """Serve ``app`` with Hypercorn's stock trio worker and the layer's protocol in it (until
    the layer's server side serves it by default); yields the port."""
    import hypercorn.trio.tcp_server

    def wrapper(app: Any, *args: Any, **kwargs: Any) -> ProtocolWrapper:
        return ProtocolWrapper(app, *args, limits=Limits.of(app), **kwargs)

    monkeypatch.setattr(hypercorn.trio.tcp_server, "ProtocolWrapper", wrapper)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(trioweb.serve, app, host="127.0.0.1", port=0))
        yield int(url.rpartition(":")[2])
        # Stock's TCPServer leaks the socket of a connection cancelled before its end: let
        # every connection end first.
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


def echo_app(seen: list[tuple[int | None, str | None]], ended: list[trio.Event]) -> TrioWeb:
    """An echo app (messages of 100 bytes at most) that records, as its handler ends, the close
    code and reason it saw, and sets the next of ``ended``."""
    app = TrioWeb(__name__)
    app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] = 100

    @app.websocket("/ws")
    async def echo() -> None:
        try:
            async for message in websocket:
                await websocket.send(message)
        finally:
            seen.append((websocket.close_code, websocket.close_reason))
            ended[len(seen) - 1].set()

    return app


async def test_a_pipelined_first_frame_over_a_real_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handshake and first frame in one write (pgjones/hypercorn#225, which ended the
    process): the frame is echoed, and the next client is served."""
    seen: list[tuple[int | None, str | None]] = []
    ended = [trio.Event(), trio.Event()]
    async with served_by_layer(echo_app(seen, ended), monkeypatch) as port:
        for index in range(2):
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(HANDSHAKE + frame(b"first"))
                received = b""
                while not received.endswith(b"\x81\x05first"):
                    chunk = await stream.receive_some()
                    assert chunk, received
                    received += chunk
                assert received.startswith(b"HTTP/1.1 101 ")
            await ended[index].wait()
    assert seen == [(1006, "")] * 2  # gone without a close frame


async def via_test_client(app: TrioWeb, script: str) -> tuple[int, str]:
    async with app.test_client() as client, client.websocket("/ws") as ws:
        if script == "close":
            await ws.close(4001, "bye")
            return 4001, "bye"
        await ws.send("x" * 100)
        assert await ws.receive() == "x" * 100
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.send("é" * 51)
        return closed.value.code, closed.value.reason


async def via_layer(app: TrioWeb, script: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    # Our own stream, closed by us: trio-websocket leaves it open when the server closes.
    async with (
        served_by_layer(app, monkeypatch) as port,
        await trio.open_tcp_stream("127.0.0.1", port) as stream,
        trio.open_nursery() as nursery,
    ):
        ws = await wrap_client_stream(nursery, stream, "127.0.0.1", "/ws")
        if script == "close":
            await ws.aclose(4001, "bye")
            assert ws.closed is not None
            return ws.closed.code, ws.closed.reason or ""
        await ws.send_message("x" * 100)
        assert await ws.get_message() == "x" * 100
        await ws.send_message("é" * 51)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        return closed.value.reason.code, closed.value.reason.reason or ""


@pytest.mark.parametrize("transport", ["test client", "layer"])
@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [("close", 4001, "bye"), ("too big", 1009, "message over 100 bytes")],
)
async def test_the_test_client_and_the_layer_agree_on_close_codes(
    transport: str, script: str, code: int, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's close code and reason, and 1009 for a message over the limit in bytes:
    the handler and the client see the same through the test client and through the layer."""
    seen: list[tuple[int | None, str | None]] = []
    ended = [trio.Event()]
    app = echo_app(seen, ended)
    if transport == "layer":
        client_saw = await via_layer(app, script, monkeypatch)
    else:
        client_saw = await via_test_client(app, script)
    await ended[0].wait()
    assert client_saw == (code, reason)
    assert seen == [(code, reason)]


async def test_the_limits_example(caplog: pytest.LogCaptureFixture) -> None:
    """docs/examples/ws_limits.py: a 64 KiB chunk passes, one byte more closes with 1009, and the
    handler logs the code it saw."""
    example = load_example("ws_limits")
    caplog.set_level(logging.INFO, example.__name__)
    async with example.app.test_client() as client, client.websocket("/upload") as ws:
        await ws.send(b"x" * 64 * 1024)
        assert await ws.receive() == str(64 * 1024)
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.send(b"x" * (64 * 1024 + 1))
    assert closed.value.code == 1009
    assert caplog.messages == ["upload ended: 1009 message over 65536 bytes"]


async def test_a_keep_alive_verdict_after_the_stream_ended_does_nothing() -> None:
    """A ping or a dead-peer verdict the keep-alive reached just before the stream went away (a
    task that runs after it) sends nothing and ends nothing."""
    app = Recorder(echo=False)
    async with connection(app, Limits(ping_interval=5, ping_timeout=1)) as wire:
        client = Client(wire)
        await client.open()
        stream = wire.protocol.protocol.stream
        await wire.protocol.going_away()
        assert close_of(client.events()) == (1001, "going away")
        stream._ka_ping()
        stream._ka_dead()
        await trio.testing.wait_all_tasks_blocked()
        assert client.events() == []
        await app.disconnected.wait()
        assert app.disconnect == (1001, "going away")
