"""The contract between the hub and its backends, and the choice of a backend by URL.

The hub (:mod:`._hub`) owns the local side: topics, subscriptions, their buffers. A backend
moves messages and presence entries between processes (or, in memory, hands them straight back)
and calls the hub's :class:`Sink` with what arrives. Rules a backend keeps:

* ``run`` connects, raising :class:`~trioweb.broadcast.BroadcastUnavailable` (naming the URL)
  before ``task_status.started()`` if it cannot; then it runs until cancelled and never raises
  anything else: readers, reconnects, heartbeats, queued leaves and unlistens live in it. On
  cancellation it may flush queued leaves in a shielded scope bounded to a second or so.
* ``publish`` never raises because the server is away: the message is counted in ``lost`` and
  logged (once per outage). Every async method is a checkpoint.
* ``unlisten`` and ``leave`` are synchronous (they run in ``__aexit__``, also when cancelled): a
  network backend queues them for ``run``.
* ``Sink.deliver`` is called with messages in the order the backend receives them; it is
  synchronous and never blocks.

A backend class is found by the URL's scheme (:data:`SCHEMES`; its module is imported only then,
so an optional dependency is needed only by whoever uses it) and made with
``cls(url, presence_ttl=..., prefix=...)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ._events import Join, Leave

if TYPE_CHECKING:
    from trio import TaskStatus

#: A message as published and received: text stays text, bytes stay bytes.
Message = str | bytes

#: URL schemes and the module (of this package) and class that serve them.
SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("_memory", "MemoryBackend"),
    "redis": ("_redis", "RedisBackend"),
    "rediss": ("_redis", "RedisBackend"),
    "unix": ("_redis", "RedisBackend"),
}


class Sink(Protocol):
    """What a backend delivers into: implemented by the hub."""

    def deliver(self, topic: str, item: Message | Join | Leave) -> None:
        """Put ``item`` into the buffers of ``topic``'s local subscriptions. Never blocks."""

    def interrupted(self, reason: str) -> None:
        """The backend lost its server: tell the subscriptions."""

    def resumed(self, lost: int) -> None:
        """The backend is back; ``lost`` messages were published while it was away."""


class Backend(Protocol):
    """A broadcast backend (see the module's docstring for its rules)."""

    #: The URL, any password removed (for messages and :meth:`Broadcast.stats`).
    url: str
    #: Messages published while the server was away.
    lost: int
    #: How many times the server was lost.
    interruptions: int
    #: Whether the server is reachable now.
    connected: bool

    async def run(self, sink: Sink, *, task_status: TaskStatus[None]) -> None:
        """Connect, report started, then serve ``sink`` until cancelled."""

    async def publish(self, topic: str, message: Message) -> None:
        """Send ``message`` to every subscriber of ``topic``, in every process."""

    async def listen(self, topic: str) -> None:
        """Start receiving ``topic`` (its first local subscriber); returns once messages
        published from now on will arrive."""

    def unlisten(self, topic: str) -> None:
        """Stop receiving ``topic`` (its last local subscriber left)."""

    async def join(self, topic: str, ref: str, key: str, meta: dict[str, Any]) -> None:
        """Add the presence entry ``ref`` (``key`` with ``meta``) and announce a Join."""

    def leave(self, topic: str, ref: str) -> None:
        """Remove the presence entry ``ref`` and announce a Leave."""

    async def presence(self, topic: str) -> dict[str, list[dict[str, Any]]]:
        """Who is present on ``topic``: key -> one meta per entry."""


def redact(url: str) -> str:
    """``url`` without its password (for logs and stats)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def backend_for(url: str, *, presence_ttl: float, prefix: str) -> Backend:
    """A new backend for ``url``, chosen by its scheme.

    Raises ``ValueError`` for a scheme no backend serves (naming the supported ones), and
    ``RuntimeError`` when the backend's module is not available (Redis needs the extra
    ``trioweb[redis]``).
    """
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        supported = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(
            f"no broadcast backend for {redact(url)!r}: the URL must start with one of {supported}"
        )
    module_name, class_name = SCHEMES[scheme]
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ImportError as error:
        raise RuntimeError(
            f"the {scheme}:// broadcast backend is not available ({error}); install it with"
            " `pip install 'trioweb[redis]'`"
        ) from error
    backend: Backend = getattr(module, class_name)(url, presence_ttl=presence_ttl, prefix=prefix)
    return backend
