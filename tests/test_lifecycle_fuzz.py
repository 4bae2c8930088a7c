"""The websocket lifecycle under any interleaving (issue 10, item 4): a Hypothesis state machine
drives a client and a scripted handler step by step, and checks after every step what trioweb
documents (docs/howto/websockets.rst).

How it runs. A ``RuleBasedStateMachine`` is synchronous; Trio is not. Each example gets a Trio
loop of its own, ``trio.run`` in a thread (``_lifecycle.LoopThread``), and each step runs there
as a task (``LoopThread.call``) while pytest's thread waits, at most ``REAL_BOUND`` real seconds.
So no state leaks from one example to the next, the test functions are sync (pytest-trio's
trio mode leaves them alone), and Hypothesis shrinks and prints a failing sequence of steps as
usual. The app, its handler and the client are *actors*: tasks that run the commands the steps
send them, so the test decides every interleaving, and Trio's scheduler only decides what
happens within a step.

Time. Through the test client the loop runs on a ``MockClock``: time stands still between
steps, and during a step it jumps ahead as soon as every task is blocked (autojump). A wait that
should end but does not therefore reaches its ``trio.fail_after`` at once, in virtual time, and
fails the example (``TooSlowError``); the disconnect listener's delay costs no real time; and
the ``time passes`` step lets the listener take over from a handler that stays away from
``receive()``. Through a real server (``LifecycleOverHypercorn``) time is real, the bounds are
real seconds, and every wait is still bounded.

The model. For the current connection the machine keeps what each side has done: the messages
sent and received, whether and how each side closed, whether the handler has ended. From it,
each step knows which outcomes must follow at once (a handler waiting in ``receive()`` gets the
message the client just sent; a client that closes sees the handler end), and what they must be.
Invariants checked:

* no hang: every outcome the model expects arrives within the bound;
* the handler's ``finally`` and the ``teardown_websocket`` hook run exactly once per connection,
  the hook with the handler's exception when it raised one, else ``None``;
* no task outlives its connection: the handler's children are counted (none left once it has
  ended), and through the test client the loop's whole task tree is back to its size before the
  connection;
* close codes as documented: handler close -> the client sees its code and reason; return after
  accept -> 1000; exception after accept -> 1011 (and the test client re-raises it); close before
  accept -> HTTP 403; exception or return before accept -> HTTP 500; client close -> the handler
  sees its code and reason (stock Hypercorn: 1006 for any client close, as documented); a client
  that vanishes or resets -> 1006; and once closed, a ``send()`` in the handler's shielded
  cleanup raises ``WebsocketClosed`` with that code and reason;
* no message lost, duplicated or reordered: what each side received is a prefix of what the
  other sent, and a side that keeps receiving gets every message the other sent before its
  close, in order.

Budget: ``HYPOTHESIS_PROFILE`` picks one of the profiles registered below. ``default``, in the
normal suite: 40 examples through the test client, 8 through each real server, derandomised (the
same examples every run, so CI is deterministic) and with no example database. ``deep``, on
demand (``HYPOTHESIS_PROFILE=deep``, ``tox -e fuzz``; see the README): 2,000 and 100 examples,
a fresh seed each run, failures saved in ``.hypothesis/`` and replayed first next time. Either
way a failure prints the shrunk sequence of steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import _servers
import outcome
import pytest
import trio
import trio.testing
from _e2e import served
from _lifecycle import (
    SUBPROTOCOLS,
    Boom,
    Client,
    Closed,
    Conn,
    Connect,
    LoopThread,
    Pending,
    lifecycle_app,
    task_count,
    through_test_client,
    through_trio_websocket,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from trioweb import WebsocketClosed

# Profiles -------------------------------------------------------------------------------------

#: Examples per profile: (through the test client, through each real server).
EXAMPLES = {"default": (40, 8), "deep": (2000, 100)}
for _name in EXAMPLES:
    settings.register_profile(
        f"lifecycle-{_name}",
        deadline=None,
        derandomize=_name != "deep",
        database=None if _name != "deep" else settings.default.database,
        stateful_step_count=50,
        suppress_health_check=[HealthCheck.too_slow],
        # One failure, shrunk, is what a report needs; shrinking several costs minutes.
        report_multiple_bugs=_name == "deep",
    )
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
if PROFILE not in EXAMPLES:
    PROFILE = "default"

# Strategies ------------------------------------------------------------------------------------

#: Messages: empty text and empty bytes often, since those are the easiest to lose.
MESSAGES = st.one_of(
    st.just(""), st.just(b""), st.text(max_size=12), st.binary(min_size=1, max_size=12)
)
#: Close codes both sides may send (RFC 6455 7.4; 1004-1006 and 1015 never go on the wire).
CLOSE_CODES = st.one_of(
    st.sampled_from([1000, 1001, 1003, 1007, 1008, 1009, 1010, 1011]), st.integers(3000, 4999)
)
#: Close reasons: at most 123 bytes of UTF-8.
REASONS = st.text(max_size=20).filter(lambda reason: len(reason.encode()) <= 123)
#: The most messages one side has in flight towards the other (below every queue's size).
IN_FLIGHT = 8
#: The test client's bound on each of its waits (virtual seconds): beyond any example's length.
CLIENT_TIMEOUT = 3600.0
#: Connections per example: each one starts when the previous has ended.
CONNECTIONS = 4


@dataclass
class Model:
    """What the machine knows of the current connection."""

    conn: Conn
    client: Client
    #: "connecting" until the client's handshake is answered, "open", then "over" once both
    #: sides are done with the connection.
    phase: str = "connecting"
    #: The close the app sent or will send (the handler's, or the one its end implies).
    server_close: tuple[int, str] | None = None
    #: The handler's own ``close()`` after accept, if it made one.
    own_close: tuple[int, str] | None = None
    raised: bool = False
    #: Whether the test client has re-raised the handler's exception already (it does once).
    reraised: bool = False
    #: Whether the handler has ended (returned or raised).
    handler_done: bool = False
    #: Whether the client closed, vanished or reset, or saw the app's close.
    client_done: bool = False
    client_sent: list[str | bytes] = field(default_factory=list)
    client_received: list[str | bytes] = field(default_factory=list)
    #: The handler's ``receive()`` command while it waits for a message, and the index in
    #: ``client_sent`` of the message it must return.
    waiting: Pending | None = None
    waiting_for: int = 0
    receiver: bool = False
    senders: int = 0

    @property
    def handler_idle(self) -> bool:
        return self.phase != "over" and not self.handler_done and self.waiting is None

    @property
    def unread_by_handler(self) -> int:
        return len(self.client_sent) - len(self.conn.received)

    @property
    def unread_by_client(self) -> int:
        return len(self.conn.sent) - len(self.client_received)


class LifecycleMachine(RuleBasedStateMachine):
    """The lifecycle through the test client (``server = None``) or a real server."""

    #: None: the test client; "stock" or "layer": that server (tests/_servers.py).
    server: ClassVar[str | None] = None
    #: Bound of every wait within a step (virtual seconds on the mock clock).
    BOUND: ClassVar[float] = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.conns: dict[int, Conn] = {}
        self.model: Model | None = None
        self.failed = False
        self.loop = LoopThread(trio.testing.MockClock() if self.server is None else None)
        self.stop = trio.Event()
        self.session_done = trio.Event()
        self.baseline = 0
        try:
            self.loop.call(self._start_session)
        except BaseException:
            self.loop.close()
            raise

    # The loop side -------------------------------------------------------------------------

    async def _start_session(self) -> None:
        """Serve the app (test client or real server) in a task of the loop's host nursery."""
        # On the mock clock the listener's delay costs no real time, but each of its looks
        # costs a turn of the loop while a step waits for a hang's bound: few looks, then.
        delay = 0.25 if self.server is None else 0.02
        app = lifecycle_app(self.conns, DISCONNECT_LISTENER_DELAY=delay)
        nursery = trio.lowlevel.current_task().parent_nursery
        assert nursery is not None
        self.nursery: trio.Nursery = await nursery.start(self._session, app)
        await trio.testing.wait_all_tasks_blocked()
        self.baseline = task_count()

    async def _session(self, app: Any, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        try:
            if self.server is None:
                # The client's own bound applies to each of its waits, and a handshake may
                # wait through many steps of virtual time: the machine bounds every step.
                timeout = CLIENT_TIMEOUT
                async with (
                    app.test_client(timeout=timeout) as client,
                    trio.open_nursery() as nursery,
                ):
                    self.connect: Connect = through_test_client(client)
                    task_status.started(nursery)
                    await self.stop.wait()
            else:
                async with served(app, **_servers.serve_kwargs(self.server)) as http:
                    host, port = str(http.base_url).removeprefix("http://").rstrip("/").split(":")
                    async with trio.open_nursery() as nursery:
                        self.connect = through_trio_websocket(host, int(port))
                        task_status.started(nursery)
                        await self.stop.wait()
        finally:
            self.session_done.set()

    def step(self, afn: Any, *args: Any) -> Any:
        """Run a step in the loop; a failed step marks the example failed."""
        try:
            return self.loop.call(afn, *args)
        except BaseException:
            self.failed = True
            raise

    async def settle(self) -> None:
        """Let every task run until all are blocked (time stands still meanwhile)."""
        await trio.testing.wait_all_tasks_blocked()

    async def to_handler(self, *command: Any) -> Pending:
        model = self.current
        pending = Pending(command)
        model.conn.commands.send_nowait(pending)
        await self.settle()
        return pending

    async def to_client(self, *command: Any) -> outcome.Outcome[Any]:
        pending = Pending(command)
        self.current.client.commands.send_nowait(pending)
        return await pending.outcome(self.BOUND)

    @property
    def current(self) -> Model:
        assert self.model is not None
        return self.model

    # Connections ---------------------------------------------------------------------------

    @initialize()
    def first_connection(self) -> None:
        self.step(self._connect)

    @precondition(lambda self: self.model.phase == "over" and len(self.conns) < CONNECTIONS)
    @rule()
    def next_connection(self) -> None:
        self.step(self._connect)

    async def _connect(self) -> None:
        conn = Conn.new(len(self.conns))
        self.conns[conn.number] = conn
        client = await self.connect(self.nursery, conn)
        self.model = Model(conn, client)
        await conn.until(lambda: conn.started == 1, self.BOUND)
        await self.settle()
        assert not client.connected.done.is_set(), "the handshake was answered by nobody"

    async def _accepted(self, subprotocol: str | None) -> None:
        """The handler accepted: the client's handshake must complete with ``subprotocol``."""
        model = self.current
        if model.phase == "connecting":
            result = await model.client.connected.outcome(self.BOUND)
            assert result.unwrap() == ("accepted", subprotocol)
            model.phase = "open"

    async def _rejected(self, status: int) -> None:
        """The handler refused the handshake: the client gets ``status``, the handler ends."""
        model = self.current
        result = await model.client.connected.outcome(self.BOUND)
        assert result.unwrap() == ("rejected", status)
        model.client_done = model.handler_done = True
        await model.conn.until(lambda: model.conn.finally_ran > 0, self.BOUND)
        assert model.conn.seen_close == (None, None), model.conn.seen_close
        await self._over()

    async def _over(self) -> None:
        """The connection has ended on both sides: check its ending, let the client go."""
        model = self.current
        conn = model.conn
        await conn.until(lambda: conn.ended and conn.children == 0, self.BOUND)
        if model.waiting is not None:  # it was waiting in receive() when the client left
            result = await model.waiting.outcome(self.BOUND)
            assert isinstance(result, outcome.Error), result
            assert isinstance(result.error, trio.Cancelled), result.error
            model.waiting = None
        model.phase = "over"
        assert conn.started == 1
        assert conn.finally_ran == 1, "the handler's finally did not run exactly once"
        assert len(conn.teardowns) == 1, f"teardown ran {len(conn.teardowns)} times"
        [error] = conn.teardowns
        if model.raised:
            # Raised in the handler's nursery: in a group of one before accept (the pipeline
            # keeps what the handler raised), alone after accept (what closed with 1011).
            if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                [error] = error.exceptions
            assert isinstance(error, Boom), error
        else:
            assert error is None, error
        if not model.client.left.done.is_set():  # (a rejected client has gone already)
            result = await self.to_client("leave")
            assert result.unwrap() is None
        left = await model.client.left.outcome(self.BOUND)
        assert left.unwrap() is None
        if self.server is None:
            await self.settle()
            assert task_count() == self.baseline, "a task outlived its connection"

    # Handler actions -----------------------------------------------------------------------

    @precondition(lambda self: self.model.handler_idle)
    @rule(subprotocol=st.sampled_from([None, *SUBPROTOCOLS]))
    def handler_accepts(self, subprotocol: str | None) -> None:
        self.step(self._handler_accepts, subprotocol)

    async def _handler_accepts(self, subprotocol: str | None) -> None:
        pending = await self.to_handler("accept", subprotocol)
        result = await pending.outcome(self.BOUND)
        if await self._closed_already(result):
            return
        assert result.unwrap() is None
        await self._accepted(subprotocol)

    async def _closed_already(self, result: outcome.Outcome[Any]) -> bool:
        """After its own close, an action raises WebsocketClosed with that close, which ends the
        handler quietly."""
        model = self.current
        if model.server_close is None:
            return False
        assert isinstance(result, outcome.Error), result
        closed = result.error
        assert isinstance(closed, WebsocketClosed), closed
        assert (closed.code, closed.reason) == model.server_close
        model.handler_done = True
        await model.conn.until(lambda: model.conn.ended, self.BOUND)
        return True

    @precondition(lambda self: self.model.handler_idle and not self.model.receiver)
    @rule()
    def handler_receives(self) -> None:
        self.step(self._handler_receives)

    async def _handler_receives(self) -> None:
        model = self.current
        index = len(model.conn.received)  # of the message it must return, if any
        pending = await self.to_handler("receive")
        if model.phase == "connecting":
            await self._accepted(None)
        if model.server_close is not None:
            result = await pending.outcome(self.BOUND)
            if isinstance(result, outcome.Value):  # one the listener had queued before
                assert result.value == model.client_sent[index]
            else:
                await self._closed_already(result)
        elif len(model.client_sent) > index:
            result = await pending.outcome(self.BOUND)
            assert result.unwrap() == model.client_sent[index]
        else:
            if self.server is None:
                assert not pending.done.is_set(), pending.result
            model.waiting, model.waiting_for = pending, len(model.client_sent)

    @precondition(lambda self: self.model.handler_idle and self.model.unread_by_client < IN_FLIGHT)
    @rule(message=MESSAGES)
    def handler_sends(self, message: str | bytes) -> None:
        self.step(self._handler_sends, message)

    async def _handler_sends(self, message: str | bytes) -> None:
        pending = await self.to_handler("send", message)
        result = await pending.outcome(self.BOUND)
        if await self._closed_already(result):
            return
        assert result.unwrap() is None
        await self._accepted(None)

    # Refusing the handshake ends the connection at once: one rule for the three ways (close,
    # raise, return), so that most connections get accepted and have a life to explore.
    @precondition(lambda self: self.model.handler_idle and self.model.phase == "connecting")
    @rule(how=st.sampled_from(["close", "raise", "return"]), code=CLOSE_CODES)
    def handler_refuses(self, how: str, code: int) -> None:
        if how == "close":
            self.step(self._handler_closes, code, "")
        else:
            self.step(self._handler_ends, how)

    @precondition(lambda self: self.model.handler_idle and self.model.phase == "open")
    @rule(code=CLOSE_CODES, reason=REASONS)
    def handler_closes(self, code: int, reason: str) -> None:
        self.step(self._handler_closes, code, reason)

    async def _handler_closes(self, code: int, reason: str) -> None:
        model = self.current
        pending = await self.to_handler("close", code, reason)
        result = await pending.outcome(self.BOUND)
        assert result.unwrap() is None
        if model.phase == "connecting":
            await self._rejected(403)
        elif model.server_close is None:
            model.server_close = model.own_close = (code, reason)
            if self.server is not None:
                # A real client answers the close at once, and the disconnect that completes
                # the closing handshake cancels the handler (the test client answers when the
                # test receives the close).
                model.handler_done = True
                await model.conn.until(lambda: model.conn.ended, self.BOUND)

    @precondition(lambda self: self.model.handler_idle and self.model.phase == "open")
    @rule()
    def handler_raises(self) -> None:
        self.step(self._handler_ends, "raise")

    @precondition(lambda self: self.model.handler_idle and self.model.phase == "open")
    @rule()
    def handler_returns(self) -> None:
        self.step(self._handler_ends, "return")

    async def _handler_ends(self, how: str) -> None:
        model = self.current
        pending = await self.to_handler(how)
        result = await pending.outcome(self.BOUND)
        if how == "raise":
            assert isinstance(result, outcome.Error)
            assert isinstance(result.error, Boom), result.error
            model.raised = True
        model.handler_done = True
        if model.phase == "connecting":
            await self._rejected(500)
            return
        if model.server_close is None:
            model.server_close = (1011, "Internal Server Error") if how == "raise" else (1000, "")
        await model.conn.until(lambda: model.conn.ended and model.conn.children == 0, self.BOUND)

    @precondition(
        lambda self: (
            self.model.handler_idle
            and self.model.phase == "open"
            and self.model.server_close is None
            and not self.model.receiver
        )
    )
    @rule()
    def handler_spawns_a_receiver(self) -> None:
        self.step(self._handler_spawns, "receiver", "")

    @precondition(
        lambda self: (
            self.model.handler_idle
            and self.model.phase == "open"
            and self.model.server_close is None
            and self.model.unread_by_client < IN_FLIGHT
        )
    )
    @rule(message=MESSAGES)
    def handler_spawns_a_sender(self, message: str | bytes) -> None:
        self.step(self._handler_spawns, "sender", message)

    async def _handler_spawns(self, role: str, message: str | bytes) -> None:
        model = self.current
        pending = await self.to_handler("spawn", role, message)
        result = await pending.outcome(self.BOUND)
        assert result.unwrap() is None
        if role == "receiver":
            model.receiver = True
            await self._delivered()
        else:
            model.senders += 1
        assert model.conn.children == model.senders + model.receiver

    async def _delivered(self) -> None:
        """Whoever receives in the handler gets every message the client has sent."""
        model = self.current
        conn = model.conn
        if model.waiting is not None and len(model.client_sent) > model.waiting_for:
            result = await model.waiting.outcome(self.BOUND)
            assert result.unwrap() == model.client_sent[model.waiting_for]
            model.waiting = None
        if model.receiver:
            await conn.until(lambda: model.unread_by_handler == 0, self.BOUND)

    # Time ----------------------------------------------------------------------------------

    @precondition(lambda self: self.model.phase != "over" or len(self.conns) == CONNECTIONS)
    @rule()
    def time_passes(self) -> None:
        """The handler stays away from receive() long enough for the listener to take over."""
        self.step(self._time_passes)

    async def _time_passes(self) -> None:
        if self.current.phase == "over":  # (the one step left once the last connection ended)
            await trio.lowlevel.checkpoint()
            return
        await trio.sleep(1 if self.server is None else 0.05)

    # Client actions ------------------------------------------------------------------------

    def _client_may_act(self) -> bool:
        model = self.current
        return model.phase == "open" and not model.client_done

    @precondition(
        lambda self: (
            self._client_may_act()
            and (self.server is None or self.model.server_close is None)
            and self.model.unread_by_handler < IN_FLIGHT
        )
    )
    @rule(message=MESSAGES)
    def client_sends(self, message: str | bytes) -> None:
        self.step(self._client_sends, message)

    async def _client_sends(self, message: str | bytes) -> None:
        model = self.current
        result = await self.to_client("send", message)
        if model.handler_done:
            # (Test client only.) The handler has ended, its close not read yet: the send
            # reports that close, or re-raises what the handler raised.
            assert model.server_close is not None
            assert isinstance(result, outcome.Error), result
            if model.raised and not model.reraised:
                assert isinstance(result.error, Boom), result.error
                model.reraised = True
            else:
                assert isinstance(result.error, Closed), result.error
                assert (result.error.code, result.error.reason) == model.server_close
            return
        assert result.unwrap() is None
        model.client_sent.append(message)
        await self._delivered()
        if model.receiver and model.own_close is not None:
            # (Test client only.) A receiver child that was waiting before the handler's own
            # close gets the message; its next receive() raises WebsocketClosed, which ends
            # the handler quietly.
            model.handler_done = True
            await model.conn.until(lambda: model.conn.ended, self.BOUND)

    @precondition(
        lambda self: (
            self._client_may_act()
            and (self.model.unread_by_client > 0 or self.model.server_close is not None)
        )
    )
    @rule()
    def client_receives(self) -> None:
        self.step(self._client_receives)

    async def _client_receives(self) -> None:
        model = self.current
        result = await self.to_client("receive")
        if model.unread_by_client > 0:
            model.client_received.append(result.unwrap())
            assert model.client_received == model.conn.sent[: len(model.client_received)]
            return
        assert model.server_close is not None
        if self.server is None and model.raised and not model.reraised:
            # The test client re-raises the handler's exception, after the close it caused.
            assert isinstance(result, outcome.Error)
            assert isinstance(result.error, Boom), result.error
            assert result.error.client_close == model.server_close  # type: ignore[attr-defined]
        else:
            assert isinstance(result, outcome.Error), result
            assert isinstance(result.error, Closed), result.error
            assert (result.error.code, result.error.reason) == model.server_close
        model.client_done = True
        await self._handler_sees(None)
        await self._over()

    @precondition(lambda self: self._client_may_act())
    @rule(code=CLOSE_CODES, reason=REASONS)
    def client_closes(self, code: int, reason: str) -> None:
        self.step(self._client_leaves, "close", code, reason)

    @precondition(lambda self: self._client_may_act())
    @rule()
    def client_vanishes(self) -> None:
        self.step(self._client_leaves, "vanish", 1006, "")

    @precondition(lambda self: self._client_may_act() and self.server is not None)
    @rule()
    def client_resets(self) -> None:
        self.step(self._client_leaves, "reset", 1006, "")

    async def _client_leaves(self, how: str, code: int, reason: str) -> None:
        model = self.current
        handler_was_done = model.handler_done
        result = await self.to_client(*((how, code, reason) if how == "close" else (how,)))
        if self.server is None and model.raised and not model.reraised:
            # The test client's close() re-raises what the handler raised.
            assert isinstance(result, outcome.Error)
            assert isinstance(result.error, Boom), result.error
        else:
            assert result.unwrap() is None
        model.client_done = True
        if handler_was_done:
            await self._handler_sees(None)
        elif self.server == "stock":
            await self._handler_sees((1006, ""))  # documented: stock reports 1006 for any close
        else:
            await self._handler_sees((code, reason))
        await self._over()

    async def _handler_sees(self, client_close: tuple[int, str] | None) -> None:
        """The handler ends (if it has not), and its ``finally`` saw its own close if it made
        one, else ``client_close`` (``None``: it ended before any close)."""
        model = self.current
        conn = model.conn
        await conn.until(lambda: conn.finally_ran > 0, self.BOUND)
        expected = model.own_close or client_close or (None, None)
        assert conn.seen_close == expected, (conn.seen_close, expected)
        if expected != (None, None):
            assert conn.closed_error == expected, (conn.closed_error, expected)

    # Invariants ----------------------------------------------------------------------------

    @invariant()
    def nothing_lost_or_reordered(self) -> None:
        if self.model is None:
            return
        model = self.current
        conn = model.conn
        assert conn.received == model.client_sent[: len(conn.received)]
        assert model.client_received == conn.sent[: len(model.client_received)]

    @invariant()
    def cleanup_at_most_once(self) -> None:
        for conn in self.conns.values():
            assert conn.finally_ran <= 1
            assert len(conn.teardowns) <= 1
            assert conn.children >= 0

    def teardown(self) -> None:
        try:
            if not self.failed and self.model is not None and self.model.phase != "over":
                # Every example ends its connection, and checks that ending too.
                if self.model.phase == "connecting":
                    self.step(self._handler_ends, "return")
                else:
                    self.step(self._client_leaves, "vanish", 1006, "")
            if not self.failed:
                self.step(self._end_session)
        finally:
            self.loop.close()

    async def _end_session(self) -> None:
        self.stop.set()
        with trio.fail_after(self.BOUND):
            await self.session_done.wait()


class LifecycleOverHypercorn(LifecycleMachine):
    """The same machine through a real server and trio-websocket (``server`` set per test)."""

    BOUND = 2.0


def _run(machine: type[LifecycleMachine], examples: int) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(settings.get_profile(f"lifecycle-{PROFILE}"), max_examples=examples),
    )


def test_lifecycle_through_the_test_client() -> None:
    """Any sequence of client and handler actions keeps the documented lifecycle."""
    _run(LifecycleMachine, EXAMPLES[PROFILE][0])


@pytest.mark.parametrize("server", ["stock", "layer"])
def test_lifecycle_through_a_real_server(server: str) -> None:
    """A sample of the same sequences through real Hypercorn (stock and the layer)."""
    machine = type(f"LifecycleOver_{server}", (LifecycleOverHypercorn,), {"server": server})
    _run(machine, EXAMPLES[PROFILE][1])
