"""CPU per request, in process: each app served through a real server's connection code over an
in-memory byte stream, driven by a client in the same ``trio.run``.

``python -m bench.perrequest [--targets raw,trioweb,starlette,quart-trio] [--servers stock,layer]
[--scenarios plain,json,form,stream] [-n 20000] [--rounds 10] [--repeats 3] [--out FILE]``

Why: the ``http-*`` scenarios of :mod:`bench.run` measure the server's CPU per request end to
end, with ``wrk`` over loopback; on a shared two-core machine their figure moves by ±20% of
~300 µs between repeats, far more than the ~10 µs by which frameworks differ. Here there is no
kernel, no socket and no other process on the path, so the same quantity, minus those, comes out
to a few tenths of a microsecond.

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
* **CPU time**: ``time.process_time()`` per request over ``-n`` requests (20,000, after a
  warm-up) in ``--rounds`` rounds (10 of 2,000); a worker's figure is its best round. Other
  load on a shared machine only ever adds time, and a short round is more likely to miss it: on
  the machine this was written on, the median of a worker's rounds moved by 10-15% between
  workers, the best by about 5%. Each (target, repeat) runs in its own process, pinned to one
  core (``os.sched_setaffinity``), with the same garbage-collector settings for every target
  (:data:`GC_THRESHOLD`: trioweb's ``GC_THRESHOLD`` for all, which its lifespan never lowers;
  a full collection before each round), the same string hashes (``PYTHONHASHSEED=0``) and
  without Python's development mode. Targets are interleaved within each repeat (raw, trioweb,
  starlette, quart-trio, raw, ...), so the machine's drift hits them alike.
* **The client's own cost** is in every figure: the ``null`` server (canned responses, no app)
  measures it once per run. A framework's own cost, target minus raw on the same server, scenario
  and repeat, cancels it; the report gives its median over repeats with the spread (min..max).
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
import socket
import statistics
import subprocess
import sys
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


# One worker: a target's figures ------------------------------------------------------------------


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
    """Serve ``target`` with ``server`` and measure each scenario, ``requests`` exchanges in
    ``rounds`` rounds after ``warmup`` more: ``{scenario: {"rounds": [µs per request, ...], "us":
    best round, "checked": responses checked, "connections": connections opened}}``. Raises
    :class:`BadResponse` (or ``ConnectionError``) when a response is wrong."""
    result: dict[str, Any] = {}
    for scenario in scenarios:
        app_path = None if server == NULL else APPS[target]
        async with serving(server, app_path, scenario) as served:
            clients = [served.connect() for _ in range(connections)]
            check = Checker(scenario)
            exchanges = _Exchanges(clients, request_bytes(scenario), check)
            await exchanges.run(warmup)
            figures = []
            each = requests // rounds
            for _ in range(rounds):
                gc.collect()
                started = time.process_time()
                await exchanges.run(each)
                figures.append((time.process_time() - started) / each * 1e6)
            for client in clients:
                client.close()
        result[scenario] = {
            "rounds": figures,
            "us": min(figures),
            "checked": check.checked,
            "connections": sum(c.connections for c in clients),
        }
    return result


@attrs.define
class _Exchanges:
    """Requests on the clients' connections, each response checked."""

    clients: list[Client]
    request: bytes
    check: Checker

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


def worker(args: argparse.Namespace) -> int:
    """The ``--worker`` process: pin, set the collector, measure, print one JSON line."""
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    gc.set_threshold(*GC_THRESHOLD)
    logging.basicConfig(level=logging.ERROR)  # trioweb on stock warns at startup: not news here
    figures: dict[str, Any] = {}
    for server in args.servers:
        figures[server] = trio.run(
            lambda server=server: measure(
                args.worker,
                server,
                args.scenarios,
                requests=args.requests,
                rounds=args.rounds,
                warmup=args.warmup,
                connections=args.connections,
            )
        )
    print(json.dumps(figures))
    return 0


# The runner: interleaved workers, the report -----------------------------------------------------


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


def _run_worker(target: str, servers: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """One worker process's figures, or ``{"error": ...}``; never raises."""
    command = [
        *(sys.executable, "-m", "bench.perrequest", "--worker", target),
        *("--servers", ",".join(servers), "--scenarios", ",".join(args.scenarios)),
        *("-n", str(args.requests), "--rounds", str(args.rounds), "--warmup", str(args.warmup)),
        *("--connections", str(args.connections)),
    ]
    command += ["--no-pin"] if args.core is None else ["--core", str(args.core)]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the worker for {target} took more than {args.timeout} s (--timeout)"}
    if done.returncode != 0:
        return {"error": f"the worker for {target} failed: {done.stderr[-2000:]}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def summarize(
    runs: dict[str, list[dict[str, Any]]], servers: Sequence[str], scenarios: Sequence[str]
) -> dict[str, Any]:
    """Per scenario, server and target: the median µs per request over repeats with its spread,
    and the own cost (target - raw, paired by repeat) likewise."""
    summary: dict[str, Any] = {}
    for scenario in scenarios:
        for server in servers:
            row: dict[str, Any] = {}
            raws = [r.get(server, {}).get(scenario, {}).get("us") for r in runs.get(BASELINE, [])]
            for target, repeats in runs.items():
                if target == NULL:
                    continue
                figures = [r.get(server, {}).get(scenario, {}).get("us") for r in repeats]
                values = [f for f in figures if f is not None]
                if not values:
                    continue
                entry: dict[str, Any] = {"us": _spread(values)}
                if target != BASELINE:
                    own = [f - b for f, b in zip(figures, raws, strict=False) if None not in (f, b)]
                    entry["own_us"] = _spread(own) if own else None
                row[target] = entry
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
        f"CPU µs per request, in process (median of {settings['repeats']} repeats, each the best"
        f" of {settings['rounds']} rounds of {settings['requests'] // settings['rounds']:,}"
        f" requests on"
        f" {settings['connections']} connection(s); [min..max]; gc threshold"
        f" {tuple(settings['gc_threshold'])} for all)",
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
    """All repeats of all targets, interleaved; the null server's once, first."""
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {}
    errors: list[dict[str, Any]] = []
    client = _run_worker(NULL, [NULL], args)
    if "error" in client:
        errors.append({"target": NULL, **client})
    for repeat in range(args.repeats):
        for target in args.targets:
            print(f"repeat {repeat + 1}/{args.repeats}: {target}", file=sys.stderr, flush=True)
            figures = _run_worker(target, args.servers, args)
            if "error" in figures:
                errors.append({"target": target, "repeat": repeat, **figures})
                print(figures["error"], file=sys.stderr)
            runs.setdefault(target, []).append(figures)
    data: dict[str, Any] = {
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
            "gc": "same thresholds for every target; gc.collect() before each round",
        },
        "environment": environment(),
        "client_us": {s: f["us"] for s, f in client.get(NULL, {}).items()},
        "runs": runs,
        "summary": summarize(runs, args.servers, args.scenarios),
        "errors": errors,
        "duration_s": round(time.perf_counter() - started, 1),
    }
    return data


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
        "--rounds", type=int, default=10, help="the -n requests' rounds; the best counts (10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2_000, help="requests before the rounds (2,000)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="worker processes per target (3)")
    parser.add_argument("--connections", type=int, default=1, help="concurrent connections (1)")
    default_core = 0 if hasattr(os, "sched_getaffinity") and 0 in os.sched_getaffinity(0) else None
    parser.add_argument("--core", type=int, default=default_core, help="pin workers here (0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the workers")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker (900)")
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
