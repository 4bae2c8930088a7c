"""The hub: :class:`Broadcast`, its lifecycle, publishing, presence and ``forward()``.

What it owns: the backend (chosen by URL) and its task, and the local side (:mod:`._local`).
Rules it keeps:

* The backend's task runs in the app nursery from ``before_serving`` to ``after_serving`` (or
  in a nursery of the hub's own, ``async with Broadcast(...)``); startup fails with the
  backend's :class:`BroadcastUnavailable`. Using the hub when it is not running is a
  ``RuntimeError`` that says how to run it.
* Every async method is a checkpoint on every path, raising included; none swallows
  ``trio.Cancelled``. The exits of ``subscribe``/``track``/``forward`` do their local part
  synchronously, so they run even when cancelled (a network backend queues the rest).
* ``publish`` never waits on a subscriber: fan-out appends to bounded buffers.
* ``forward`` owns a nursery but is a class, not an async generator, and raises the forwarding
  task's error from its ``async with`` unwrapped from the nursery's exception group.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import trio

from .. import _json
from .._ctx import _get_websocket
from .._errors import lone_exception
from ._backend import Backend, backend_for, redact
from ._events import BroadcastStats, Overflow
from ._local import _Local, not_running
from ._subscription import Subscription

if TYPE_CHECKING:
    from trio import TaskStatus

    from .._app import TrioWeb
    from .._websocket import Websocket
    from ._backend import Message

log = logging.getLogger("trioweb.broadcast")

#: Tells the tracks of this process apart in a shared backend.
_refs = itertools.count()


@final
class Broadcast:
    """A hub of topics: publish messages to a topic, subscribe to receive them.

    ``Broadcast(app, url=...)`` (or ``Broadcast(url=...)`` and later :meth:`init_app`) starts
    with the app and stops with it; ``async with Broadcast(url=...) as hub:`` runs one without
    an app. ``url`` picks the backend: ``memory://`` (one process) or ``redis://``,
    ``rediss://``, ``unix://`` (Redis or Valkey, for many workers and machines); ``None`` reads
    ``app.config["BROADCAST_URL"]`` when the app starts (default ``memory://``). ``buffer`` and
    ``overflow`` are the defaults of each subscription; ``presence_ttl`` (seconds) bounds how
    long a dead worker's presence entries outlive it and ``prefix`` namespaces the Redis keys
    and channels. Raises ``ValueError`` for an unknown URL scheme, a buffer below 1 or an
    unknown policy.
    """

    def __init__(
        self,
        app: TrioWeb | None = None,
        *,
        url: str | None = None,
        buffer: int = 100,
        overflow: Overflow | str = Overflow.RAISE,
        presence_ttl: float = 30.0,
        prefix: str = "trioweb",
    ) -> None:
        self.buffer = _check_buffer(buffer)
        self.overflow = _check_overflow(overflow)
        self.presence_ttl = presence_ttl
        self.prefix = prefix
        self._url = url
        self._backend: Backend | None = None
        if url is not None:
            self._backend = backend_for(url, presence_ttl=presence_ttl, prefix=prefix)
        self._local = _Local(self._revive)
        # Between the app's before_serving and after_serving.
        self._serving = False
        self._app: TrioWeb | None = None
        self._scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None
        self._stack: AsyncExitStack | None = None
        self._worker = f"{os.getpid()}-{os.urandom(4).hex()}"
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        where = self._backend.url if self._backend is not None else "BROADCAST_URL"
        state = "running" if self._local.backend is not None else "stopped"
        return f"<Broadcast {where} {state}>"

    # Lifecycle ------------------------------------------------------------------------------------

    def init_app(self, app: TrioWeb) -> None:
        """Start the hub with ``app`` (``before_serving``) and stop it with it
        (``after_serving``). Sets the default ``BROADCAST_URL`` (``memory://``). Raises
        ``RuntimeError`` if the hub already has an app."""
        if self._app is not None:
            raise RuntimeError(f"this hub already belongs to {self._app!r}: make one per app")
        self._app = app
        app.config.setdefault("BROADCAST_URL", "memory://")
        app.before_serving(self._start_with_app)
        app.after_serving(self._stop)

    async def _start_with_app(self) -> None:
        app = self._app
        assert app is not None
        assert app.nursery is not None
        if self._url is None:
            self._backend = backend_for(
                app.config["BROADCAST_URL"], presence_ttl=self.presence_ttl, prefix=self.prefix
            )
        await self._start(app.nursery)
        self._serving = True

    async def _revive(self, what: str) -> Backend:
        """The backend, after starting the hub again if its task ended while the app serves
        (a task started on ``app.nursery`` raised, so trio cancelled the app nursery and this
        task with it; trioweb opens a new app nursery). ``RuntimeError`` saying how to run the
        hub otherwise. A checkpoint."""
        app = self._app
        if self._serving and app is not None and app.nursery is not None:
            try:
                await self._start(app.nursery)
            except RuntimeError:  # the old app nursery is closing, or another task restarts
                pass
            else:
                assert self._backend is not None
                return self._backend
        await trio.lowlevel.checkpoint()
        raise not_running(what)

    async def _start(self, nursery: trio.Nursery) -> None:
        if self._local.backend is not None or self._stopped is not None:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("this broadcast hub is running already")
        self._stopped = trio.Event()
        try:
            await nursery.start(self._serve)
        except BaseException:
            self._stopped = None
            raise
        self._local.backend = self._backend

    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        backend = self._backend
        stopped = self._stopped
        assert backend is not None
        assert stopped is not None
        scope = self._scope = trio.CancelScope()
        try:
            with scope:
                await backend.run(self._local, task_status=task_status)
        finally:
            if self._serving and not scope.cancel_called:
                log.warning(
                    "the broadcast hub was cancelled with the app nursery while the app serves"
                    " (a task started on app.nursery raised, or startup failed): its"
                    " subscriptions end with BroadcastInterrupted, and it starts again when"
                    " next used"
                )
            self._local.stop()
            self._scope = None
            self._stopped = None
            stopped.set()

    async def _stop(self) -> None:
        """Stop the backend's task and wait for it. A checkpoint."""
        self._serving = False
        stopped = self._stopped
        if stopped is None or self._scope is None:
            await trio.lowlevel.checkpoint()
            return
        self._scope.cancel()
        await stopped.wait()

    async def __aenter__(self) -> Broadcast:
        """Run the hub in a nursery of its own (without an app). A checkpoint; raises what
        the backend raised when it could not start."""
        if self._app is not None:
            await trio.lowlevel.checkpoint()
            raise RuntimeError(
                "this hub starts and stops with its app: use it while the app is serving"
                " (`async with app.test_client()` in tests), not with `async with hub`"
            )
        if self._backend is None:
            self._backend = backend_for(
                "memory://", presence_ttl=self.presence_ttl, prefix=self.prefix
            )
        stack = AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        try:
            await self._start(nursery)
        except BaseException:
            nursery.cancel_scope.cancel()
            await _close_unwrapped(stack)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the hub and wait for its task. A checkpoint."""
        stack, self._stack = self._stack, None
        assert stack is not None
        try:
            await self._stop()
        finally:
            await _close_unwrapped(stack)

    # Subscribing and publishing -------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        *,
        buffer: int | None = None,
        overflow: Overflow | str | None = None,
        events: bool = False,
    ) -> Subscription:
        """A subscription to ``topic``, to enter with ``async with``.

        ``buffer`` and ``overflow`` default to the hub's. With ``events=True`` presence changes
        (:class:`Join`, :class:`Leave`) and backend outages (:class:`Interrupted`,
        :class:`Resumed`) come among the messages. Entering it is a checkpoint and raises
        ``RuntimeError`` when the hub is not running.
        """
        return Subscription(
            self._local,
            topic,
            self.buffer if buffer is None else _check_buffer(buffer),
            self.overflow if overflow is None else _check_overflow(overflow),
            events,
        )

    async def publish(self, topic: str, message: Message) -> None:
        """Send ``message`` (``str`` or ``bytes``) to every subscriber of ``topic``.

        Never waits on a subscriber. A checkpoint. Raises ``TypeError`` for another type and
        ``RuntimeError`` when the hub is not running, both before any effect.
        """
        if not isinstance(message, str | bytes):
            await trio.lowlevel.checkpoint()
            raise TypeError(
                f"publish() takes str or bytes, not {type(message).__name__}; use"
                " publish_json() for other values"
                + (" or convert it with bytes()" if isinstance(message, bytearray) else "")
            )
        backend = self._local.backend
        if backend is None:
            backend = await self._revive("publish")
        await backend.publish(topic, message)
        state = self._local.topics.get(topic)
        if state is not None:
            state.published += 1

    async def publish_json(self, topic: str, value: Any) -> None:
        """Encode ``value`` as JSON once and publish it as text (as :meth:`publish`).

        Raises ``TypeError`` for a value JSON cannot encode."""
        try:
            data = _json.dumps(value)
        except (TypeError, ValueError):
            await trio.lowlevel.checkpoint()
            raise
        await self.publish(topic, data)

    # Presence -------------------------------------------------------------------------------------

    def track(
        self, topic: str, key: str, meta: dict[str, Any] | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Be present on ``topic`` as ``key`` with ``meta`` (a JSON-able dict) while inside
        ``async with``. Entering announces a :class:`Join`, leaving a :class:`Leave` (also
        when cancelled). Raises ``TypeError`` if ``meta`` cannot be encoded as JSON."""
        return _Track(self, topic, key, {} if meta is None else meta)

    async def presence(self, topic: str) -> dict[str, list[dict[str, Any]]]:
        """Who is present on ``topic``: each key with one meta per ``track`` block. A
        checkpoint; ``RuntimeError`` when the hub is not running."""
        backend = self._local.backend
        if backend is None:
            backend = await self._revive("presence")
        return await backend.presence(topic)

    # Forwarding -----------------------------------------------------------------------------------

    def forward(
        self,
        topic: str,
        websocket: Websocket | None = None,
        *,
        buffer: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> AbstractAsyncContextManager[Subscription]:
        """Send every message of ``topic`` to ``websocket`` (default: the current one) from a
        task of its own while the ``async with`` body runs.

        The subscription is open before the body starts. If forwarding fails
        (:class:`SubscriberTooSlow`, :class:`BroadcastInterrupted`,
        :class:`~trioweb.WebsocketClosed`) the body is cancelled and the error is raised from
        the ``async with`` itself, so escaping the handler it closes the websocket with its
        code. When the body ends, forwarding stops.
        """
        return _Forward(self.subscribe(topic, buffer=buffer, overflow=overflow), websocket)

    # Statistics -----------------------------------------------------------------------------------

    def stats(self) -> BroadcastStats:
        """A snapshot of the backend and of the topics with local subscribers or presence.
        ``RuntimeError`` before the backend is known (``url=None`` and the app never started)."""
        backend = self._backend
        if backend is None:
            raise RuntimeError(
                "the hub has no backend yet: it reads BROADCAST_URL when the app starts; call"
                " stats() while the app is serving"
            )
        return BroadcastStats(
            backend=redact(backend.url),
            connected=self._local.backend is not None and backend.connected,
            interruptions=backend.interruptions,
            lost=backend.lost,
            topics={name: topic.stats() for name, topic in self._local.topics.items()},
        )


@final
class _Track:
    """``async with hub.track(topic, key, meta):`` (see :meth:`Broadcast.track`)."""

    def __init__(self, hub: Broadcast, topic: str, key: str, meta: dict[str, Any]) -> None:
        self._hub = hub
        self._topic = topic
        self._key = key
        self._meta = meta
        self._ref: str | None = None
        self._backend: Backend | None = None

    async def __aenter__(self) -> None:
        local = self._hub._local
        backend = local.backend
        if backend is None:
            backend = await self._hub._revive("track")
        if self._ref is not None:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("call hub.track() for each `async with`")
        try:
            meta = _json.loads(_json.dumps(self._meta))
        except (TypeError, ValueError):
            await trio.lowlevel.checkpoint()
            raise
        ref = self._ref = f"{self._hub._worker}:{next(_refs)}"
        local.add_track(self._topic)
        try:
            await backend.join(self._topic, ref, self._key, meta)
        except BaseException:
            backend.leave(self._topic, ref)
            local.remove_track(self._topic)
            raise
        self._backend = backend

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        backend, self._backend = self._backend, None
        assert backend is not None
        assert self._ref is not None
        backend.leave(self._topic, self._ref)
        self._hub._local.remove_track(self._topic)
        if exc is None:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()


@final
class _Forward:
    """``async with hub.forward(topic):`` (see :meth:`Broadcast.forward`)."""

    def __init__(self, subscription: Subscription, websocket: Websocket | None) -> None:
        self._subscription = subscription
        self._websocket = websocket
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> Subscription:
        websocket = self._websocket
        if websocket is None:
            try:
                websocket = _get_websocket()
            except RuntimeError:
                await trio.lowlevel.checkpoint()
                raise
        stack = AsyncExitStack()
        await stack.enter_async_context(self._subscription)
        try:
            nursery = await stack.enter_async_context(trio.open_nursery())
        except BaseException:  # pragma: no cover  (opening a nursery fails only if cancelled)
            await stack.aclose()
            raise
        nursery.start_soon(self._pump, websocket, name=f"forward {self._subscription.topic!r}")
        self._stack, self._nursery = stack, nursery
        return self._subscription

    async def _pump(self, websocket: Websocket) -> None:
        async for message in self._subscription:
            await websocket.send(message)  # type: ignore[arg-type]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, nursery = self._stack, self._nursery
        self._stack = self._nursery = None
        assert stack is not None
        assert nursery is not None
        if exc is None:
            nursery.cancel_scope.cancel()  # the body ended: stop forwarding
        with _unwrapped():
            return await stack.__aexit__(exc_type, exc, tb)


def _check_buffer(buffer: int) -> int:
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
        raise ValueError(f"buffer must be an int of at least 1, not {buffer!r}")
    return buffer


def _check_overflow(overflow: Overflow | str) -> Overflow:
    try:
        return Overflow(overflow)
    except ValueError:
        choices = ", ".join(repr(policy.value) for policy in Overflow)
        raise ValueError(f"overflow must be one of {choices}, not {overflow!r}") from None


async def _close_unwrapped(stack: AsyncExitStack) -> None:
    with _unwrapped():
        await stack.aclose()


@contextmanager
def _unwrapped() -> Iterator[None]:
    """Raise the lone exception of a nursery's group (however nested) as itself; a group of
    nothing but ``trio.Cancelled`` (the body's and the forwarding task's, when cancelled from
    outside) as one of them."""
    try:
        yield
    except BaseExceptionGroup as group:
        _, rest = group.split(trio.Cancelled)
        lone = lone_exception(group) if rest is not None else _first_leaf(group)
        if lone is group:
            raise
        raise lone from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
