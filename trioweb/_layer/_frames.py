"""Bounds on what a websocket peer can make the server hold: wsproto extensions.

wsproto parses a data frame as its bytes arrive and hands them on, so the server holds a
message, not the socket's backlog; what was missing is a bound on the message (issue 8):
Hypercorn 0.18 checks ``websocket_max_message_size`` only after it has appended a piece, keeps
appending after it has answered 1009 (+256 MiB for a 256 MiB message), and counts characters,
not bytes; wsproto inflates permessage-deflate without a bound (a 191 KiB bomb became +392 MiB
and stalled the event loop for 0.5 s). Two extensions close that:

* :class:`MessageLimit`, always on and never negotiated (it claims no RSV bit), sees every
  frame header before its payload is read, and fails the connection with 1009 as soon as the
  bytes a message declares pass the limit: the rest of it is never buffered.
* :class:`BoundedDeflate` is wsproto's permessage-deflate that inflates at most the limit's
  worth per message (zlib's ``max_length``), and fails with 1009 past it: a deflate bomb costs
  no more memory or time than an honest message of the limit's size.

Both raise wsproto's ``ParseFailed`` with the close code, which wsproto turns into a
``CloseConnection`` event; the stream (:mod:`._ws`) answers it with the close frame.

And a direct path for the common case, which the stream takes only when wsproto is between
messages and has no bytes pending: a read that is exactly one small (under 126 bytes), final,
masked text or binary frame with no RSV bit (:func:`parse_small`), and an uncompressed message
out (:func:`frame`). wsproto parses such a frame in about 9.5 µs; this takes about 1 µs.
Anything else, including text that is not UTF-8, goes to wsproto, which gives the same answer it
always gives.
"""

from __future__ import annotations

import struct
import zlib

from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import (
    CloseReason,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
)

_NO_BITS = RsvBits(False, False, False)


def _too_big(limit: int) -> ParseFailed:
    return ParseFailed(f"message over {limit} bytes", CloseReason.MESSAGE_TOO_BIG)


class MessageLimit(Extension):
    """Fails a message whose frames declare more than ``limit`` payload bytes in all (on the
    wire: compressed bytes for a compressed message, which :class:`BoundedDeflate` bounds once
    inflated)."""

    name = "trioweb-message-limit"  # never offered or accepted: the stream adds it itself

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._done = 0  # payload bytes of the message's finished frames
        self._frame = 0  # the current frame's declared length
        self._control = False

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False  # pragma: no cover - a server never offers

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> RsvBits:
        # wsproto may parse the same header twice (when the masking key is still to come), so
        # this only records; a frame is added to the message once it is complete.
        self._control = opcode.iscontrol()
        if not self._control:
            if opcode is not Opcode.CONTINUATION:
                self._done = 0
            if self._done + payload_length > self.limit:
                raise _too_big(self.limit)
            self._frame = payload_length
        return _NO_BITS

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol, fin: bool) -> None:
        if not self._control:
            self._done = 0 if fin else self._done + self._frame


class BoundedDeflate(PerMessageDeflate):
    """permessage-deflate (RFC 7692) inflating at most ``limit`` bytes per message."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._inflated = 0

    def _inflate(self, data: bytes) -> bytes:
        assert self._decompressor is not None
        budget = self.limit - self._inflated
        try:
            out = self._decompressor.decompress(data, budget + 1)
        except zlib.error as error:
            raise ParseFailed(
                f"bad deflate data: {error}", CloseReason.INVALID_FRAME_PAYLOAD_DATA
            ) from None
        if len(out) > budget:
            raise _too_big(self.limit)
        self._inflated += len(out)
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (fin and self._inbound_is_compressible and self._inbound_compressed):
            return super().frame_inbound_complete(proto, fin)
        # As wsproto's, with the message's tail inflated within the bound.
        data = self._inflate(b"\x00\x00\xff\xff")
        self._inflated = 0
        if self.client_no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return data


def parse_small(data: bytes) -> bytes | str | None:
    """The payload of ``data`` if it is exactly one final, masked text or binary frame of under
    126 bytes with no RSV bit (text decoded), else ``None``: wsproto's case."""
    if len(data) < 6:
        return None
    first, second = data[0], data[1]
    if (first != 0x81 and first != 0x82) or second < 0x80 or len(data) != (second & 0x7F) + 6:
        return None  # (a length of 126 or 127 announces more bytes, so it fails the last test)
    length = second & 0x7F
    payload = (
        int.from_bytes(data[6:], "little")
        ^ int.from_bytes((data[2:6] * ((length >> 2) + 1))[:length], "little")
    ).to_bytes(length, "little")
    if first == 0x82:
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return None


def frame(payload: bytes | str) -> bytes:
    """A server's frame (unmasked, final, no extension) carrying ``payload``, a whole text (str)
    or binary message."""
    if isinstance(payload, str):
        first = 0x81
        payload = payload.encode()
    else:
        first = 0x82
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 2**16:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload
