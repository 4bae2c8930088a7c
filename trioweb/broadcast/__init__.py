"""Publish and subscribe across a trioweb app's connections, workers and machines.

``from trioweb.broadcast import Broadcast``; see :doc:`/howto/broadcasting`.
"""

from ._events import BroadcastError as BroadcastError
from ._events import BroadcastInterrupted as BroadcastInterrupted
from ._events import BroadcastStats as BroadcastStats
from ._events import BroadcastUnavailable as BroadcastUnavailable
from ._events import Interrupted as Interrupted
from ._events import Join as Join
from ._events import Leave as Leave
from ._events import Overflow as Overflow
from ._events import Resumed as Resumed
from ._events import SubscriberTooSlow as SubscriberTooSlow
from ._events import TopicStats as TopicStats
from ._hub import Broadcast as Broadcast
from ._subscription import Subscription as Subscription

__all__ = [
    "Broadcast",
    "BroadcastError",
    "BroadcastInterrupted",
    "BroadcastStats",
    "BroadcastUnavailable",
    "Interrupted",
    "Join",
    "Leave",
    "Overflow",
    "Resumed",
    "SubscriberTooSlow",
    "Subscription",
    "TopicStats",
]
