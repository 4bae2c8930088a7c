"""Helpers of tests/test_lifecycle_fuzz.py: a Trio loop in a thread of its own per Hypothesis
example, the scripted websocket handler, and the two clients (the test client; trio-websocket
against a real server).

Everything here is an *actor*: a task that waits for commands on a channel, runs each one and
records its outcome in a :class:`Pending`. The state machine (sync, in pytest's thread) sends a
command, then waits a bounded time for the outcomes its model says must be settled. So the test,
not Trio's scheduler, decides the order of the steps, and a step that should finish but does not
is a failure (``trio.TooSlowError``), never a hang.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import outcome
import trio
import trio.testing

from trioweb import TrioWeb, WebsocketClosed, websocket

#: Subprotocols every client offers; the handler may accept with one of them.
SUBPROTOCOLS = ("chat", "json")
#: Messages a trio-websocket client buffers (more than the machine ever has in flight).
CLIENT_QUEUE = 32
#: Real seconds the state machine waits for the loop to answer a step: past this the loop is
#: wedged (a task that never checkpoints), which no ``trio.fail_after`` inside it could catch.
REAL_BOUND = 30.0


class Boom(Exception):
    """What the scripted handler raises when told to: an error the app does not handle."""


# The loop -----------------------------------------------------------------------------------------


class LoopThread:
    """``trio.run`` in a daemon thread, for one example; :meth:`call` runs an async function
    in it as a task of the host nursery and returns its result (or raises its exception).

    With a :class:`trio.testing.MockClock`, time stands still between calls and jumps ahead
    while a call waits with every task blocked (autojump), so a wait that will never end reaches
    its ``trio.fail_after`` at once, and the disconnect listener's delay costs no real time.
    """

    def __init__(self, clock: trio.testing.MockClock | None = None) -> None:
        self.clock = clock
        self._ready = threading.Event()
        self._ended: outcome.Outcome[None] | None = None
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._main, name="lifecycle-fuzz", daemon=True)
        self._thread.start()
        if not self._ready.wait(REAL_BOUND):
            raise AssertionError("the Trio loop of the example did not start")

    def _main(self) -> None:
        self._ended = outcome.capture(trio.run, self._host, clock=self.clock)
        self._ready.set()

    async def _host(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await trio.sleep_forever()

    def call(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``await afn(*args)`` in the loop, with autojump on (a mock clock); blocks the
        calling thread for at most :data:`REAL_BOUND` real seconds."""
        results: queue.Queue[outcome.Outcome[Any]] = queue.Queue(maxsize=1)
        clock = self.clock

        async def run() -> None:
            if clock is not None:
                clock.autojump_threshold = 0
            try:
                results.put(outcome.Value(await afn(*args)))
            except Exception as error:
                results.put(outcome.Error(error))
            except BaseException as error:  # Cancelled: report it, then let it pass
                results.put(outcome.Error(error))
                raise
            finally:
                if clock is not None:
                    clock.autojump_threshold = math.inf

        assert self._token is not None
        assert self._nursery is not None
        self._token.run_sync_soon(self._nursery.start_soon, run)
        try:
            result = results.get(timeout=REAL_BOUND)
        except queue.Empty:
            raise AssertionError(
                f"the Trio loop did not answer within {REAL_BOUND} real seconds: a task runs"
                " without checkpointing"
            ) from None
        return result.unwrap()

    def close(self) -> None:
        """Cancel everything still running in the loop and wait for the thread to end."""
        if self._token is not None and self._nursery is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it ended by itself
                self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        self._thread.join(REAL_BOUND)
        assert not self._thread.is_alive(), "the Trio loop of the example did not end"
        assert self._ended is not None
        self._ended.unwrap()


def task_count() -> int:
    """How many tasks the running loop has (the whole tree). Sync."""
    count = 0
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        count += 1
        pending.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return count


# Commands and their outcomes ----------------------------------------------------------------------


@dataclass
class Pending:
    """A command sent to an actor, and once it has run, its outcome."""

    command: tuple[Any, ...]
    done: trio.Event = field(default_factory=trio.Event)
    result: outcome.Outcome[Any] | None = None

    def finish(self, result: outcome.Outcome[Any]) -> None:
        self.result = result
        self.done.set()

    async def outcome(self, within: float) -> outcome.Outcome[Any]:
        """The outcome, waiting at most ``within`` seconds for it (else ``TooSlowError``)."""
        with trio.fail_after(within):
            await self.done.wait()
        assert self.result is not None
        return self.result


