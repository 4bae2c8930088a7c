"""Websockets end to end, on real Hypercorn (trio worker) on 127.0.0.1 port 0: a handler that
only sends cannot freeze the worker once its client has gone, absolute-form targets route, and
the ending runs when the server cancels a connection at shutdown; what receive_json cannot
read closes with 1007 (issue 10)."""

from __future__ import annotations

import logging
import socket
import struct
from typing import Any

import pytest
import trio
from _e2e import served
from hypercorn.config import Config as HypercornConfig

from trioweb import TrioWeb, websocket

#: Each test runs against stock Hypercorn and trioweb's layer (tests/_servers.py).
pytestmark = pytest.mark.usefixtures("server")

HANDSHAKE = (
    "GET {target} HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)
#: A masked close frame with code 1000 (the mask is zero, so the payload reads as is).
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"


async def _handshake(port: int, target: str) -> tuple[trio.SocketStream, bytes]:
    """Open a websocket by hand; returns the stream and what followed the 101 response."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(HANDSHAKE.format(target=target, port=port).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return stream, rest


async def _text_frame(stream: trio.SocketStream, buffered: bytes) -> str:
    """Read one small unmasked text frame from the server."""
    while len(buffered) < 2 or len(buffered) < 2 + buffered[1]:
        buffered += await stream.receive_some()
    assert buffered[0] == 0x81, buffered[:2]
    assert buffered[1] < 126, buffered[:2]
    return buffered[2 : 2 + buffered[1]].decode()


def _port(url: Any) -> int:
    return int(str(url).rsplit(":", 1)[1].rstrip("/"))


def ticker_app() -> tuple[TrioWeb, trio.Event]:
    app = TrioWeb(__name__)
    ended = trio.Event()

    @app.route("/")
    async def index() -> str:
        return "still serving"

    @app.websocket("/ticker")
    async def ticker() -> None:
        await websocket.accept()
        # Bounded (trio.current_time() needs no yield), so that a regression fails the test
        # instead of freezing it for good.
        give_up = trio.current_time() + 10
        try:
            while trio.current_time() < give_up:
                await websocket.send("tick")
        except trio.Cancelled:  # the disconnect, as it should be
            ended.set()
            raise

    return app, ended


@pytest.mark.parametrize("ending", ["close frame", "FIN", "reset"])
async def test_a_handler_that_only_sends_cannot_freeze_the_worker(ending: str) -> None:
    """Once the client has gone (however), Hypercorn's send returns without yielding; the
    handler still sees the disconnect and ends, and the worker goes on serving others."""
    app, ended = ticker_app()
    app.config["DISCONNECT_LISTENER_DELAY"] = 0.05
    async with served(app) as client:
        stream, rest = await _handshake(_port(client.base_url), "/ticker")
        assert await _text_frame(stream, rest) == "tick"
        if ending == "close frame":
            await stream.send_all(CLOSE_FRAME)
            await stream.aclose()
        elif ending == "FIN":
            await stream.aclose()
        else:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()
        with trio.fail_after(3):
            await ended.wait()
            assert (await client.get("/")).text == "still serving"


async def test_an_absolute_form_handshake_is_routed_on_its_path() -> None:
    """A handshake to ``ws://host/path`` (absolute form) reaches the handler of ``/path``, and
    ``websocket.path`` is ``/path``."""
    app = TrioWeb(__name__)

    @app.websocket("/where")
    async def where() -> None:
        await websocket.accept()
        await websocket.send(websocket.path)

    async with served(app) as client:
        port = _port(client.base_url)
        stream, rest = await _handshake(port, f"ws://127.0.0.1:{port}/where")
        async with stream:
            assert await _text_frame(stream, rest) == "/where"


async def test_the_ending_runs_when_shutdown_cancels_a_connection() -> None:
    """A handler still running when the shutdown's grace period ends is cancelled by the
    server; its after_websocket and teardown_websocket hooks still run to their end."""
    app = TrioWeb(__name__)
    started = trio.Event()
    seen: list[str] = []

    @app.websocket("/forever")
    async def forever() -> None:
        await websocket.accept()
        started.set()
        await trio.sleep_forever()

    @app.after_websocket
    async def after(response: Any) -> Any:
        await trio.lowlevel.checkpoint()  # would raise Cancelled unless shielded
        seen.append("after")
        return response

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        await trio.lowlevel.checkpoint()  # would raise Cancelled unless shielded
        seen.append(f"teardown {error}")

    config = HypercornConfig()
    config.graceful_timeout = 0.2
    with trio.fail_after(5):
        async with served(app, config=config) as client:
            stream, _ = await _handshake(_port(client.base_url), "/forever")
            await started.wait()
        await stream.aclose()
    assert seen == ["after", "teardown None"]


def _client_frame(payload: str | bytes) -> bytes:
    """A masked client frame (mask zero) carrying ``payload``: text for ``str``, else binary."""
    data = payload.encode() if isinstance(payload, str) else payload
    head = bytes([0x81 if isinstance(payload, str) else 0x82])
    if len(data) < 126:
        head += bytes([0x80 | len(data)])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(data))
    return head + b"\x00\x00\x00\x00" + data


async def _next_frame(stream: trio.SocketStream, buffered: bytes) -> tuple[int, bytes, bytes]:
    """The next small unmasked frame from the server: opcode, payload, what is left over."""
    while len(buffered) < 2 or len(buffered) < 2 + buffered[1]:
        chunk = await stream.receive_some()
        assert chunk, f"the server closed the connection; got {buffered!r}"
        buffered += chunk
    assert buffered[1] < 126, buffered[:2]
    end = 2 + buffered[1]
    return buffered[0] & 0x0F, buffered[2:end], buffered[end:]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[" * 2000, "Cannot read the message as JSON: arrays and objects nested deeper than 128"),
        ("1" * 5000, "Cannot read the message as JSON: a number of more than 4300 digits"),
        ("{'a': 1}", "Cannot read the message as JSON: not valid JSON: Expecting property name"),
        (b"\xff", "Cannot read the message as JSON: not valid UTF-8 (byte 0)"),
    ],
)
async def test_a_message_receive_json_cannot_read_closes_with_1007(
    caplog: pytest.LogCaptureFixture, message: str | bytes, reason: str
) -> None:
    """On a real server, whatever receive_json cannot read closes the websocket with 1007 and
    the reason, with no ERROR logged; a refused send (a lone surrogate) leaves it usable."""
    app = TrioWeb(__name__)

    @app.websocket("/json")
    async def reader() -> None:
        await websocket.accept()
        try:
            await websocket.send_json({"text": "\ud800"})
        except ValueError:
            await websocket.send("refused, still here")
        await websocket.receive_json()

    async with served(app) as client:
        stream, rest = await _handshake(_port(client.base_url), "/json")
        async with stream:
            with trio.fail_after(3):
                assert await _text_frame(stream, rest) == "refused, still here"
                await stream.send_all(_client_frame(message))
                opcode, payload, _ = await _next_frame(stream, rest[2 + rest[1] :] if rest else b"")
                await stream.send_all(CLOSE_FRAME)
        assert (await client.get("/nothing")).status_code == 404
    assert opcode == 0x8
    assert struct.unpack("!H", payload[:2])[0] == 1007
    assert payload[2:].decode().startswith(reason)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
