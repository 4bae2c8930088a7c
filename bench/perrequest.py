"""CPU per request, in process: each app served through a real server's connection code over an
in-memory byte stream, driven by a client in the same ``trio.run``.

``python -m bench.perrequest [--targets raw,trioweb,starlette,quart-trio] [--servers stock,layer]
[--scenarios plain,json,form,stream] [-n 20000] [--rounds 20] [--repeats 3] [--out FILE]``

Why: the ``http-*`` scenarios of :mod:`bench.run` measure the server's CPU per request end to
end, with ``wrk`` over loopback; on a shared two-core machine their figure moves by ±20% of
~300 µs between repeats, far more than the ~10 µs by which frameworks differ. Here there is no
kernel, no socket and no other process on the path, and the targets take turns within seconds
(see *Precision* below).

Method (the rules this module keeps):

* **Real connection code, no network.** ``stock`` is Hypercorn 0.18's trio worker: its
  ``hypercorn.trio.tcp_server.TCPServer`` (h11 protocol classes, task group, send lock, idle
  task) over a stream that reads and writes memory (:class:`ServerStream`). ``layer`` is
  trioweb's connection layer: its ``Connection`` (``trioweb._layer._connection``) with its
  worker's shared state; its plain-TCP read (a wait for readable, then one ``recv``) is the
  one function replaced (:func:`_seams`), its non-blocking ``send`` writes to memory. Both run
  the app's lifespan first, with Hypercorn's ``Lifespan`` (the layer's marks the scope, as its
  worker does). What is measured: the server's Python code per request (parsing, protocol state
  machines, task groups, the app and the framework) and the client's; not the kernel, the
  socket calls or the accept loop.
* **A client like wrk's connections**: keep-alive HTTP/1.1, one request at a time per
  connection, each response read to its end (``Content-Length`` or the chunked ending) and
  checked: status 200 and the expected body (the JSON one parsed once and then compared byte for
  byte), so a broken target fails the run instead of looking fast. ``--connections K`` runs K
  such connections at once (default 1).
* **CPU time**: ``time.process_time()`` per request, over ``-n`` requests (20,000, after a
  warm-up) in ``--rounds`` rounds (20 of 1,000). Each target has its own worker process, pinned
  to one core (``os.sched_setaffinity``); all the targets' workers of a repeat are alive at once
  and *take turns round by round* (raw, trioweb, starlette, quart-trio, then trioweb, starlette,
  quart-trio, raw, ...: the order rotates), so that a slow spell of the machine hits every
  target's rounds alike. A target's figure is its best round: other load only ever adds time.
  Its own cost pairs each of its rounds with the raw app's round of the same turn (see
  :func:`summarize`). Every worker has the same garbage-collector settings (:data:`GC_THRESHOLD`,
  trioweb's ``GC_THRESHOLD`` for all, which its lifespan never lowers; a full collection before
  each round), the same string hashes (``PYTHONHASHSEED=0``: with random ones the same target's
  best round moved by ~13% between processes) and no development mode. ``--repeats`` (3) runs
  it all again with fresh workers; the report gives the median over repeats and the spread.
* **The client's own cost** is in every figure: the ``null`` server (canned responses, no app)
  measures it once per run. A framework's own cost (over raw, on the same server and scenario)
  cancels it.
* **Precision**: on the shared two-core machine this was written on, where other people's jobs
  slowed a plain Python loop by up to 50% from one minute to the next, the three repeats of an
  own cost spanned 2 to 16 µs for trioweb's and Starlette's plain and JSON routes (two of them
  usually within a few µs, the third off) and up to 40 µs for the heavier routes and
  quart-trio. The median of three discards one disturbed repeat; for differences under 10 µs,
  take five repeats or more (``--repeats``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import os
import platform
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from .apps.raw import CHUNKS
from .run import HTTP_SCENARIOS, TARGETS

ROOT = Path(__file__).resolve().parent.parent

#: Target name -> the ``module:app`` it serves (the same apps as the wrk scenarios').
APPS = {name: TARGETS[name][0] for name in ("raw", "trioweb", "starlette", "quart-trio")}
BASELINE = "raw"
SERVERS = ("stock", "layer")
#: The pseudo-target that measures the client alone (a stub server of canned responses).
NULL = "null"
#: The collector's thresholds for every target: trioweb's ``GC_THRESHOLD`` default (20,000) as the
#: first, which trioweb's lifespan would otherwise set for trioweb alone.
GC_THRESHOLD = (20_000, 10, 10)
#: Hypercorn's ``keep_alive_timeout`` for both servers (its default is 5 s): a worker's connection
#: stays idle while the other workers take their turns, and must not be closed meanwhile.
KEEP_ALIVE_TIMEOUT = 3600.0


# The exchanges -----------------------------------------------------------------------------------


class BadResponse(Exception):
    """A target answered something else than the scenario's expected response."""


