"""A subscription: one topic's messages for one receiving task, in a bounded buffer.

Rules it keeps:

* Delivery (:meth:`Subscription.deliver`, called by the hub's fan-out for each published message)
  is synchronous and never blocks: it appends to a deque and wakes the receiver if one waits.
  Nothing else happens on that path (no allocation beyond the append, no lock, no logging); a
  full buffer goes to the cold path, which applies the overflow policy.
* One task receives at a time (``trio.BusyResourceError`` for a second), from any task of the
  handler. ``receive()`` is a checkpoint: one when a message is waiting, then it pops it.
* A subscription ends when its ``async with`` block ends (also when cancelled: the local part
  is synchronous), when the ``raise`` policy cuts it, or when the backend is interrupted (without
  ``events=True``). An ended subscription takes no more deliveries: its capacity becomes -1, so
  the hot path's one comparison sends every late delivery to the cold path, which ignores it.
"""

from __future__ import annotations

import logging
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, final

import trio

from ._events import BroadcastInterrupted, Item, Overflow, SubscriberTooSlow

if TYPE_CHECKING:
    from ._local import _Local, _Topic

log = logging.getLogger("trioweb.broadcast")

# The subscription's life: why each state exists.
_NEW = 0  # made by hub.subscribe(); not yet entered (receive() is a usage error)
_OPEN = 1  # inside its ``async with``: registered with its topic, receiving deliveries
_ENDED = 2  # its ``async with`` ended: deregistered; receive() raises ClosedResourceError


@final
class Subscription:
    """The messages of one topic for one task: ``async with hub.subscribe(topic) as sub:``.

    Iterate it (``async for message in sub``) or call :meth:`receive`. Messages come as they
    were published (``str`` or ``bytes``) and, with ``events=True``, presence and backend events
    (:class:`Join`, :class:`Leave`, :class:`Interrupted`, :class:`Resumed`) among them.
    """

    __slots__ = (
        "_abort_waiting",
        "_busy",
        "_error",
        "_items",
        "_local",
        "_size",
        "_state",
        "_topic",
        "_waiter",
        "buffer",
        "dropped",
        "events",
        "overflow",
        "topic",
    )

    def __init__(
        self, local: _Local, topic: str, buffer: int, overflow: Overflow, events: bool
    ) -> None:
        #: The topic's name.
        self.topic = topic
        #: How many messages the buffer holds before the overflow policy applies.
        self.buffer = buffer
        #: The overflow policy.
        self.overflow = overflow
        #: Whether presence and backend events come with the messages.
        self.events = events
        #: Messages (and events) this subscription lost to its overflow policy.
        self.dropped = 0
        self._local = local
        self._items: deque[Item] = deque()
        self._size = buffer
        self._waiter: trio.lowlevel.Task | None = None
        # self._abort, bound once while open (a bound method less per wait); None once ended,
        # so the cycle it makes goes with the subscription.
        self._abort_waiting: Any = None
        self._busy = False
        self._error: BaseException | None = None
        self._state = _NEW
        self._topic: _Topic | None = None

    def __repr__(self) -> str:
        return (
            f"<Subscription {self.topic!r} {len(self._items)}/{self.buffer} buffered,"
            f" {self.dropped} dropped>"
        )

    # Entering and leaving -------------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        """Join the topic; messages published from now on arrive. A checkpoint.

        Raises ``RuntimeError`` when the hub is not running or the subscription was entered
        before."""
        if self._state is not _NEW:
            await trio.lowlevel.checkpoint()
            raise RuntimeError(
                "this subscription was used before: call hub.subscribe() for each `async with`"
            )
        self._state = _OPEN
        self._abort_waiting = self._abort
        try:
            await self._local.open(self)
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the topic (synchronously, so it happens even when cancelled). A checkpoint;
        when the block raised, one that does not raise ``trio.Cancelled`` over it."""
        self.close()
        if exc is None:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def close(self) -> None:
        """End the subscription now: it leaves its topic and forgets what it buffered;
        :meth:`receive` (also one waiting now) raises ``trio.ClosedResourceError``. Closing
        again does nothing."""
        if self._state is _OPEN:
            self._state = _ENDED
            self._items.clear()
            self._end()
            self._local.remove(self)

    def _end(self) -> None:
        """Take no more deliveries and wake the receiver (to raise)."""
        self._size = -1
        self._abort_waiting = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    # Delivery (called by the hub) -----------------------------------------------------------------

    def deliver(self, item: Item) -> None:
        """Put ``item`` into the buffer, or apply the overflow policy. Never blocks."""
        items = self._items
        if len(items) < self._size:
            items.append(item)
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                trio.lowlevel.reschedule(waiter)
        else:
            self._overflow(item)

    def _overflow(self, item: Item) -> None:
        topic = self._topic
        if self._size < 0 or topic is None:  # ended: a late delivery of the ongoing fan-out
            return
        if self.dropped == 0:
            log.warning(
                "a subscriber of %r is too slow: its buffer of %d is full (%s)",
                self.topic,
                self.buffer,
                self.overflow.value,
            )
        policy = self.overflow
        if policy is Overflow.DROP_OLDEST:
            self._items.popleft()
            self._items.append(item)
            lost = 1
        elif policy is Overflow.DROP_NEWEST:
            topic.delivered -= 1
            lost = 1
        else:
            topic.delivered -= 1
            topic.cut += 1
            lost = len(self._items) + 1
            self._items.clear()
            self._fail(SubscriberTooSlow(self.topic, self.buffer))
        self.dropped += lost
        topic.dropped += lost

    def _fail(self, error: BaseException) -> None:
        """End the subscription with ``error``: ``receive()`` raises it once the buffer is
        empty. Leaves the topic at once, so fan-out no longer spends time on it."""
        self._error = error
        self._end()
        self._local.remove(self)

    def interrupt(self, reason: str) -> None:
        """The backend lost its server: fail with :class:`BroadcastInterrupted`."""
        self._fail(BroadcastInterrupted(reason))

    # Receiving ------------------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def receive(self) -> Item:
        """The next message (or event), waiting until one arrives. A checkpoint.

        Raises :class:`SubscriberTooSlow` once the ``raise`` policy cut the subscription,
        :class:`BroadcastInterrupted` after the buffered messages when the backend was
        interrupted (without ``events=True``), ``trio.ClosedResourceError`` once the
        subscription's block ended, ``trio.BusyResourceError`` if another task is receiving,
        ``RuntimeError`` before the subscription is entered.
        """
        if self._busy:
            await trio.lowlevel.checkpoint()
            raise trio.BusyResourceError(
                f"another task is already receiving from the subscription to {self.topic!r};"
                " subscribe once per receiving task"
            )
        items = self._items
        self._busy = True
        try:
            if items or self._size < 0:
                await trio.lowlevel.checkpoint()
            else:  # wait here, not in a helper: a coroutine less per message
                if self._state is _NEW:
                    await trio.lowlevel.checkpoint()
                    raise RuntimeError(
                        "receive() on a subscription that was not entered: use"
                        " `async with hub.subscribe(topic) as subscription:`"
                    )
                self._waiter = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_waiting)
            # Only deliver() (which appends) and _end() (capacity -1) wake the receiver, and
            # only the receiver or a cut (which ends) empties the buffer.
            if items:
                return items.popleft()
            self._raise_ended()
        finally:
            self._busy = False

    __anext__ = receive

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _raise_ended(self) -> NoReturn:
        if self._error is not None:
            raise self._error
        raise trio.ClosedResourceError(
            f"the subscription to {self.topic!r} has ended (its `async with` block is over)"
        )
