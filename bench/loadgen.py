"""The load generator: one process, one scenario, one JSON line of results.

``python -m bench.loadgen SCENARIO --url ws://127.0.0.1:PORT [--url2 ws://...] [options] [--json]
[--control]``

It drives one server with picows on uvloop (``--client picows``, the default): callbacks, no
task per message, so one core of client easily outruns one core of server. ``--client
trio-websocket`` is a slow pure-Trio fallback with the ``echo`` and ``hold`` scenarios only,
for the smoke test in environments without picows.

Every run has three phases:

1. *Warm-up*: connect, exercise the code paths once. Not measured.
2. *Timed*: the measured window. With ``--control`` it begins when the runner answers the
   ``GO`` line we print (after sampling the server's CPU and memory) and ends with a ``DONE``
   line, which the runner answers after sampling again. The client's own CPU time is taken
   around the same window.
3. *Cleanup*: close every connection; then the JSON result line.

Scenarios (``ops`` in the result is what the runner divides the server's CPU time by):

``echo``      N connections, each in a closed loop (send, wait for the echo), alternating text
              and binary 32-byte messages; a reply of the wrong type counts as an error.
``handshake`` open and close connections with a small concurrency.
``idle``      open N connections to ``/ws`` and hold them; the runner measures the RSS.
``fanout``    N ``/sub`` connections, one ``/pub``; publish M messages one at a time, each
              waited for until every subscriber has it. With ``--url2`` (two workers sharing
              a broadcast backend) the subscribers are split evenly over the two servers and
              the publisher is on ``--url``.
``bytes1m``   one connection echoing 1 MiB binary messages.
``hold``      load held: N idle connections to ``/ws`` (nothing sent after the handshake), with a
              ``SAMPLE`` exchange before and after opening them (the runner reads the server's
              RSS: memory per idle connection); then ``--active`` echo clients in closed loops
              during the timed window, while ``--concurrency`` workers open and close new
              connections as fast as they can. Connections that fail to open count as errors,
              and so do idle connections the server dropped during the hold.

Everything is bounded: ``--duration`` and a count limit for the timed loops, ``--timeout`` for
the whole process, and 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

TEXT = b"t" * 32
BINARY = bytes(range(32))
MiB = 1 << 20

Result = dict[str, Any]
#: The scenarios, as the command line names them.
SCENARIOS = ("echo", "handshake", "idle", "fanout", "bytes1m", "hold")


# Shared helpers ------------------------------------------------------------------------------


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit (10,000 connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0..1) of ``values``, ``None`` if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_stats(prefix: str, nanoseconds: Sequence[int]) -> Result:
    """``{prefix}_p50_us`` and ``{prefix}_p99_us`` of latencies measured in nanoseconds."""
    p50 = percentile(nanoseconds, 0.50)
    p99 = percentile(nanoseconds, 0.99)
    return {
        f"{prefix}_p50_us": None if p50 is None else p50 / 1000,
        f"{prefix}_p99_us": None if p99 is None else p99 / 1000,
    }


class Window:
    """The timed phase: its wall time and this process's CPU time, and the ``GO``/``DONE``
    exchange with the runner when ``control`` is set.

    ``readline`` reads one line from stdin without blocking the event loop (a worker thread).
    """

    def __init__(self, control: bool, readline: Callable[[], Awaitable[str]]) -> None:
        self.control = control
        self.readline = readline
        self.started = self.ended = 0.0
        self.cpu_started = self.cpu_ended = 0.0

    async def begin(self) -> None:
        """Let the runner sample the server, then start the clock."""
        if self.control:
            print("GO", flush=True)
            await self.readline()
        self.cpu_started = cpu_seconds()
        self.started = time.perf_counter()

    async def end(self) -> None:
        """Stop the clock, then let the runner sample the server again."""
        self.ended = time.perf_counter()
        self.cpu_ended = cpu_seconds()
        if self.control:
            print("DONE", flush=True)
            await self.readline()

    async def sample(self) -> None:
        """Let the runner sample the server outside the timed window (``SAMPLE``)."""
        if self.control:
            print("SAMPLE", flush=True)
            await self.readline()

    def stats(self) -> Result:
        elapsed = self.ended - self.started
        cpu = self.cpu_ended - self.cpu_started
        return {
            "elapsed_s": elapsed,
            "client_cpu_s": cpu,
            "client_cpu_pct": 100 * cpu / elapsed if elapsed > 0 else None,
        }


# picows on uvloop ------------------------------------------------------------------------------


def _picows_scenarios() -> dict[str, Callable[[argparse.Namespace, Window], Awaitable[Result]]]:
    """The picows scenarios; picows is imported only when one of them is used."""
    from picows import (
        WSCloseCode,
        WSError,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        ws_connect,
    )

    # picows's send_close() sends 1005 on the wire by default, which RFC 6455 (7.4.1) forbids;
    # a strict server answers it with 1002 (and trioweb's layer logs each one): close with 1000.
    normal = WSCloseCode.OK

    loop = asyncio.get_running_loop()

    async def connect(url: str, listener: Callable[[], WSListener]) -> WSTransport:
        transport, _ = await ws_connect(listener, url, websocket_handshake_timeout=30)
        return transport

    async def connect_many(
        url: str, count: int, listener: Callable[[], WSListener], concurrency: int = 64
    ) -> list[WSTransport]:
        """Open ``count`` connections, at most ``concurrency`` handshakes at a time (the
        server's listen backlog is 100)."""
        transports: list[WSTransport] = []
        remaining = iter(range(count))

        async def worker() -> None:
            for _ in remaining:
                transports.append(await connect(url, listener))

        await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
        return transports

    async def close_all(transports: Sequence[WSTransport], grace: float = 30) -> None:
        """Close handshakes for all, then wait (bounded) for the server to hang up."""
        for transport in transports:
            transport.send_close(normal)
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(*(t.wait_disconnected() for t in transports))
        except TimeoutError:
            for transport in transports:
                transport.disconnect(graceful=False)

    class EchoClient(WSListener):
        """A closed loop on one connection: each reply triggers the next message."""

        def __init__(self, payload_size: int | None = None) -> None:
            self.transport: WSTransport | None = None
            self.payload = None if payload_size is None else bytes(payload_size)
            self.sent_at = 0
            self.count = 0
            self.limit = 0
            self.deadline = 0
            self.errors = 0
            self.latencies: list[int] | None = None
            self.finished: asyncio.Future[None] | None = None

        def on_ws_connected(self, transport: WSTransport) -> None:
            self.transport = transport

        def run(self, limit: int, deadline: float, record: bool) -> asyncio.Future[None]:
            """Start a loop of at most ``limit`` round trips, none started after ``deadline``
            (``time.perf_counter()``); the future is done when the last reply arrived."""
            self.count, self.limit = 0, limit
            self.deadline = int(deadline * 1e9)
            self.latencies = [] if record else None
            self.finished = loop.create_future()
            self._send()
            return self.finished

        def _send(self) -> None:
            assert self.transport is not None
            self.sent_at = time.perf_counter_ns()
            if self.payload is not None:
                self.transport.send(WSMsgType.BINARY, self.payload)
            elif self.count % 2:
                self.transport.send(WSMsgType.BINARY, BINARY)
            else:
                self.transport.send(WSMsgType.TEXT, TEXT)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            now = time.perf_counter_ns()
            if frame.msg_type is WSMsgType.CLOSE or self.finished is None:
                return
            if self.payload is not None:
                expected = WSMsgType.BINARY
                if frame.payload_size != len(self.payload):
                    self.errors += 1
            else:
                expected = WSMsgType.BINARY if self.count % 2 else WSMsgType.TEXT
            if frame.msg_type is not expected or not frame.fin:
                self.errors += 1
            if self.latencies is not None:
                self.latencies.append(now - self.sent_at)
            self.count += 1
            if self.count >= self.limit or now >= self.deadline:
                self.finished.set_result(None)
                self.finished = None
            else:
                self._send()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if self.finished is not None and not self.finished.done():
                self.finished.set_exception(ConnectionError("the server hung up"))

    async def run_loops(
        clients: Sequence[EchoClient], total: int, duration: float, record: bool
    ) -> None:
        deadline = time.perf_counter() + duration
        per_client = max(1, total // len(clients))
        await asyncio.gather(*(c.run(per_client, deadline, record) for c in clients))

    async def echo(args: argparse.Namespace, window: Window) -> Result:
        clients: list[EchoClient] = []

        def factory() -> EchoClient:
            clients.append(EchoClient())
            return clients[-1]

        transports = await connect_many(args.url + "/ws", args.connections, factory)
        await run_loops(clients, args.warmup * len(clients), 10.0, record=False)
        await window.begin()
        await run_loops(clients, args.max_messages, args.duration, record=True)
        await window.end()
        await close_all(transports)
        latencies = [ns for c in clients for ns in c.latencies or ()]
        stats = window.stats()
        return {
            "connections": len(clients),
            "messages": len(latencies),
            "ops": len(latencies),
            "msgs_per_s": len(latencies) / stats["elapsed_s"],
            **latency_stats("latency", latencies),
            "errors": sum(c.errors for c in clients),
            **stats,
        }

    async def bytes1m(args: argparse.Namespace, window: Window) -> Result:
        client = EchoClient(payload_size=args.size)
        transport = await connect(args.url + "/ws", lambda: client)
        await run_loops([client], args.warmup, 10.0, record=False)
        await window.begin()
        await run_loops([client], args.max_messages, args.duration, record=True)
        await window.end()
        await close_all([transport])
        latencies = client.latencies or []
        stats = window.stats()
        mib = len(latencies) * args.size / MiB
        return {
            "connections": 1,
            "messages": len(latencies),
            "message_bytes": args.size,
            "ops": mib,
            "mib_per_s": mib / stats["elapsed_s"],
            **latency_stats("latency", latencies),
            "errors": client.errors,
            **stats,
        }

    async def handshake(args: argparse.Namespace, window: Window) -> Result:
        url = args.url + "/ws"
        latencies: list[int] = []
        errors = 0

        async def open_close(record: bool) -> None:
            nonlocal errors
            started = time.perf_counter_ns()
            try:
                transport = await connect(url, WSListener)
                transport.send_close(normal)
                async with asyncio.timeout(10):
                    await transport.wait_disconnected()
            except (OSError, TimeoutError, ConnectionError) as error:
                errors += 1
                print(f"handshake failed: {error!r}", file=sys.stderr)
                return
            if record:
                latencies.append(time.perf_counter_ns() - started)

        async def worker(count: int, deadline: float, record: bool) -> None:
            for _ in range(count):
                if time.perf_counter() >= deadline:
                    return
                await open_close(record)

        for _ in range(args.warmup):
            await open_close(record=False)
        await window.begin()
        deadline = time.perf_counter() + args.duration
        per_worker = max(1, args.max_count // args.concurrency)
        await asyncio.gather(*(worker(per_worker, deadline, True) for _ in range(args.concurrency)))
        await window.end()
        stats = window.stats()
        return {
            "concurrency": args.concurrency,
            "connections": len(latencies),
            "ops": len(latencies),
            "conns_per_s": len(latencies) / stats["elapsed_s"],
            **latency_stats("latency", latencies),
            "errors": errors,
            **stats,
        }

    async def idle(args: argparse.Namespace, window: Window) -> Result:
        warm = await connect_many(args.url + "/ws", min(10, args.connections), WSListener)
        await close_all(warm)
        await window.begin()
        transports = await connect_many(args.url + "/ws", args.connections, WSListener)
        await asyncio.sleep(args.settle)  # let the server's handlers reach their steady state
        await window.end()
        stats = window.stats()
        alive = sum(not t.is_disconnected for t in transports)
        await close_all(transports)
        return {
            "connections": alive,
            "ops": alive,
            "conns_per_s": alive / max(stats["elapsed_s"] - args.settle, 1e-9),
            "errors": args.connections - alive,
            **stats,
        }

    async def hold(args: argparse.Namespace, window: Window) -> Result:
        url = args.url + "/ws"
        failures: list[str] = []

        async def try_connect(listener: Callable[[], WSListener]) -> WSTransport | None:
            try:
                return await connect(url, listener)
            except (OSError, TimeoutError, ConnectionError, WSError) as error:
                failures.append(repr(error))
                return None

        async def open_many(count: int, listener: Callable[[], WSListener]) -> list[WSTransport]:
            """Like ``connect_many``, but a connection that fails counts instead of raising."""
            opened: list[WSTransport] = []
            remaining = iter(range(count))

            async def worker() -> None:
                for _ in remaining:
                    transport = await try_connect(listener)
                    if transport is not None:
                        opened.append(transport)

            await asyncio.gather(*(worker() for _ in range(min(64, count))))
            return opened

        warm = await connect_many(url, min(10, args.connections), WSListener)
        await close_all(warm)
        await window.sample()
        idle = await open_many(args.connections, WSListener)
        await asyncio.sleep(args.settle)  # let the server's handlers reach their steady state
        await window.sample()
        clients: list[EchoClient] = []

        def factory() -> EchoClient:
            clients.append(EchoClient())
            return clients[-1]

        active = await connect_many(url, args.active, factory)
        await run_loops(clients, args.warmup * len(clients), 10.0, record=False)

        handshakes: list[int] = []
        stop = False

        async def churn() -> None:
            """Open and close new connections one after another until ``stop``."""
            while not stop:
                started = time.perf_counter_ns()
                transport = await try_connect(WSListener)
                if transport is None:
                    await asyncio.sleep(0.01)  # a refusal is quick: do not spin on it
                    continue
                transport.send_close(normal)
                try:
                    async with asyncio.timeout(10):
                        await transport.wait_disconnected()
                except TimeoutError:
                    failures.append("no close from the server within 10 s")
                    transport.disconnect(graceful=False)
                    continue
                handshakes.append(time.perf_counter_ns() - started)

        await window.begin()
        churners = [asyncio.ensure_future(churn()) for _ in range(args.concurrency)]
        try:
            await run_loops(clients, args.max_messages, args.duration, record=True)
        finally:
            stop = True
            await asyncio.gather(*churners)
        await window.end()
        stats = window.stats()
        alive = sum(not t.is_disconnected for t in idle)
        dropped = len(idle) - alive
        for failure in failures[:10]:
            print(f"connection failed: {failure}", file=sys.stderr)
        await close_all([*idle, *active])
        latencies = [ns for c in clients for ns in c.latencies or ()]
        return {
            "idle_connections": len(idle),
            "active": len(clients),
            "concurrency": args.concurrency,
            "messages": len(latencies),
            "ops": len(latencies),
            "msgs_per_s": len(latencies) / stats["elapsed_s"],
            **latency_stats("latency", latencies),
            "handshakes": len(handshakes),
            "handshakes_per_s": len(handshakes) / stats["elapsed_s"],
            **latency_stats("handshake", handshakes),
            "failed_connections": len(failures),
            "dropped_idle": dropped,
            "errors": len(failures) + dropped + sum(c.errors for c in clients),
            **stats,
        }

    class Subscriber(WSListener):
        def __init__(self, fanout: Fanout) -> None:
            self.fanout = fanout

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            now = time.perf_counter_ns()
            if frame.msg_type is not WSMsgType.CLOSE:
                self.fanout.delivered(frame.msg_type, frame.get_payload_as_bytes(), now)

    class Publisher(WSListener):
        def __init__(self, fanout: Fanout) -> None:
            self.fanout = fanout

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.TEXT and frame.get_payload_as_bytes() == b"ok":
                self.fanout.acknowledged()

    class Fanout:
        """Who got which publish, and when: one publish is in flight at a time."""

        def __init__(self, subscribers: int) -> None:
            self.subscribers = subscribers
            self.seq = -1
            self.sent_at = 0
            self.received = 0
            self.last_at = 0
            self.acked = False
            self.errors = 0
            self.latencies: list[int] | None = None
            self.complete: asyncio.Future[None] = loop.create_future()

        def publish(self, transport: WSTransport, record: bool) -> asyncio.Future[None]:
            self.seq += 1
            self.received, self.acked = 0, False
            self.latencies = [] if record else None
            self.complete = loop.create_future()
            payload = b"%08d" % self.seq + TEXT[8:]
            self.sent_at = time.perf_counter_ns()
            kind = WSMsgType.BINARY if self.seq % 2 else WSMsgType.TEXT
            transport.send(kind, payload)
            return self.complete

        def delivered(self, kind: WSMsgType, payload: bytes, now: int) -> None:
            if int(payload[:8]) != self.seq:
                return  # a late copy of an earlier (warm-up) publish
            if kind is not (WSMsgType.BINARY if self.seq % 2 else WSMsgType.TEXT):
                self.errors += 1
            self.received += 1
            self.last_at = now
            if self.latencies is not None:
                self.latencies.append(now - self.sent_at)
            self._check()

        def acknowledged(self) -> None:
            self.acked = True
            self._check()

        def _check(self) -> None:
            if self.acked and self.received >= self.subscribers and not self.complete.done():
                self.complete.set_result(None)

    async def fanout(args: argparse.Namespace, window: Window) -> Result:
        state = Fanout(args.subscribers)
        # With --url2 (two workers sharing a broadcast backend) half the subscribers are there;
        # the publisher is always on --url.
        urls = [args.url] if args.url2 is None else [args.url, args.url2]
        subs: list[WSTransport] = []
        for i, url in enumerate(urls):
            count = args.subscribers // len(urls) + (i < args.subscribers % len(urls))
            subs += await connect_many(url + "/sub", count, lambda: Subscriber(state))
        pub = await connect(args.url + "/pub", lambda: Publisher(state))
        # Warm up until one publish reaches everyone: by then every /sub handler has registered.
        for attempt in range(args.warmup + 100):
            done = state.publish(pub, record=False)
            try:
                async with asyncio.timeout(5):
                    await done
            except TimeoutError:
                print(f"warm-up publish {attempt}: {state.received} deliveries", file=sys.stderr)
                continue
            if attempt + 1 >= args.warmup:
                break
        else:
            raise RuntimeError("not every subscriber received a warm-up publish")
        latencies: list[int] = []
        until_all: list[int] = []
        errors = 0
        await window.begin()
        deadline = time.perf_counter() + args.duration
        for _ in range(args.publishes):
            done = state.publish(pub, record=True)
            try:
                async with asyncio.timeout(60):
                    await done
            except TimeoutError:
                errors += 1
                break
            until_all.append(state.last_at - state.sent_at)
            latencies.extend(state.latencies or ())
            if time.perf_counter() >= deadline:
                break
        await window.end()
        await close_all([*subs, pub])
        stats = window.stats()
        return {
            "subscribers": args.subscribers,
            "workers": len(urls),
            "publishes": len(until_all),
            "deliveries": len(latencies),
            "ops": len(latencies),
            "deliveries_per_s": len(latencies) / stats["elapsed_s"],
            **latency_stats("all", until_all),
            **latency_stats("delivery", latencies),
            "errors": errors + state.errors,
            **stats,
        }

    return {
        "echo": echo,
        "handshake": handshake,
        "idle": idle,
        "fanout": fanout,
        "bytes1m": bytes1m,
        "hold": hold,
    }


async def _picows_main(args: argparse.Namespace) -> Result:
    loop = asyncio.get_running_loop()

    async def readline() -> str:
        return await loop.run_in_executor(None, sys.stdin.readline)

    window = Window(args.control, readline)
    async with asyncio.timeout(args.timeout):
        return await _picows_scenarios()[args.scenario](args, window)


# trio-websocket (smoke-test fallback) ----------------------------------------------------------


async def _trio_main(args: argparse.Namespace) -> Result:
    import trio
    from trio_websocket import open_websocket_url

    if args.scenario not in ("echo", "hold"):
        raise SystemExit("--client trio-websocket runs only echo and hold; use picows")

    async def readline() -> str:
        return await trio.to_thread.run_sync(sys.stdin.readline)

    window = Window(args.control, readline)
    latencies: list[int] = []
    errors = 0

    async def client(count: int, deadline: float, record: bool) -> None:
        nonlocal errors
        async with open_websocket_url(args.url + "/ws") as ws:
            for i in range(count):
                if time.perf_counter() >= deadline:
                    break
                message: str | bytes = BINARY if i % 2 else TEXT.decode()
                started = time.perf_counter_ns()
                await ws.send_message(message)
                reply = await ws.get_message()
                if record:
                    latencies.append(time.perf_counter_ns() - started)
                if type(reply) is not type(message):
                    errors += 1

    if args.scenario == "hold":
        with trio.fail_after(args.timeout):
            return await _trio_hold(args, window, client, latencies, lambda: errors)
    with trio.fail_after(args.timeout):
        await client(args.warmup, time.perf_counter() + 10, record=False)
        await window.begin()
        deadline = time.perf_counter() + args.duration
        async with trio.open_nursery() as nursery:
            for _ in range(args.connections):
                per_client = max(1, args.max_messages // args.connections)
                nursery.start_soon(client, per_client, deadline, True)
        await window.end()
    stats = window.stats()
    return {
        "connections": args.connections,
        "messages": len(latencies),
        "ops": len(latencies),
        "msgs_per_s": len(latencies) / stats["elapsed_s"],
        **latency_stats("latency", latencies),
        "errors": errors,
        **stats,
    }


async def _trio_hold(
    args: argparse.Namespace,
    window: Window,
    echo: Callable[[int, float, bool], Awaitable[None]],
    latencies: list[int],
    echo_errors: Callable[[], int],
) -> Result:
    """The ``hold`` scenario's phases with trio-websocket (for the smoke test): ``echo`` runs
    one echo client on a connection of its own, putting the round trips it records into
    ``latencies``; ``echo_errors()`` counts the replies of the wrong type so far."""
    import trio
    from trio_websocket import (
        ConnectionClosed,
        HandshakeError,
        WebSocketConnection,
        connect_websocket_url,
        open_websocket_url,
    )

    url = args.url + "/ws"
    failures: list[str] = []
    handshakes: list[int] = []
    idle: list[WebSocketConnection] = []
    limiter = trio.CapacityLimiter(64)

    async def open_idle(readers: trio.Nursery) -> None:
        async with limiter:
            try:
                idle.append(await connect_websocket_url(readers, url))
            except (OSError, HandshakeError) as error:
                failures.append(repr(error))

    async def churn(stop: trio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter_ns()
            try:
                async with open_websocket_url(url):
                    pass
            except (OSError, HandshakeError, ConnectionClosed) as error:
                failures.append(repr(error))
                await trio.sleep(0.01)
                continue
            handshakes.append(time.perf_counter_ns() - started)

    async with trio.open_nursery() as readers:  # the idle connections' reader tasks
        await window.sample()
        async with trio.open_nursery() as opening:
            for _ in range(args.connections):
                opening.start_soon(open_idle, readers)
        await trio.sleep(args.settle)
        await window.sample()
        await echo(args.warmup, time.perf_counter() + 10, False)
        await window.begin()
        deadline = time.perf_counter() + args.duration
        stop = trio.Event()
        async with trio.open_nursery() as load:
            for _ in range(args.concurrency):
                load.start_soon(churn, stop)
            async with trio.open_nursery() as clients:
                for _ in range(args.active):
                    clients.start_soon(echo, args.max_messages // args.active, deadline, True)
            stop.set()
        await window.end()
        dropped = sum(ws.closed is not None for ws in idle)
        async with trio.open_nursery() as closing:
            for ws in idle:
                closing.start_soon(ws.aclose)
    stats = window.stats()
    return {
        "idle_connections": len(idle),
        "active": args.active,
        "concurrency": args.concurrency,
        "messages": len(latencies),
        "ops": len(latencies),
        "msgs_per_s": len(latencies) / stats["elapsed_s"],
        **latency_stats("latency", latencies),
        "handshakes": len(handshakes),
        "handshakes_per_s": len(handshakes) / stats["elapsed_s"],
        **latency_stats("handshake", handshakes),
        "failed_connections": len(failures),
        "dropped_idle": dropped,
        "errors": len(failures) + dropped + echo_errors(),
        **stats,
    }


# Command line ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT, without a path")
    parser.add_argument(
        "--url2", default=None, help="fanout: a second server for half the subscribers"
    )
    parser.add_argument("--client", choices=["picows", "trio-websocket"], default="picows")
    parser.add_argument("--connections", type=int, default=1, help="echo, idle, hold (idle)")
    parser.add_argument("--active", type=int, default=500, help="hold: echo clients")
    parser.add_argument("--subscribers", type=int, default=1000, help="fanout")
    parser.add_argument("--publishes", type=int, default=20, help="fanout")
    parser.add_argument("--concurrency", type=int, default=10, help="handshake, hold")
    parser.add_argument("--duration", type=float, default=3.0, help="timed phase, seconds")
    parser.add_argument("--max-messages", type=int, default=2_000_000, help="echo, bytes1m")
    parser.add_argument("--max-count", type=int, default=20_000, help="handshake")
    parser.add_argument("--size", type=int, default=MiB, help="bytes1m message size")
    parser.add_argument("--warmup", type=int, default=50, help="round trips, handshakes, ...")
    parser.add_argument("--settle", type=float, default=0.2, help="idle, hold: pause")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on the whole run")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--control", action="store_true", help="GO/DONE exchange on stdio")
    args = parser.parse_args(argv)
    for url in (args.url, args.url2):
        host = None if url is None else urlsplit(url).hostname
        if url is not None and host != "127.0.0.1":
            parser.error(f"the load generator talks to 127.0.0.1 only, not {host!r}")
    if args.url2 is not None and args.scenario != "fanout":
        parser.error("--url2 is for the fanout scenario only")
    args.url = args.url.rstrip("/")
    args.url2 = None if args.url2 is None else args.url2.rstrip("/")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()
    if args.client == "picows":
        import uvloop

        result = uvloop.run(_picows_main(args))
    else:
        import trio

        result = trio.run(_trio_main, args)
    result = {"scenario": args.scenario, "client": args.client, **result}
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 1 if result.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
