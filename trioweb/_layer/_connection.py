"""One connection of the layer: its task, its reads and sends, keep-alive, and its ending.

This replaces ``hypercorn.trio.tcp_server.TCPServer`` (Hypercorn 0.18) and keeps its contract
with the protocol classes: they get a ``send(event)`` for ``RawData``, ``Closed`` and ``Updated``,
and the connection feeds them ``RawData`` and, once, ``Closed``. Rules:

* **One task per connection, errors contained there.** Whatever the protocol machinery raises
  for this connection (h11's ``LocalProtocolError`` after a pipelined websocket frame,
  pgjones/hypercorn#225, or "got data when expected EOF", #203; wsproto's and h2's errors; our
  own bugs) is caught in this task, logged once (INFO for what the client sent, WARNING when
  the client drove a state machine into refusing, ERROR with the traceback for anything else),
  and the socket is closed. Stock Hypercorn lets it reach the worker's nursery: one packet ends
  the process.
* **The reader owns the ending.** Every other way to end a connection (the keep-alive deadline,
  a protocol's ``Closed``, a failed or timed-out send, shutdown) only *hangs up*: it closes the
  socket, synchronously, which wakes every task waiting on it. The reader then stops and hands
  the protocol its one ``Closed``, so every app gets its ``disconnect``; the connection's task
  ends when its apps have ended. A closed socket never blocks anyone, shielded or not.
* **Reads** have no cancel scope unless Hypercorn's ``read_timeout`` is set (a ``fail_after``
  per read costs 10.6 µs per message, measured on echo). On plain TCP a read waits for the
  socket to be readable and then reads, once (:func:`_receive`), rather than trying first.
* **Sends are never shielded** (stock shields every ``send_all``, so neither shutdown nor an
  app's ``move_on_after`` can end a send to a client that stopped reading). On plain TCP the
  bytes go straight to the socket, without blocking, when nobody else is sending (-19 µs per
  message against the locked, shielded ``send_all``); only the rest of a partial write waits,
  under a FIFO lock that keeps the order, and only while the client makes progress: after
  ``send_timeout`` seconds without any (``WEBSOCKET_SEND_TIMEOUT``) the connection is aborted
  and that send raises ``ConnectionAbortedError``. A send cancelled after part of its bytes went
  out aborts the connection too (the peer's framing cannot recover). Every send is a Trio
  checkpoint: a cancel point before, a schedule point after, as trio's own socket sends.
* **A send on a connection that has hung up raises** :class:`~._apps.ConnectionBroken`, the
  failed write itself (a reset) too: a websocket handler that only sends learns from its next
  send that its client left (1006), even while the reader waits for room in the app's full
  queue to hand on the disconnect (nobody would ever take it). Stock catches the failure and
  hands the protocol ``Closed``, whose disconnect then waits behind the full queue too. HTTP
  responses (:mod:`._h11`, :mod:`._h2`) and the protocols' own sends end quietly as before.
  Nothing of this is on the path of a send that succeeds.
* **Keep-alive** is one deadline on one cancel scope that ``Updated`` events move (stock starts a
  fresh task under a lock for every idle period).
* **Shutdown** (Hypercorn's ``context.terminated``): an idle connection is closed at once; a busy
  one gets ``protocol.going_away()`` (websockets close with 1001) and is closed when it becomes
  idle; the server aborts what is left at the graceful deadline (:mod:`._server`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket as stdlib_socket
import struct
from typing import Any

import attrs
import h2.exceptions
import h11
import trio
import wsproto.utilities
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState
from hypercorn.utils import parse_socket_addr

from ._apps import TRANSPORT_ERRORS, ConnectionBroken, TaskGroup
from ._limits import Limits
from ._protocol import ProtocolWrapper

log = logging.getLogger("trioweb.layer")

#: Bytes asked of the socket per read (Hypercorn's value).
MAX_RECV = 2**16

#: What a client's bad input raises in the state machines: logged at INFO.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    h11.RemoteProtocolError,
    wsproto.utilities.RemoteProtocolError,
    h2.exceptions.ProtocolError,
)
#: A state machine refusing what the server was about to do after a client's odd input (such as
#: h11 after a pipelined websocket frame, pgjones/hypercorn#225): logged at WARNING.
REFUSALS: tuple[type[BaseException], ...] = (
    h11.LocalProtocolError,
    wsproto.utilities.LocalProtocolError,
)

_ABORT = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close with a reset, drop what is queued


@attrs.define(eq=False)
class Shared:
    """What every connection of one worker shares."""

    app: AppWrapper
    config: Config
    context: WorkerContext
    state: dict[str, Any]
    limits: Limits
    live: set[Connection] = attrs.Factory(set)
    drained: trio.Event = attrs.Factory(trio.Event)
    idle: IdleCloser = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.idle = IdleCloser(self)

    def forget(self, connection: Connection) -> None:
        self.live.discard(connection)
        if not self.live:
            self.drained.set()


class IdleCloser:
    """Closes the connections that have been idle for ``keep_alive_timeout`` seconds: one task
    per worker that sleeps until the earliest such deadline (a task per connection, as stock
    has, costs about a KiB per idle connection and a spawn per handshake, measured). With no
    idle connection it sleeps until one becomes idle (:meth:`soon`)."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._wake = trio.CancelScope()  # the current sleep: its deadline is the next check

    def soon(self, deadline: float) -> None:
        """A connection became idle: check no later than ``deadline``."""
        if deadline < self._wake.deadline:
            self._wake.deadline = deadline

    async def run(self) -> None:
        """Close idle connections at their deadlines, until cancelled."""
        timeout = self._shared.config.keep_alive_timeout
        while True:
            earliest = min((c.idle_since for c in self._shared.live), default=math.inf)
            self._wake = trio.CancelScope(deadline=earliest + timeout)
            with self._wake:
                await trio.sleep_forever()
            now = trio.current_time()
            for connection in list(self._shared.live):
                if now - connection.idle_since >= timeout:
                    connection.hang_up()