def request_bytes(scenario: str) -> bytes:
    """The bytes of the scenario's request (as ``wrk`` sends them: ``Host`` and, for the form,
    its type and length)."""
    method, path, body = HTTP_SCENARIOS[scenario]
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
    if body:
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n" + body).encode()


def _body_is_right(scenario: str, body: bytes) -> bool:
    if scenario == "json":  # frameworks differ in spacing: parsed, it must say the same
        try:
            return bool(json.loads(body) == {"hello": "alice"})
        except ValueError:
            return False
    expected = {"plain": b"ok", "form": b"alice", "stream": b"".join(CHUNKS)}
    return body == expected[scenario]


class Checker:
    """Checks every response of a scenario: the first fully, the others against the first body
    (byte for byte, cheaper than parsing JSON again). Counts what it checked."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.body: bytes | None = None
        self.checked = 0

    def __call__(self, status: int, body: bytes) -> None:
        """Raises :class:`BadResponse` for a status other than 200 or a wrong body."""
        if status != 200:
            raise BadResponse(f"{self.scenario}: status {status}, expected 200 (body {body!r})")
        if body != self.body:
            if self.body is not None or not _body_is_right(self.scenario, body):
                raise BadResponse(f"{self.scenario}: unexpected body {body[:200]!r}")
            self.body = body
        self.checked += 1


def canned_response(scenario: str) -> bytes:
    """What the null server answers: the raw app's response, written out by hand."""
    if scenario == "stream":
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in CHUNKS)
        return (
            b"HTTP/1.1 200 \r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        )
    body = {"plain": b"ok", "json": b'{"hello": "alice"}', "form": b"alice"}[scenario]
    kind = b"application/json" if scenario == "json" else b"text/plain; charset=utf-8"
    return b"HTTP/1.1 200 \r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        kind,
        len(body),
        body,
    )


# The in-memory connection ------------------------------------------------------------------------


