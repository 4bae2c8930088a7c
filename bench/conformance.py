"""The Autobahn TestSuite's server cases against trioweb's echo, in one command.

``python -m bench.conformance [--server stock|layer] [--quick] [--port 9240]``

What it does: serves ``bench.apps.trioweb_conformance:app`` (the benchmark's trioweb app, whose
``/ws`` route echoes every message with its type, with a 16 MiB message limit: group 9 sends
messages up to 16 MiB) on 127.0.0.1, runs the shared harness ``run_autobahn.py --url``
against it (the fuzzingclient's 517 cases, 301 with ``--quick``, which leaves out
permessage-deflate), prints the per-group summary, then stops the server and says whether it
survived the run and how many tracebacks it logged. Exit status: 0 when no case FAILED and the
server survived, 1 otherwise, 2 for a harness error (wstest missing, the server did not start).

The servers:

``stock``
    ``python -m hypercorn -k trio -w 0``: Hypercorn's own trio worker, no trioweb glue.
``layer``
    ``python -m trioweb run``: trioweb's connection layer (issue 8). Until
    ``trioweb._layer._server`` exists, ``--server layer`` says so and exits with status 2.

The harness is not part of this repository: ``run_autobahn.py`` and ``setup_wstest.sh`` live in
``$CONFORMANCE_DIR`` (default ``../shared/conformance`` next to the repository), wstest in
``$CONFORMANCE_HOME`` (``~/.cache/ws-conformance``), and so do the reports. Install wstest once
with ``$CONFORMANCE_DIR/setup_wstest.sh``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("CONFORMANCE_DIR") or ROOT.parent / "shared" / "conformance")
APP = "bench.apps.trioweb_conformance:app"
PATH = "/ws"
#: The loopback ports the shared harness allows.
PORTS = range(9200, 9300)


def layer_available() -> bool:
    """Whether this trioweb has its connection layer (``trioweb._layer._server``)."""
    try:
        return importlib.util.find_spec("trioweb._layer._server") is not None
    except ModuleNotFoundError:
        return False


def server_argv(server: str, port: int, python: str = sys.executable) -> list[str]:
    """The command that serves the echo app with ``server`` ("stock" or "layer") on ``port``."""
    if server == "stock":
        return [
            *(python, "-m", "hypercorn", "-k", "trio", "-w", "0"),
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning", APP),
        ]
    return [
        *(python, "-m", "trioweb", "run", "--app", APP),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]


def free_port() -> int:
    """The first port of :data:`PORTS` that can be bound on 127.0.0.1 now."""
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 9200-9299 on 127.0.0.1")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.conformance", description=__doc__)
    parser.add_argument("--server", choices=["stock", "layer"], default="stock")
    parser.add_argument("--quick", action="store_true", help="leave out groups 12 and 13 (~20 s)")
    parser.add_argument("--port", type=int, default=None, help="9200-9299 (default: a free one)")
    parser.add_argument("--cases", nargs="+", default=None, help='case patterns, e.g. "6.*"')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.server == "layer" and not layer_available():
        print(
            "--server layer needs trioweb's connection layer (trioweb._layer._server), which"
            " this checkout does not have yet; use --server stock",
            file=sys.stderr,
        )
        return 2
    runner = HARNESS / "run_autobahn.py"
    if not runner.exists():
        print(f"{runner} not found; set CONFORMANCE_DIR to the harness folder", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else free_port()
    agent = f"trioweb-{args.server}"
    harness = [sys.executable, str(runner), "--url", f"ws://127.0.0.1:{port}{PATH}"]
    harness += ["--agent", agent, *(["--quick"] if args.quick else [])]
    harness += ["--cases", *args.cases] if args.cases else []
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONMALLOC")}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            server_argv(args.server, port),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            print("server:", " ".join(server_argv(args.server, port)), flush=True)
            status = subprocess.run(harness, cwd=ROOT, check=False, timeout=3600).returncode
            survived = server.poll() is None
        finally:
            _stop(server)
        log.seek(0)
        text = log.read().decode(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    home = Path(os.environ.get("CONFORMANCE_HOME") or Path.home() / ".cache" / "ws-conformance")
    log_path = home / ".out" / "autobahn" / agent / "server.log"
    if log_path.parent.is_dir():
        log_path.write_text(text)
    if survived:
        print(
            f"server ({args.server}): survived the run;"
            f" {tracebacks} tracebacks in its log ({log_path})"
        )
    else:
        print(f"server ({args.server}): EXITED during the run (status {server.returncode})")
        print(text[-3000:])
    if status == 2:
        return 2
    return 0 if status == 0 and survived else 1


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGINT (a graceful shutdown), then SIGKILL after 15 s."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


if __name__ == "__main__":
    sys.exit(main())