class Connection:
    """A client's connection: ``await Connection(shared, stream, raw).run()`` serves it to the
    end and never raises except ``Cancelled`` (and ``KeyboardInterrupt``). ``raw`` is the
    stdlib socket under ``stream`` (non-blocking; the accept loop keeps it)."""

    # Slots, and a send lock made on first need: idle connections are many (measured: idle
    # memory per websocket is what the bench's idle scenario compares with stock).
    __slots__ = (
        "_send_lock",
        "apps",
        "busy",
        "client",
        "hung_up",
        "idle_since",
        "protocol",
        "raw",
        "shared",
        "socket",
        "stream",
        "tls",
    )

    def __init__(
        self,
        shared: Shared,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        raw: stdlib_socket.socket,
    ) -> None:
        self.shared = shared
        self.stream = stream
        self.tls = isinstance(stream, trio.SSLStream)
        transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        self.socket = transport.socket
        self.raw = raw
        self.client: Any = None
        self.protocol: ProtocolWrapper
        self.hung_up = False
        self.apps = 0  # app calls running
        self._send_lock: trio.Lock | None = None  # made when a send first has to wait
        self.busy = False
        #: When the connection last became idle (``inf`` while busy): the server's idle
        #: sweeper closes it ``keep_alive_timeout`` seconds after (no task per connection).
        self.idle_since = math.inf
        shared.live.add(self)

    # The connection's task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends, however it ends; its socket is closed and its
        tasks have ended when this returns."""
        try:
            await self._serve()
        except Exception as error:
            _log_contained(error, self.client)
        except BaseExceptionGroup as group:
            errors, rest = group.split(Exception)
            if errors is not None:
                _log_contained(errors, self.client)
            assert rest is not None
            raise rest from None
        finally:
            self.hang_up()
            self.shared.forget(self)

    async def _serve(self) -> None:
        config = self.shared.config
        alpn_protocol: str | None = "http/1.1"
        if isinstance(self.stream, trio.SSLStream):
            try:
                with trio.fail_after(config.ssl_handshake_timeout):
                    await self.stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError):
                return  # the handshake failed, as in stock
            alpn_protocol = self.stream.selected_alpn_protocol()
        family = self.socket.family
        self.client = parse_socket_addr(family, self.socket.getpeername())
        server = parse_socket_addr(family, self.socket.getsockname())
        self.idle_since = now = trio.current_time()
        self.shared.idle.soon(now + config.keep_alive_timeout)
        async with trio.open_nursery() as nursery:
            # Hypercorn's TaskGroup protocol also lists __aenter__/__aexit__, which the protocol
            # classes never call: the nursery is the connection's.
            tasks: Any = TaskGroup(nursery, self)
            self.protocol = ProtocolWrapper(
                self.shared.app,
                config,
                self.shared.context,
                tasks,
                ConnectionState(self.shared.state.copy()),
                self.tls,
                self.client,
                server,
                self.send,
                alpn_protocol,
                limits=self.shared.limits,
            )
            await self.protocol.initiate()
            await self._read()

    async def _read(self) -> None:
        """Feed what the client sends to the protocol until the connection ends; then the
        protocol's one ``Closed``."""
        receive_some = self.stream.receive_some
        handle = self.protocol.handle
        timeout = self.shared.config.read_timeout
        raw = None if self.tls or timeout is not None else self.raw
        data: bytes | bytearray
        try:
            while True:
                if raw is not None:
                    data = await _receive(raw)
                elif timeout is None:
                    data = await receive_some(MAX_RECV)
                else:
                    with trio.fail_after(timeout):
                        data = await receive_some(MAX_RECV)
                if not data:
                    break
                await handle(RawData(bytes(data)))
        except (*TRANSPORT_ERRORS, trio.TooSlowError):
            pass  # the client left, or was hung up on, or too slow to send
        except Exception as error:  # pgjones/hypercorn#225, #203: contained here
            _log_contained(error, self.client)
        self.hang_up()
        await handle(Closed())

    async def go_away(self) -> None:
        """For a server shutting down, a connection that is busy: ``going_away`` (1001 to its
        websockets); it is closed once idle (see :meth:`send`)."""
        try:
            await self.protocol.going_away()
        except Exception as error:
            _log_contained(error, self.client)
            self.hang_up()

    # What the protocol calls ----------------------------------------------------------------------

    async def send(self, event: Event) -> None:
        """The protocol's ``send``: bytes to the client, ``Closed`` (hang up) or ``Updated``
        (busy or idle). A checkpoint for bytes; a cancel point that does not yield for the
        others (so that "busy" and the app that makes it busy start together; see
        :mod:`._apps`). Raises ``ConnectionAbortedError`` when ``send_timeout`` passed
        without the client taking any of the bytes (the connection is then aborted), and
        :class:`~._apps.ConnectionBroken` for bytes on a connection that has hung up, or
        whose write failed (it then hangs up)."""
        if type(event) is RawData:
            await self._send_data(event.data)
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        if isinstance(event, Closed):
            self.hang_up()
        else:
            assert isinstance(event, Updated), event
            self.busy = not event.idle
            if self.busy:
                self.idle_since = math.inf
            elif self.shared.context.terminated.is_set():
                self.hang_up()
            else:
                self.idle_since = now = trio.current_time()
                self.shared.idle.soon(now + self.shared.config.keep_alive_timeout)

    async def _send_data(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.hung_up:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise self._broken()
        if not data:  # the end of a message with a Content-Length: nothing to write
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        view = memoryview(data)
        lock = self._send_lock
        if not self.tls and (lock is None or not lock.locked()):
            try:
                sent = _send_some(self.raw, view)
            except OSError as error:
                self.hang_up(abort=True)
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise self._broken() from error
            if sent == len(view):
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            view = view[sent:]
            partial = sent > 0
        else:
            partial = False
        if lock is None:
            lock = self._send_lock = trio.Lock()
        async with lock:
            await self._send_rest(view, partial)

    async def _send_rest(self, view: memoryview, partial: bool) -> None:
        """Send ``view`` (under the send lock) while the client takes bytes; ``partial``: the
        start of this write went out already."""
        timeout = self.shared.limits.send_timeout
        timeout = math.inf if timeout is None else timeout
        timed_out = False
        try:
            if self.tls:
                partial = True  # SSLStream cannot resume a cancelled send_all
                with trio.move_on_after(timeout) as timer:
                    await self.stream.send_all(view)
                timed_out = timer.cancelled_caught
            else:
                while view and not self.hung_up:
                    with trio.move_on_after(timeout) as timer:
                        await trio.lowlevel.wait_writable(self.raw)
                    if timer.cancelled_caught:
                        timed_out = True
                        break
                    sent = _send_some(self.raw, view)
                    view, partial = view[sent:], partial or sent > 0
        except TRANSPORT_ERRORS as error:
            self.hang_up(abort=True)
            raise self._broken() from error
        except BaseException:  # cancelled with part of the bytes out: the framing is lost
            if partial:
                self.hang_up(abort=True)
            raise
        if timed_out:
            self.hang_up(abort=True)
            raise ConnectionAbortedError(
                f"the client at {self.client} took none of the bytes sent to it for"
                f" {timeout:g} s, so the connection was closed (the app's"
                " WEBSOCKET_SEND_TIMEOUT; raise it if clients may stop reading for longer)"
            )
        if view and not self.tls:  # hung up (by another task) while this one waited
            raise self._broken()

    def _broken(self) -> ConnectionBroken:
        return ConnectionBroken(f"the connection to {self.client} is closed")

    def hang_up(self, *, abort: bool = False) -> None:
        """Close the socket now (``abort``: with a reset, dropping unsent bytes). Every task
        waiting on it wakes up; the reader then ends the connection. Idempotent."""
        if self.hung_up:
            return
        self.hung_up = True
        if abort:
            with contextlib.suppress(OSError):  # it may have failed already
                self.socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, _ABORT)
        self.socket.close()