class Pipe:
    """One direction of an in-memory connection: what is written is read in one piece by the
    next read."""

    __slots__ = ("_buffer", "_lot", "closed")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` and wake the reader. Raises ``BrokenPipeError`` once closed."""
        if self.closed:
            raise BrokenPipeError("the connection is closed")
        self._buffer += data
        self._lot.unpark_all()

    def close(self) -> None:
        """No more data: the reader gets what is left, then ``b""``."""
        self.closed = True
        self._lot.unpark_all()

    async def read(self) -> bytes:
        """Everything written since the last read, waiting for some; ``b""`` once closed and
        drained. A checkpoint."""
        if self._buffer or self.closed:
            await trio.lowlevel.checkpoint()
        while not self._buffer and not self.closed:
            await self._lot.park()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class FakeSocket:
    """What the servers read off a connection's socket (addresses, ``close``) and, for the layer,
    its non-blocking ``send``."""

    family = socket.AF_INET

    def __init__(self, inbound: Pipe, outbound: Pipe) -> None:
        self.inbound = inbound
        self.outbound = outbound

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)

    def send(self, data: memoryview) -> int:
        self.outbound.write(data)
        return len(data)

    def setsockopt(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        self.inbound.close()
        self.outbound.close()


class ServerStream:
    """The server's end as a trio stream (what stock's ``TCPServer`` uses), with a trio
    socket stream's checkpoints."""

    def __init__(self, sock: FakeSocket) -> None:
        self.socket = sock

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.socket.inbound.read()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.socket.outbound.write(data)
        except BrokenPipeError as error:
            raise trio.BrokenResourceError from error
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        self.socket.outbound.close()
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.socket.close()
        await trio.lowlevel.checkpoint()


class Client:
    """A keep-alive HTTP/1.1 client on an in-memory connection to ``serve``, whose tasks run in
    ``nursery``. When a response says ``Connection: close`` (Hypercorn's
    ``keep_alive_max_requests``, 1,000 requests by default), it opens a new connection, as
    ``wrk`` does."""

    def __init__(self, nursery: trio.Nursery, serve: Serve) -> None:
        self._nursery = nursery
        self._serve = serve
        self.connections = 0
        self._open()

    def _open(self) -> None:
        self.outbound, self.inbound = Pipe(), Pipe()
        self._buffer = bytearray()
        self._nursery.start_soon(self._serve, ServerStream(FakeSocket(self.outbound, self.inbound)))
        self.connections += 1

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``, return the response's status and body (chunks joined). Raises
        :class:`BadResponse` for a response without a length, ``ConnectionError`` when the
        server closed the connection without saying so."""
        self.outbound.write(request)
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        lines = bytes(buffer[:end]).split(b"\r\n")
        del buffer[: end + 4]
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await self._chunks()
        elif length is None:
            raise BadResponse(f"a response without Content-Length or chunks: {lines!r}")
        else:
            while len(buffer) < length:
                await self._more()
            body = bytes(buffer[:length])
            del buffer[:length]
        if close:
            self.close()
            self._open()
        return status, body

    async def _chunks(self) -> bytes:
        buffer = self._buffer
        body = bytearray()
        while True:
            while (end := buffer.find(b"\r\n")) < 0:
                await self._more()
            size = int(bytes(buffer[:end]).split(b";")[0], 16)
            while len(buffer) < end + 2 + size + 2:
                await self._more()
            body += buffer[end + 2 : end + 2 + size]
            del buffer[: end + 2 + size + 2]  # no trailers: the last chunk ends with CRLF
            if size == 0:
                return bytes(body)

    async def _more(self) -> None:
        data = await self.inbound.read()
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def close(self) -> None:
        """The client is done: the server reads the end of the stream."""
        self.outbound.close()


# The servers -------------------------------------------------------------------------------------

#: Serving a connection: ``serve(server_stream)`` runs until the connection ends.
Serve = Callable[[ServerStream], Awaitable[None]]


@attrs.define
class Server:
    """A server whose connections run in ``nursery``: :meth:`connect` opens one."""

    nursery: trio.Nursery
    serve: Serve

    def connect(self) -> Client:
        """A new connection, served in the server's nursery."""
        return Client(self.nursery, self.serve)


@contextlib.contextmanager
def _seams() -> Iterator[None]:
    """The layer's one replaced function: its plain-TCP read (``_receive(raw)``: wait until the
    socket is readable, then one ``recv``) reads the in-memory pipe instead."""
    from trioweb._layer import _connection

    async def receive(raw: Any) -> bytes:
        return await raw.inbound.read()

    original = _connection._receive
    _connection._receive = receive
    try:
        yield
    finally:
        _connection._receive = original


@contextlib.asynccontextmanager
async def serving(server: str, app_path: str | None, scenario: str) -> AsyncIterator[Server]:
    """Serve the app at ``app_path`` (``module:attr``) with ``server`` (``stock``, ``layer`` or,
    without an app, ``null``: the canned response of ``scenario``): its lifespan starts before
    this yields and shuts down after. On exit, once the clients have closed their connections,
    the worker's ``terminated`` event is set (as at a shutdown, so that stock's idle tasks end
    now, not ``keep_alive_timeout`` later) and the connections end."""
    if server == NULL:
        async with trio.open_nursery() as connections:
            yield Server(connections, _null_server(canned_response(scenario)))
        return
    assert app_path is not None
    module, _, attr = app_path.partition(":")
    config = Config()
    # A connection waits while the other targets' workers take their turns: not for idleness.
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    asgi = getattr(importlib.import_module(module), attr)
    app = wrap_app(asgi, config.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        serve: Serve
        if server == "stock":
            lifespan = Lifespan(app, config, state)
            context = WorkerContext(None)

            async def serve(stream: ServerStream) -> None:
                connection_state = ConnectionState(state.copy())
                tcp = TCPServer(app, config, context, connection_state, stream)  # type: ignore[arg-type]
                await tcp.run()

        else:
            assert server == "layer", server
            from trioweb._layer._connection import Connection, Shared
            from trioweb._layer._limits import Limits
            from trioweb._layer._server import _Context, _MarkLayer

            lifespan = Lifespan(_MarkLayer(app), config, state)
            limits = Limits.of(app, config)
            context = _Context(None, limits)
            shared = Shared(app, config, context, state, limits)
            nursery.start_soon(shared.idle.run)

            async def serve(stream: ServerStream) -> None:
                await Connection(shared, stream, stream.socket).run()  # type: ignore[arg-type]

        await nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        with _seams() if server == "layer" else contextlib.nullcontext():
            async with trio.open_nursery() as connections:
                yield Server(connections, serve)
                await context.terminated.set()
        await lifespan.wait_for_shutdown()
        nursery.cancel_scope.cancel()


def _null_server(response: bytes) -> Serve:
    async def serve(stream: ServerStream) -> None:
        while await stream.receive_some():  # one request per write: the client waits for each
            await stream.send_all(response)
        await stream.aclose()

    return serve


# Sessions: rounds of checked exchanges ------------------------------------------------------------


@contextlib.asynccontextmanager
async def session(
    target: str, server: str, scenario: str, *, warmup: int, connections: int = 1
) -> AsyncIterator[Session]:
    """Serve ``target`` with ``server`` (see :func:`serving`), open ``connections`` connections
    and make ``warmup`` exchanges; yields the :class:`Session` that measures rounds."""
    app_path = None if server == NULL else APPS[target]
    async with serving(server, app_path, scenario) as served:
        clients = [served.connect() for _ in range(connections)]
        measured = Session(clients, request_bytes(scenario), Checker(scenario))
        await measured.run(warmup)
        yield measured
        for client in clients:
            client.close()


@attrs.define
class Session:
    """Exchanges on the clients' connections, each response checked."""

    clients: list[Client]
    request: bytes
    check: Checker

    async def round(self, requests: int) -> float:
        """CPU µs per request over ``requests`` exchanges (after a full collection)."""
        gc.collect()
        started = time.process_time()
        await self.run(requests)
        return (time.process_time() - started) / requests * 1e6

    async def run(self, total: int) -> None:
        """``total`` exchanges, spread over the connections, which run concurrently."""
        if len(self.clients) == 1:
            await self._drive(self.clients[0], total)
            return
        share, extra = divmod(total, len(self.clients))
        async with trio.open_nursery() as nursery:
            for i, client in enumerate(self.clients):
                nursery.start_soon(self._drive, client, share + (i < extra))

    async def _drive(self, client: Client, count: int) -> None:
        for _ in range(count):
            status, body = await client.exchange(self.request)
            self.check(status, body)

    def totals(self) -> dict[str, int]:
        """Responses checked and connections opened so far."""
        return {
            "checked": self.check.checked,
            "connections": sum(c.connections for c in self.clients),
        }


async def measure(
    target: str,
    server: str,
    scenarios: Sequence[str],
    *,
    requests: int,
    rounds: int,
    warmup: int,
    connections: int = 1,
) -> dict[str, Any]:
    """In this process, one target after the other (no turns): each scenario's ``requests``
    exchanges in ``rounds`` rounds after ``warmup`` more: ``{scenario: {"rounds": [µs per
    request, ...], "checked": ..., "connections": ...}}``. Raises :class:`BadResponse` (or
    ``ConnectionError``) when a response is wrong."""
    result: dict[str, Any] = {}
    for scenario in scenarios:
        opened = session(target, server, scenario, warmup=warmup, connections=connections)
        async with opened as measured:
            figures = [await measured.round(requests // rounds) for _ in range(rounds)]
        result[scenario] = {"rounds": figures, **measured.totals()}
    return result


# One worker: a target's process, taking turns --------------------------------------------------


async def serve_turns(target: str, warmup: int, connections: int) -> None:
    """The worker's loop: commands on stdin, one answer line each on stdout.

    ``begin SERVER SCENARIO`` (serve, connect, warm up; answers ``ready``), then ``round N``
    (answers the round's µs per request) any number of times, then ``end`` (answers the
    totals as JSON); ``quit`` ends the worker. A wrong response ends it with an error.
    """
    lines = _Lines(trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())))
    while True:
        command = (await lines.next()).split()
        if command[0] == "quit":
            return
        assert command[0] == "begin", command
        server, scenario = command[1:]
        opened = session(target, server, scenario, warmup=warmup, connections=connections)
        async with opened as measured:
            _answer("ready")
            while (command := (await lines.next()).split())[0] == "round":
                _answer(repr(await measured.round(int(command[1]))))
        assert command[0] == "end", command
        _answer(json.dumps(measured.totals()))


def _answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Lines:
    """Lines from a byte stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> str:
        """The next line; ``"quit"`` once the stream has ended."""
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                return "quit"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()


def worker(args: argparse.Namespace) -> int:
    """The ``--worker`` process: pin, set the collector, then take turns (:func:`serve_turns`)."""
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    gc.set_threshold(*GC_THRESHOLD)
    logging.basicConfig(level=logging.ERROR)  # trioweb on stock warns at startup: not news here
    trio.run(serve_turns, args.worker, args.warmup, args.connections)
    return 0


# The runner: workers taking turns, the report ---------------------------------------------------


def _child_env() -> dict[str, str]:
    # Not in development mode (tox sets it for the tests): its debug allocator would be measured.
    env = dict(os.environ)
    for name in ("PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONASYNCIODEBUG", "PYTHONTRACEMALLOC"):
        env.pop(name, None)
    # The same string hashes in every worker: with random ones, the same target's best round
    # moved by ~13% between processes (measured, trioweb on stock), with a fixed seed by ~5%.
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class WorkerFailed(Exception):
    """A worker process died, answered nonsense or took longer than ``--timeout``."""


class Worker:
    """A target's worker process, asked one command at a time (every wait bounded)."""

    def __init__(self, target: str, args: argparse.Namespace) -> None:
        self.target = target
        self.timeout = args.timeout
        command = [
            *(sys.executable, "-m", "bench.perrequest", "--worker", target),
            *("--warmup", str(args.warmup), "--connections", str(args.connections)),
        ]
        command += ["--no-pin"] if args.core is None else ["--core", str(args.core)]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            bufsize=0,
        )
        self._buffer = b""

    def ask(self, command: str) -> str:
        """Send ``command``, return the answer. Raises :class:`WorkerFailed`."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.process.stdin.write(command.encode() + b"\n")
        except OSError as error:
            raise WorkerFailed(self._failure(f"it was gone ({error})")) from None
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not ready:
                raise WorkerFailed(self._failure(f"no answer to {command!r} in {self.timeout} s"))
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise WorkerFailed(self._failure(f"it exited during {command!r}"))
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()

    def _failure(self, what: str) -> str:
        self.log.seek(0)
        tail = self.log.read()[-2000:].decode(errors="replace")
        return f"the worker for {self.target}: {what}; its stderr: {tail}"

    def close(self) -> None:
        """Stop the worker (``quit``, then kill after 10 s) and forget its log."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


def run_repeat(
    targets: Sequence[str], servers: Sequence[str], args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One repeat: a fresh worker per target, all alive at once, taking turns round by round
    (the order rotates each round). Returns ``{target: {server: {scenario: {"rounds": [...],
    "checked": ..., "connections": ...}}}}`` and the errors; a failed worker drops out of the
    repeat."""
    workers = {target: Worker(target, args) for target in targets}
    figures: dict[str, Any] = {target: {} for target in targets}
    errors: list[dict[str, Any]] = []
    each = args.requests // args.rounds

    def ask(target: str, command: str) -> str | None:
        try:
            return workers[target].ask(command)
        except WorkerFailed as error:
            errors.append({"target": target, "error": str(error)})
            print(error, file=sys.stderr)
            workers.pop(target).close()
            return None

    try:
        for server in servers:
            for scenario in args.scenarios:
                cell = {}
                for target in list(workers):
                    if ask(target, f"begin {server} {scenario}") is not None:
                        cell[target] = {"rounds": []}
                for turn in range(args.rounds):
                    order = list(workers)
                    order = order[turn % len(order) :] + order[: turn % len(order)] if order else []
                    for target in order:
                        answer = ask(target, f"round {each}")
                        if answer is not None:
                            cell[target]["rounds"].append(float(answer))
                for target in list(workers):
                    totals = ask(target, "end")
                    if totals is not None:
                        cell[target].update(json.loads(totals))
                        figures[target].setdefault(server, {})[scenario] = cell[target]
    finally:
        for worker_ in workers.values():
            worker_.close()
    return figures, errors


def summarize(
    runs: dict[str, list[dict[str, Any]]], servers: Sequence[str], scenarios: Sequence[str]
) -> dict[str, Any]:
    """Per scenario, server and target, over repeats (median, min, max): ``us``, each repeat's
    best round; ``own_us`` (not for raw), each repeat's median over turns of the target's round
    divided by the raw app's round of the same turn, minus one, times the raw app's best round.

    The ratio of rounds taken one after the other cancels a slowdown of the whole machine (other
    processes sharing the core's caches or the host), which stretches both alike; the raw app's
    best round turns it into microseconds at the machine's quiet speed."""
    summary: dict[str, Any] = {}
    baseline = runs.get(BASELINE, [])
    for scenario in scenarios:
        for server in servers:
            row: dict[str, Any] = {}
            for target, repeats in runs.items():
                best, own = [], []
                for repeat, figures in enumerate(repeats):
                    cell = figures.get(server, {}).get(scenario)
                    if cell is None:
                        continue
                    best.append(min(cell["rounds"]))
                    raw = baseline[repeat].get(server, {}).get(scenario)
                    if target != BASELINE and raw is not None:
                        pairs = zip(cell["rounds"], raw["rounds"], strict=False)
                        ratio = statistics.median(t / r for t, r in pairs)
                        own.append((ratio - 1) * min(raw["rounds"]))
                if best:
                    row[target] = {"us": _spread(best)}
                    if target != BASELINE:
                        row[target]["own_us"] = _spread(own) if own else None
            summary.setdefault(scenario, {})[server] = row
    return summary


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def markdown(data: dict[str, Any]) -> str:
    """The report's table: µs per request and each framework's own cost over raw."""
    settings = data["settings"]
    lines = [
        f"CPU µs per request, in process: the best of {settings['rounds']} rounds of"
        f" {settings['requests'] // settings['rounds']:,} requests on"
        f" {settings['connections']} connection(s), the targets' workers taking turns round by"
        " round; own cost: (the median over turns of the target's round / the raw app's round"
        " of the same turn - 1) x the raw app's best round. Median of"
        f" {settings['repeats']} repeats [min..max]; gc threshold"
        f" {tuple(settings['gc_threshold'])} for every target.",
        "",
        "| scenario | server | target | µs/request | own cost over raw, µs |",
        "|---|---|---|---|---|",
    ]
    for scenario, servers in data["summary"].items():
        for server, row in servers.items():
            for target, entry in row.items():
                own = entry.get("own_us")
                lines.append(
                    f"| {scenario} | {server} | {target} | {_cell(entry['us'])} |"
                    f" {'—' if target == BASELINE else _cell(own)} |"
                )
    client = data.get("client_us")
    if client:
        alone = ", ".join(f"{s} {v:.1f}" for s, v in client.items())
        lines += ["", f"The client alone (null server), µs per request: {alone}."]
    errors = data.get("errors")
    if errors:
        lines += ["", f"Failed workers: {len(errors)} (see the JSON's errors)."]
    return "\n".join(lines) + "\n"


def _cell(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "n/a"
    return f"{spread['median']:.1f} [{spread['min']:.1f}..{spread['max']:.1f}]"


def environment() -> dict[str, Any]:
    versions = {}
    for name in ("hypercorn", "h11", "trio", "trioweb", "starlette", "quart-trio"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {"python": platform.python_version(), "machine": platform.machine(), **versions}


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """The client alone first (the null server), then every repeat: fresh workers for all
    targets, taking turns."""
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {target: [] for target in args.targets}
    print("the client alone (null server)", file=sys.stderr, flush=True)
    client, errors = run_repeat([NULL], [NULL], args)
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
        figures, failed = run_repeat(args.targets, args.servers, args)
        errors += [{**error, "repeat": repeat} for error in failed]
        for target in args.targets:
            runs[target].append(figures[target])
    return {
        "settings": {
            "targets": args.targets,
            "servers": args.servers,
            "scenarios": args.scenarios,
            "requests": args.requests,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "connections": args.connections,
            "core": args.core,
            "gc_threshold": list(GC_THRESHOLD),
            "gc": "the same thresholds for every target; gc.collect() before each round",
            "hash_seed": 0,
        },
        "environment": environment(),
        "client_us": {s: min(c["rounds"]) for s, c in client[NULL].get(NULL, {}).items()},
        "runs": runs,
        "summary": summarize(runs, args.servers, args.scenarios),
        "errors": errors,
        "duration_s": round(time.perf_counter() - started, 1),
    }


def _names(value: str, known: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {unknown}; choose from {', '.join(known)}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perrequest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--targets",
        type=lambda v: _names(v, list(APPS), "targets"),
        default=list(APPS),
        help=f"comma-separated, from {','.join(APPS)} (default all; raw is the baseline)",
    )
    parser.add_argument(
        "--servers",
        type=lambda v: _names(v, [*SERVERS, NULL], "servers"),
        default=list(SERVERS),
        help="comma-separated: stock (Hypercorn's trio TCPServer), layer (trioweb's); default both",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: _names(v, list(HTTP_SCENARIOS), "scenarios"),
        default=list(HTTP_SCENARIOS),
        help=f"comma-separated, from {','.join(HTTP_SCENARIOS)} (default all)",
    )
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=20_000,
        help="measured, per worker and scenario (20,000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=20, help="the -n requests' rounds, taken in turns (20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2_000, help="requests before the rounds (2,000)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh workers, one per target (3)")
    parser.add_argument("--connections", type=int, default=1, help="concurrent connections (1)")
    default_core = 0 if hasattr(os, "sched_getaffinity") and 0 in os.sched_getaffinity(0) else None
    parser.add_argument("--core", type=int, default=default_core, help="pin workers here (0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the workers")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per answer (300)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results" / "perrequest.json",
        help="the JSON file (default bench/results/perrequest.json)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_pin:
        args.core = None
    if min(args.requests, args.rounds, args.repeats, args.connections) < 1 or args.warmup < 0:
        parser.error("-n, --rounds, --repeats and --connections must be at least 1")
    if args.requests < args.rounds:
        parser.error("-n must be at least --rounds (each round has -n/--rounds requests)")
    if args.worker is None:
        if BASELINE not in args.targets:
            args.targets.insert(0, BASELINE)  # own costs need it
        missing = [t for t in args.targets if not installed(t)]
        if missing:
            print(
                f"skipping {', '.join(missing)}: not installed here (pip install -r"
                " bench/requirements.txt, or run with the bench's tox environment)",
                file=sys.stderr,
            )
            args.targets = [t for t in args.targets if t not in missing]
    return args


#: The framework each peer's app needs (trioweb and the raw app need nothing more).
NEEDS = {"starlette": "starlette", "quart-trio": "quart_trio"}


def installed(target: str) -> bool:
    """Whether the framework of ``target``'s app can be imported here."""
    need = NEEDS.get(target)
    return need is None or importlib.util.find_spec(need) is not None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args)
    data = run_all(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    table = markdown(data)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"written: {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
