"""What the Redis/Valkey backend (:mod:`._redis`) puts on the server, and how it shows its URL.

- Names, all under a prefix (several apps can share one server): the channel of a topic
  ``{prefix}:t:{topic}``, its presence hash ``{prefix}:p:{topic}``, a worker's heartbeat key
  ``{prefix}:w:{worker}``.
- A published payload's first byte says what follows: ``t`` + UTF-8 text, ``b`` + raw bytes,
  ``j`` + a JSON ``Join`` ``{"key", "meta"}``, ``l`` + a JSON ``Leave``. Anything else on a
  topic's channel was not published by trioweb and is ignored.
- A presence entry (a field of the hash, named by the track's ``ref``) is the JSON
  ``{"key", "meta", "worker"}``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, final

import attrs

from trioweb._json import dumps, loads

from ._events import Join, Leave

if TYPE_CHECKING:
    from ._backend import Message


@final
@attrs.frozen
class Names:
    """The server's names for one prefix."""

    prefix: str

    def channel(self, topic: str) -> bytes:
        return f"{self.prefix}:t:{topic}".encode()

    def topic(self, channel: bytes) -> str:
        """The topic of a channel named by :meth:`channel`."""
        return channel[len(self.prefix) + 3 :].decode()

    def hash(self, topic: str) -> bytes:
        return f"{self.prefix}:p:{topic}".encode()

    def heartbeat(self, worker: str) -> bytes:
        return f"{self.prefix}:w:{worker}".encode()


def encode(message: Message) -> bytes:
    """The payload that publishes ``message`` (str or bytes)."""
    return b"t" + message.encode() if isinstance(message, str) else b"b" + message


def encode_presence(kind: type[Join | Leave], key: str, meta: dict[str, Any]) -> bytes:
    """The payload that announces a ``Join`` or ``Leave`` of ``key`` with ``meta``."""
    return (b"j" if kind is Join else b"l") + dumps({"key": key, "meta": meta}).encode()


def decode(topic: str, data: bytes) -> Message | Join | Leave | None:
    """What ``data`` on ``topic``'s channel is, or None if trioweb did not publish it."""
    kind, body = data[:1], data[1:]
    try:
        if kind == b"t":
            return body.decode()
        if kind == b"b":
            return body
        if kind in (b"j", b"l"):
            entry = loads(body)
            return (Join if kind == b"j" else Leave)(topic, entry["key"], entry["meta"])
    except (ValueError, KeyError, TypeError):
        pass
    return None


def entry(key: str, meta: dict[str, Any], worker: str) -> str:
    """A presence entry's value."""
    return dumps({"key": key, "meta": meta, "worker": worker})


def by_key(entries: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """(key, meta) pairs as presence() answers: key -> metas, in the order given."""
    present: dict[str, list[dict[str, Any]]] = {}
    for key, meta in entries:
        present.setdefault(key, []).append(meta)
    return present


def mask_password(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` query) shown as ``***``."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{name}={'***' if name == 'password' else value}"
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def reason(exc: BaseException) -> str:
    """The innermost error of ``exc`` (nurseries wrap even one), with its cause, as text."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None:
        text += f" ({exc.__cause__ or type(exc.__cause__).__name__})"
    return text