async def _receive(raw: stdlib_socket.socket) -> bytes:
    """What the client sent next (``b""`` once it has finished sending): a wait until the socket
    is readable, then one ``recv``. Trio's ``receive_some`` tries ``recv`` first and waits after
    ``EAGAIN``: on a keep-alive connection the next request is never there yet, so that is a
    system call and a layer of wrappers more per request. Raises ``OSError`` (the connection
    failed) and ``trio.ClosedResourceError`` (it was closed while waiting)."""
    while True:
        if raw.fileno() < 0:  # hung up: trio cannot wait on it
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("the connection was closed")
        await trio.lowlevel.wait_readable(raw)
        try:
            return raw.recv(MAX_RECV)
        except BlockingIOError:
            pass  # readable, and then not: wait again


def _send_some(raw: stdlib_socket.socket, view: memoryview) -> int:
    """Bytes of ``view`` the socket took without blocking (0 when its buffer is full)."""
    try:
        return raw.send(view)
    except BlockingIOError:
        return 0


def _log_contained(error: BaseException, client: Any) -> None:
    """Log, once, an error that ended the connection of ``client``."""
    leaf = error
    while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, CLIENT_ERRORS):
        log.info("closed the connection of %s: it broke the protocol (%r)", client, leaf)
    elif isinstance(leaf, REFUSALS):
        log.warning(
            "closed the connection of %s: its input drove the protocol into a state that"
            " refused to go on (%r)",
            client,
            leaf,
        )
    elif isinstance(leaf, TRANSPORT_ERRORS):
        log.debug("the connection of %s failed: %r", client, leaf)
    else:
        log.error(
            "closed the connection of %s after an unexpected error (a bug in trioweb's"
            " connection layer or Hypercorn: please report it with this traceback)",
            client,
            exc_info=error,
        )
