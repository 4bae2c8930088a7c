"""Stand-in workers for the supervisor's tests (run in processes of their own, by spawn): each
behaves as ``mode`` says; once all of them serve, the last one sends SIGTERM to the supervisor,
as Ctrl+C would."""

import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(0)


def worker(
    mode: str, folder: str, watched: str, count: int, sockets: Any, ready: Connection
) -> None:
    """``serve``: report serving, and stop on SIGTERM. ``fail``: exit 3 at once.
    ``stubborn``: as ``serve``, but ignore SIGTERM. ``exit-once``: the first worker exits 0
    unasked, its replacement serves. ``reload``: the first worker changes ``watched``'s mtime
    once it serves, its replacement serves."""
    started = Path(folder, "started")
    first = not started.exists()
    started.touch()
    if mode == "fail":
        sys.exit(3)
    if first and mode == "exit-once":
        sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else _stop_on_sigterm)
    ready.send("http://127.0.0.1:1")
    if first and mode == "reload":
        later = time.time() + 10
        os.utime(watched, (later, later))
    else:
        with Path(folder, "serving").open("a") as serving:
            serving.write(f"{os.getpid()}\n")
        if len(Path(folder, "serving").read_text().split()) == count:
            os.kill(os.getppid(), signal.SIGTERM)
    while True:
        time.sleep(0.05)
