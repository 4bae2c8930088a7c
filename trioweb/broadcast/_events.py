"""The values and exceptions of :mod:`trioweb.broadcast`.

What a subscription can yield besides messages (:class:`Join`, :class:`Leave` for presence,
:class:`Interrupted`, :class:`Resumed` for the backend's outages; only with ``events=True``),
the overflow policies, the statistics, and the exceptions. The two exceptions a websocket handler
may let escape (:class:`SubscriberTooSlow`, :class:`BroadcastInterrupted`) are also
:class:`~trioweb.WebsocketException`, so the pipeline closes the websocket with their code and
reason and logs no traceback.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, final

import attrs

from .._errors import WebsocketException

#: The longest close reason a websocket may carry (bytes of UTF-8).
_REASON_BYTES = 123


class Overflow(enum.StrEnum):
    """What happens to a message that arrives at a full subscription buffer.

    The string forms (``"raise"``, ...) are accepted wherever a policy is.
    """

    #: The subscription is cut: its buffer is discarded and its next ``receive()`` raises
    #: :class:`SubscriberTooSlow` (a websocket handler that lets it escape closes with 1013).
    RAISE = "raise"
    #: The oldest buffered message is dropped: the subscription keeps the newest ones.
    DROP_OLDEST = "drop-oldest"
    #: The arriving message is dropped: the subscription keeps the oldest ones.
    DROP_NEWEST = "drop-newest"


@final
@attrs.frozen
class Join:
    """A presence entry appeared: someone entered ``hub.track(topic, key, meta)``."""

    topic: str
    key: str
    meta: dict[str, Any]


@final
@attrs.frozen
class Leave:
    """A presence entry went away: its ``track`` block ended (or, with Redis, its worker died)."""

    topic: str
    key: str
    meta: dict[str, Any]


@final
@attrs.frozen
class Interrupted:
    """The backend lost its server; messages published until :class:`Resumed` are lost."""

    reason: str


@final
@attrs.frozen
class Resumed:
    """The backend is back; ``lost`` messages were published while it was away."""

    lost: int


@final
@attrs.frozen
class TopicStats:
    """One topic as this process sees it (see :meth:`Broadcast.stats`)."""

    #: Open subscriptions in this process.
    subscribers: int
    #: Messages published to the topic by this process.
    published: int
    #: Messages (and events) put into this process's subscription buffers.
    delivered: int
    #: Messages lost by subscriptions of this process to an overflow policy.
    dropped: int
    #: Subscriptions cut by the ``raise`` policy.
    cut: int


@final
@attrs.frozen
class BroadcastStats:
    """A snapshot of a hub (see :meth:`Broadcast.stats`)."""

    #: The backend's URL, any password removed.
    backend: str
    #: Whether the backend reaches its server (always true in memory while running).
    connected: bool
    #: How many times the backend lost its server.
    interruptions: int
    #: Messages published while the backend was away.
    lost: int
    #: The topics with local subscribers or presence entries, by name.
    topics: Mapping[str, TopicStats]


#: What a subscription yields: messages as published, and events with ``events=True``.
Item = str | bytes | Join | Leave | Interrupted | Resumed


class BroadcastError(Exception):
    """Base class of the exceptions of :mod:`trioweb.broadcast`."""


def _fit(reason: str) -> str:
    """``reason`` cut to what a close frame can carry."""
    data = reason.encode()
    if len(data) <= _REASON_BYTES:
        return reason
    return data[: _REASON_BYTES - 3].decode(errors="ignore") + "..."


@final
class SubscriberTooSlow(BroadcastError, WebsocketException):
    """The subscription's buffer was full when a message arrived, and its policy is ``raise``.

    Raised by :meth:`Subscription.receive` (and ``async for``) of the cut subscription, and from
    :meth:`Broadcast.forward`. Escaping a websocket handler it closes the websocket with code
    1013 ("Try Again Later") and a reason like ``too slow: 100 messages of 'room:1' unread``.
    """

    def __init__(self, topic: str, buffer: int) -> None:
        WebsocketException.__init__(
            self, 1013, _fit(f"too slow: {buffer} messages of {topic!r} unread")
        )
        self.args = (
            f"a subscriber of {topic!r} was too slow: its buffer of {buffer} messages was full,"
            " so the 'raise' overflow policy cut it; receive faster, subscribe with a larger"
            " buffer=, or choose overflow='drop-oldest' or 'drop-newest'",
        )
        self.topic = topic
        self.buffer = buffer


@final
class BroadcastInterrupted(BroadcastError, WebsocketException):
    """The backend lost its server (or the hub stopped), so messages may be lost.

    Raised by :meth:`Subscription.receive` of a subscription without ``events=True``, after the
    messages buffered before the interruption; such a subscription is over (open a new one).
    Escaping a websocket handler it closes the websocket with code 1012 ("Service Restart"),
    so the client knows to reconnect.
    """

    def __init__(self, reason: str) -> None:
        WebsocketException.__init__(self, 1012, _fit(f"the broadcast backend went away: {reason}"))


@final
class BroadcastUnavailable(BroadcastError):
    """The hub could not reach its backend when it started (the app does not start)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the broadcast backend at {url}: {reason}; is the server running?"
            " (set BROADCAST_URL)"
        )
        self.url = url
        self.reason = reason
