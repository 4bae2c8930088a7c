"""The disconnect listener: how a connection notices that its client left while no task of its
handler is waiting for the client.

A client that leaves reaches the handler as ``trio.Cancelled`` (ARCHITECTURE.md). The server tells
the app through ASGI ``receive`` (``websocket.disconnect``, ``http.disconnect``), so *somebody*
must be reading ``receive``. For a websocket that is the handler itself most of the time: it sits
in ``receive()``. The *listener* reads on its behalf when it stays away.

Websockets. Each one has an :class:`Inbox`, the only reader of its ASGI ``receive``. Rules:

* ``Inbox.receive`` reads ASGI ``receive`` in the caller's own task: no task hop, lock or cancel
  scope per message. One caller at a time; a second one gets ``trio.BusyResourceError``, on every
  path.
* One :class:`DisconnectListener` per app (a task in the app nursery; per connection when the app
  is served without a lifespan) looks every ``delay`` seconds at the inboxes that nobody is
  reading. One that has not been read since its previous look gets a *listen task* in the
  connection nursery, which reads ASGI ``receive`` for the handler. Messages are queued, in
  order, at most :data:`MAX_PENDING` of them; then the listen task stops reading, so the
  server's own bounded queue slows the client down (backpressure), and logs a warning (the
  1st, 2nd, 4th, 8th... time the queue fills on that websocket, with the count: a flood
  against a handler that does not receive is one line, not one per look). No listen task
  starts while the queue is full. A
  disconnect is queued too (a ``receive()`` taking over gets it, rather than waiting for a
  message that will never come) and reported (``on_disconnect``: the websocket records the
  close and cancels its handler).
* *Handover*: a ``receive()`` that starts while a listen task waits cancels that wait and waits
  for the task to hand over (this relies on ASGI ``receive`` being cancel-safe, as Hypercorn's and
  the test client's memory channels are); queued messages come first. The listen task hands over
  in a ``finally``, so a ``receive()`` never waits for a task that is gone, whatever ended it
  (cancelled from outside by a server shutting down, say).
* A listen task scheduled just before the handler read again stands down when it starts.

HTTP requests have no inbox: a view reads its body at most once. The same listener looks after
the requests in flight (:meth:`DisconnectListener.watch_http`: a dict entry per request, no task
or nursery, since most requests are answered within milliseconds). A request that was already in
flight at the previous look (so its view has run for ``delay`` to ``2 * delay`` seconds) gets a
listen task in the listener's own nursery, :func:`listen_for_http_disconnect`, which buffers
what the view has not read of the body (within its size limit), then waits for
``http.disconnect`` and cancels the request's handler scope. When the request ends, its listen
task is cancelled and waited for (:meth:`DisconnectListener.unwatch_http`), so no task outlives
its request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, final

import trio

from ._types import Message, Receive

if TYPE_CHECKING:
    from ._formparser import Body

log = logging.getLogger("trioweb")

#: How many messages a listen task queues for a handler that is not receiving before it stops
#: reading (then the server's own bounded queue slows the client down).
MAX_PENDING = 16


class _Nowhere(set["Inbox"]):
    """Where an inbox that no listener looks after reports its reads: it keeps nothing."""

    def add(self, item: Inbox) -> None:
        pass


_NOWHERE = _Nowhere()


@final
class Inbox:
    """What a websocket has received, and the only reader of its ASGI ``receive`` (see the
    module's rules). ``on_disconnect(code, reason)`` is called when a listen task reads the
    client's disconnect."""

    __slots__ = (
        "_filled",
        "_handover",
        "_idle",
        "_listen_scope",
        "_listening",
        "_looked_at",
        "_nursery",
        "_on_disconnect",
        "_reading",
        "_reads",
        "_receive",
        "heard",
        "pending",
    )

    def __init__(self, receive: Receive, on_disconnect: Callable[[int, str], None]) -> None:
        self._receive = receive
        self._on_disconnect = on_disconnect
        #: Messages a listen task read for the handler, oldest first (a list: a deque costs
        #: 600 B more per connection and this is usually empty).
        self.pending: list[Message] = []
        self._reading = False  # a receive() is under way
        self._reads = 0  # receive() calls so far, for the listener's "not read since" test
        self._looked_at = -1  # _reads when the listener last looked
        self._listening = False  # a listen task is scheduled or running
        self._listen_scope: trio.CancelScope | None = None  # while a listen task waits
        self._handover: trio.Event | None = None  # set by the listen task once it has stopped
        self._nursery: trio.Nursery | None = None
        self._idle: set[Inbox] = _NOWHERE  # the listener's set, once enrolled
        self._filled = 0  # how many times a listen task found the queue full
        #: Messages read from ASGI ``receive`` so far: the idle sweeper's sign of life
        #: (trioweb._guard); an increment per message is all it costs.
        self.heard = 0

    async def receive(self) -> Message:
        """The next ASGI message: a queued one, else one read from ASGI ``receive`` now.

        A checkpoint. Cancel-safe: a cancelled call leaves the message for the next one. Raises
        ``trio.BusyResourceError`` if another task is already in it.
        """
        if self._reading:
            await trio.lowlevel.checkpoint()
            raise trio.BusyResourceError("another task is already receiving on this websocket")
        self._reading = True
        self._idle.discard(self)
        try:
            if self._listen_scope is not None:
                await self._take_over()
            if self.pending:
                await trio.lowlevel.checkpoint_if_cancelled()
                message = self.pending.pop(0)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            message = await self._receive()
            self.heard += 1
            return message
        finally:
            self._reading = False
            self._reads += 1
            self._idle.add(self)  # self._idle, not a copy: the listener may have withdrawn it

    async def _take_over(self) -> None:
        self._handover = handover = trio.Event()
        assert self._listen_scope is not None
        self._listen_scope.cancel()
        await handover.wait()

    def _look(self) -> None:
        """Start a listen task if nobody has read since the previous look (the listener's
        periodic call)."""
        if (
            self._reads == self._looked_at
            and not self._listening
            and self._nursery is not None
            and len(self.pending) < MAX_PENDING
        ):
            self._listening = True
            self._nursery.start_soon(self._listen, self._reads)
        self._looked_at = self._reads

    async def _listen(self, reads: int) -> None:
        """Read for the handler until it reads again, the queue is full or the client leaves."""
        try:
            while not self._reading and self._reads == reads:
                if len(self.pending) >= MAX_PENDING:
                    self._filled += 1
                    if self._filled & (self._filled - 1) == 0:  # the 1st, 2nd, 4th... time
                        log.warning(
                            "websocket: the handler has not received %d queued messages (%d"
                            " times on this websocket so far); the client now waits"
                            " (backpressure), and a disconnect will not be noticed until the"
                            " handler receives",
                            MAX_PENDING,
                            self._filled,
                        )
                    return
                message: Message | None = None
                with trio.CancelScope() as self._listen_scope:
                    message = await self._receive()
                self._listen_scope = None
                if message is None:  # the handler took over
                    return
                self.heard += 1
                self.pending.append(message)  # a disconnect too: a receive() taking over gets it
                if message["type"] == "websocket.disconnect":
                    self._on_disconnect(message.get("code", 1005), message.get("reason") or "")
                    return
                if self._handover is not None:
                    return
        finally:
            # Whatever ended this task (the handler taking over, the client leaving, a cancel
            # from outside), a receive() waiting for the handover must not wait forever.
            self._listen_scope = None
            self._listening = False
            if self._handover is not None:
                self._handover.set()
                self._handover = None


@final
class DisconnectListener:
    """Looks after the inboxes of an app's websockets (see the module's rules): every ``delay``
    seconds it starts a listen task for each inbox that nobody has read since its previous
    look. Inboxes that are being read cost nothing: ``Inbox.receive`` takes them out of the set
    it looks at while it waits."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._idle: set[Inbox] = set()
        # HTTP requests in flight: those that came since the previous look, and those that were
        # already there then (they get a listen task at the next look). Dicts as ordered sets.
        self._new_http: dict[HttpWatch, None] = {}
        self._old_http: dict[HttpWatch, None] = {}
        self._nursery: trio.Nursery | None = None  # where HTTP listen tasks run, once running

    def enroll(self, inbox: Inbox, nursery: trio.Nursery) -> None:
        """Start looking after ``inbox``, whose listen tasks run in ``nursery``."""
        inbox._nursery = nursery
        inbox._idle = self._idle
        self._idle.add(inbox)

    def withdraw(self, inbox: Inbox) -> None:
        """Stop looking after ``inbox`` (before its connection nursery closes)."""
        inbox._idle = _NOWHERE
        self._idle.discard(inbox)

    def watch_http(self, watch: HttpWatch) -> None:
        """Start looking after an HTTP request: once it has been in flight for ``delay`` to
        ``2 * delay`` seconds, a listen task starts for it. Call :meth:`unwatch_http` when it
        ends."""
        self._new_http[watch] = None

    def unwatch_http(self, watch: HttpWatch) -> trio.Event | None:
        """Stop looking after an HTTP request. If it has a listen task, that task is cancelled
        and the event it sets once it has ended is returned: wait for it (shielded)."""
        if watch in self._new_http:
            del self._new_http[watch]
        else:
            self._old_http.pop(watch, None)
        stopped = watch.stopped
        if stopped is not None:
            watch.listen_scope.cancel()
        return stopped

    async def run(self) -> NoReturn:
        """Look every ``delay`` seconds until cancelled."""
        async with trio.open_nursery() as self._nursery:
            while True:
                await trio.sleep(self.delay)
                for inbox in list(self._idle):
                    inbox._look()
                for watch in self._old_http:
                    watch.listen_scope = trio.CancelScope()
                    watch.stopped = trio.Event()
                    self._nursery.start_soon(_listen_http, watch)
                self._old_http, self._new_http = self._new_http, {}


@final
class HttpWatch:
    """An HTTP request in flight, as the disconnect listener sees it: its unread ``body``, its
    ASGI ``receive`` and its handler ``scope`` (cancelled if the client leaves)."""

    __slots__ = ("body", "listen_scope", "receive", "scope", "stopped")

    def __init__(self, body: Body, receive: Receive, scope: trio.CancelScope) -> None:
        self.body = body
        self.receive = receive
        self.scope = scope
        #: Its listen task's scope and the event that task sets once it has ended; both are
        #: made when the task starts (``stopped`` is ``None`` until then: most requests end
        #: before they get one).
        self.listen_scope: trio.CancelScope
        self.stopped: trio.Event | None = None


async def _listen_http(watch: HttpWatch) -> None:
    # It runs in the listener's nursery, which serves every request: an error of one request's
    # receive (a server's bug) must not end it. The request is treated as disconnected.
    try:
        with watch.listen_scope:
            await listen_for_http_disconnect(watch.body, watch.receive, watch.scope.cancel)
    except Exception:
        log.exception(
            "the server's receive failed while listening for a disconnect; the view"
            " is cancelled as if the client had left"
        )
        watch.scope.cancel()
    finally:
        assert watch.stopped is not None
        watch.stopped.set()


async def listen_for_http_disconnect(
    body: Body, receive: Receive, on_disconnect: Callable[[], object]
) -> None:
    """Buffer the unread request ``body``, then wait for ``http.disconnect`` and call
    ``on_disconnect()``. The listener starts it for a view that has run for a while, and it is
    cancelled when the request ends."""
    disconnected = await body.drain()
    while not disconnected:
        disconnected = (await receive())["type"] == "http.disconnect"
    on_disconnect()