@dataclass
class Conn:
    """One connection's record: what its handler (and the handler's children) did and saw."""

    number: int
    #: The handler's commands.
    commands: trio.MemorySendChannel[Pending]
    inbox: trio.MemoryReceiveChannel[Pending]
    started: int = 0
    #: How often the handler's ``finally`` ran, and what ``websocket.close_code``/``close_reason``
    #: said there.
    finally_ran: int = 0
    seen_close: tuple[int | None, str | None] | None = None
    #: The code and reason of the WebsocketClosed that a send in the ``finally`` raised.
    closed_error: tuple[int, str] | None = None
    #: What ``teardown_websocket`` got, once per call.
    teardowns: list[BaseException | None] = field(default_factory=list)
    #: Children of the handler's nursery still running, and started.
    children: int = 0
    #: Messages the handler and its children received and sent (a send counts once it returned).
    received: list[str | bytes] = field(default_factory=list)
    sent: list[str | bytes] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    @classmethod
    def new(cls, number: int) -> Conn:
        commands, inbox = trio.open_memory_channel[Pending](math.inf)
        return cls(number, commands, inbox)

    def touch(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def until(self, predicate: Callable[[], bool], within: float) -> None:
        """Wait until ``predicate()`` holds, at most ``within`` seconds (else ``TooSlowError``)."""
        with trio.fail_after(within):
            while not predicate():
                await self.changed.wait()

    @property
    def ended(self) -> bool:
        """Whether teardown has run (the connection's last step in the app)."""
        return bool(self.teardowns)


# The app: a scripted handler ----------------------------------------------------------------------

STOP = object()


def lifecycle_app(conns: dict[int, Conn], **config: Any) -> TrioWeb:
    """An app whose handler at ``/fuzz/<number>`` runs the commands of ``conns[number]``.

    The handler opens a nursery and runs each command in its own task; a command that raises
    ends the handler with that exception (nothing is caught: "swallow nothing"), and ``return``
    cancels the nursery's children and returns. Its ``finally`` and the teardown hook count
    themselves in the connection's record.
    """
    app = TrioWeb(__name__)
    app.config.update(config)

    @app.websocket("/fuzz/<int:number>")
    async def fuzz(number: int) -> None:
        conn = conns[number]
        conn.started += 1
        conn.touch()
        try:
            async with trio.open_nursery() as nursery:
                async for pending in conn.inbox:
                    try:
                        value = await _perform(conn, nursery, pending.command)
                    except BaseException as error:
                        pending.finish(outcome.Error(error))
                        raise
                    pending.finish(outcome.Value(value))
                    if value is STOP:
                        nursery.cancel_scope.cancel()
                        break
        finally:
            conn.seen_close = (websocket.close_code, websocket.close_reason)
            if websocket.close_code is not None:
                # Shielded cleanup meets the closed websocket: send() raises WebsocketClosed
                # with the close code and reason (Cancelled stays out of the shield).
                with trio.CancelScope(shield=True):
                    try:
                        await websocket.send("from the finally")
                    except WebsocketClosed as closed:
                        conn.closed_error = (closed.code, closed.reason)
            conn.finally_ran += 1
            conn.touch()

    @app.teardown_websocket
    async def count_teardown(error: BaseException | None) -> None:
        conn = conns[websocket.view_args["number"]]
        conn.teardowns.append(error)
        conn.touch()

    return app


async def _perform(conn: Conn, nursery: trio.Nursery, command: tuple[Any, ...]) -> Any:
    kind, *args = command
    if kind == "accept":
        await websocket.accept(subprotocol=args[0])
    elif kind == "receive":
        message = await websocket.receive()
        conn.received.append(message)
        conn.touch()
        return message
    elif kind == "send":
        await websocket.send(args[0])
        conn.sent.append(args[0])
        conn.touch()
    elif kind == "close":
        await websocket.close(*args)
    elif kind == "raise":
        await trio.lowlevel.checkpoint()
        raise Boom(f"the handler of connection {conn.number} was told to raise")
    elif kind == "return":
        await trio.lowlevel.checkpoint()
        return STOP
    else:
        assert kind == "spawn", command
        await nursery.start(_child, conn, *args)
    return None


async def _child(
    conn: Conn, role: str, message: str | bytes, *, task_status: trio.TaskStatus[None]
) -> None:
    """A task of the handler's nursery: a sender sends ``message`` and then waits forever; a
    receiver receives forever. Either ends only when cancelled or its websocket call raises."""
    conn.children += 1
    conn.touch()
    try:
        if role == "sender":
            await websocket.send(message)
            conn.sent.append(message)
            conn.touch()
            task_status.started()
            await trio.sleep_forever()
        task_status.started()
        while True:
            conn.received.append(await websocket.receive())
            conn.touch()
    finally:
        conn.children -= 1
        conn.touch()


# Clients ------------------------------------------------------------------------------------------


class Closed(Exception):
    """The client saw the app's close (``code``, ``reason``), whichever client it was."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@dataclass
class Client:
    """The client side of one connection: an actor task that owns the websocket."""

    commands: trio.MemorySendChannel[Pending]
    connected: Pending
    #: The outcome of the actor itself (what leaving the websocket raised, if anything).
    left: Pending


Connect = Callable[[trio.Nursery, Conn], Awaitable[Client]]


async def _serve_commands(
    inbox: trio.MemoryReceiveChannel[Pending], run: Callable[..., Awaitable[Any]]
) -> None:
    """Run the client's commands until ``leave``."""
    async for pending in inbox:
        if pending.command[0] == "leave":
            pending.finish(outcome.Value(None))
            return
        try:
            value = await run(*pending.command)
        except Exception as error:
            pending.finish(outcome.Error(error))
            continue
        except BaseException as error:
            pending.finish(outcome.Error(error))
            raise
        pending.finish(outcome.Value(value))


Body = Callable[[trio.MemoryReceiveChannel[Pending], Pending], Awaitable[None]]


def _start_actor(nursery: trio.Nursery, body: Body) -> Client:
    commands, inbox = trio.open_memory_channel[Pending](math.inf)
    connected = Pending(("connect",))
    left = Pending(("left",))

    def end(result: outcome.Outcome[None]) -> None:
        if not connected.done.is_set():
            connected.finish(result if isinstance(result, outcome.Error) else _never_connected())
        left.finish(result)

    async def actor() -> None:
        try:
            await body(inbox, connected)
        except Exception as error:
            end(outcome.Error(error))
            return
        except BaseException as error:
            end(outcome.Error(error))
            raise
        end(outcome.Value(None))

    nursery.start_soon(actor)
    return Client(commands, connected, left)


def _never_connected() -> outcome.Outcome[Any]:
    return outcome.Error(AssertionError("the client ended without connecting or being rejected"))


def through_test_client(client: Any) -> Connect:
    """Connections through ``client`` (an open ``app.test_client()``)."""
    from trioweb.testing import WebsocketDisconnectError, WebsocketResponseError

    async def connect(nursery: trio.Nursery, conn: Conn) -> Client:
        async def body(inbox: trio.MemoryReceiveChannel[Pending], connected: Pending) -> None:
            try:
                async with client.websocket(
                    f"/fuzz/{conn.number}", subprotocols=list(SUBPROTOCOLS)
                ) as ws:
                    connected.finish(outcome.Value(("accepted", ws.subprotocol)))

                    async def run(kind: str, *args: Any) -> Any:
                        try:
                            if kind == "send":
                                return await ws.send(args[0])
                            if kind == "receive":
                                return await ws.receive()
                            if kind == "close":
                                return await ws.close(*args)
                            # No transport in memory: a client that vanishes, or resets its
                            # connection, is what a server reports for either, a disconnect
                            # with 1006.
                            assert kind in ("vanish", "reset"), kind
                            return await ws.close(1006, "")
                        except WebsocketDisconnectError as closed:
                            raise Closed(closed.code, closed.reason) from closed
                        except Boom as boom:  # re-raised by the test client: note the close
                            boom.client_close = (ws.close_code, ws.close_reason)  # type: ignore[attr-defined]
                            raise

                    await _serve_commands(inbox, run)
            except WebsocketResponseError as rejected:
                connected.finish(outcome.Value(("rejected", rejected.response.status_code)))

        return _start_actor(nursery, body)

    return connect


def through_trio_websocket(host: str, port: int) -> Connect:
    """Connections to a real server at ``host:port`` with trio-websocket, on a TCP stream the
    client owns, so that it can vanish (close it without a close frame) or reset it."""
    import socket
    import struct

    from trio_websocket import ConnectionClosed, ConnectionRejected, wrap_client_stream

    async def connect(nursery: trio.Nursery, conn: Conn) -> Client:
        async def body(inbox: trio.MemoryReceiveChannel[Pending], connected: Pending) -> None:
            async with await trio.open_tcp_stream(host, port) as stream:
                try:
                    async with trio.open_nursery() as ws_nursery:
                        try:
                            ws = await wrap_client_stream(
                                ws_nursery,
                                stream,
                                host,
                                f"/fuzz/{conn.number}",
                                subprotocols=list(SUBPROTOCOLS),
                                # Room for every message the app may have in flight, so that
                                # the client's reader reaches (and answers) a close behind
                                # them: with its default of 1 it would stop reading until the
                                # test receives, and the handler would wait for the answer.
                                message_queue_size=CLIENT_QUEUE,
                            )
                        except ConnectionRejected as rejected:  # (or from its reader task)
                            connected.finish(outcome.Value(("rejected", rejected.status_code)))
                            return
                        connected.finish(outcome.Value(("accepted", ws.subprotocol)))

                        async def run(kind: str, *args: Any) -> Any:
                            try:
                                if kind == "send":
                                    return await ws.send_message(args[0])
                                if kind == "receive":
                                    return await ws.get_message()
                                if kind == "close":
                                    return await ws.aclose(*args)
                                if kind == "reset":
                                    stream.socket.setsockopt(
                                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                    )
                                assert kind in ("vanish", "reset"), kind
                                return await stream.aclose()
                            except ConnectionClosed as closed:
                                reason = closed.reason
                                raise Closed(reason.code, reason.reason or "") from closed

                        await _serve_commands(inbox, run)
                        ws_nursery.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    if len(group.exceptions) != 1:
                        raise
                    error = group.exceptions[0]
                    if not isinstance(error, ConnectionRejected):
                        raise error from None
                    connected.finish(outcome.Value(("rejected", error.status_code)))

        return _start_actor(nursery, body)

    return connect
