"""Worker processes for ``trioweb run --workers N`` and ``--reload``.

Hypercorn's own supervisor (``hypercorn.run.run``, 0.18) returns 0 when a worker fails: it takes
the failed worker's status, then reads its emptied list of workers again. trioweb therefore
supervises its workers itself, from the same parts: the listening sockets are created here, once,
and shared by ``N`` processes (multiprocessing's ``spawn``), each of which serves with Hypercorn's
trio worker (:func:`trioweb._serving.serve_in_process`). Rules:

* A worker reports its URL through a pipe once it serves; ``Running on`` is printed once, when
  every worker serves.
* A worker that exits non-zero unasked (its ``before_serving`` failed, it crashed) stops the
  others, and :func:`supervise` returns 1. One that exits 0 unasked is replaced (Hypercorn's
  ``max_requests`` ends workers that way).
* Workers ignore SIGINT: Ctrl+C reaches the whole process group, and the supervisor alone decides.
  Its first SIGINT or SIGTERM becomes a SIGTERM to each worker (a graceful shutdown, bounded as
  :func:`~trioweb._serving.run`'s is), a second one another SIGTERM (the workers exit at once,
  naming their stuck tasks). A worker still alive a second after its bound is killed.
* With ``reload``, the source files of the modules loaded here are checked every half second;
  a change stops the workers gracefully and starts new ones, which import the code afresh.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, cast

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.utils import check_for_updates, files_to_watch

from ._serving import UNWIND_TIME, shutdown_bound

#: Seconds between two looks at the workers (and, with ``reload``, at the source files).
POLL_INTERVAL = 0.5

#: A worker: called as ``target(*args, sockets, ready)`` in a fresh process; it sends its URL on
#: ``ready`` once it serves and exits non-zero if it fails.
Target = Callable[..., None]


def supervise(
    target: Target, args: tuple[Any, ...], config: HypercornConfig, *, workers: int, reload: bool
) -> int:
    """Run ``workers`` processes of ``target`` on ``config``'s sockets until SIGINT or SIGTERM;
    returns the exit status (0, or 1 if a worker failed or had to be killed). Blocks; call it
    from the main thread. Raises ``OSError`` if the sockets cannot be bound."""
    sockets = config.create_sockets()
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)
    supervisor = _Supervisor(target, args, sockets, workers, shutdown_bound(config) + UNWIND_TIME)
    previous = {
        signum: signal.signal(signum, supervisor.on_signal)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return supervisor.run(reload)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]:
            sock.close()


class _Supervisor:
    def __init__(
        self, target: Target, args: tuple[Any, ...], sockets: Sockets, workers: int, bound: float
    ) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.target, self.args, self.sockets, self.workers = target, args, sockets, workers
        self.bound = bound
        self.processes: dict[int, BaseProcess] = {}  # by sentinel
        self.starting: set[Connection] = set()  # ready pipes of workers not serving yet
        self.announced = False
        self.deadline: float | None = None  # set when stopping
        self.status = 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT/SIGTERM: the first stops the workers gracefully, the next one at once."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.bound
        for process in self.processes.values():
            process.terminate()

    def run(self, reload: bool) -> int:
        files = files_to_watch() if reload else None
        restarting = False
        self._start_workers()
        while self.processes or self.starting:
            for ready in wait([*self.processes, *self.starting], POLL_INTERVAL):
                if isinstance(ready, int):
                    self._ended(self.processes.pop(ready))
                else:
                    self._started(cast(Connection, ready))
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._kill_the_rest()
            elif files is not None and self.deadline is None and check_for_updates(files):
                print("trioweb: a source file changed; restarting", file=sys.stderr, flush=True)
                restarting = True
                self.on_signal(signal.SIGTERM, None)
            if restarting and not self.processes:
                restarting, self.deadline, self.status = False, None, 0
                self._start_workers()
                files = files_to_watch()
        return self.status

    def _start_workers(self) -> None:
        for _ in range(self.workers):
            self._start()

    def _start(self) -> None:
        receiver, sender = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=self.target, args=(*self.args, self.sockets, sender), daemon=True
        )
        # Ignored in the worker from its start: Ctrl+C is the supervisor's to handle.
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, handler)
        sender.close()  # the worker's copy remains: its end of the pipe closes when it exits
        self.processes[process.sentinel] = process
        self.starting.add(receiver)

    def _started(self, ready: Connection) -> None:
        self.starting.remove(ready)
        try:
            url = ready.recv()
        except EOFError:  # the worker ended before serving: its status tells
            return
        finally:
            ready.close()
        if not self.starting and not self.announced:
            self.announced = True
            print(
                f"Running on {url} with {self.workers} worker(s) (Ctrl+C to quit)",
                file=sys.stderr,
                flush=True,
            )

    def _ended(self, process: BaseProcess) -> None:
        process.join()
        if self.deadline is not None:  # asked to stop (SIGTERM ends one that is still starting)
            if process.exitcode not in (0, -signal.SIGTERM):
                self.status = 1
        elif process.exitcode == 0:
            self._start()  # it ended itself (Hypercorn's max_requests): replace it
        else:
            print(
                f"trioweb: a worker failed (exit status {process.exitcode}); stopping",
                file=sys.stderr,
                flush=True,
            )
            self.status = 1
            self.on_signal(signal.SIGTERM, None)

    def _kill_the_rest(self) -> None:
        for process in self.processes.values():
            print(
                f"trioweb: worker {process.pid} did not stop within {self.bound:g} s; killing it",
                file=sys.stderr,
                flush=True,
            )
            process.kill()
        self.status = 1
        self.deadline = float("inf")  # the sentinels report the ends
