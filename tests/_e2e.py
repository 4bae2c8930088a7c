"""Helpers for the end-to-end tests: an app served by real Hypercorn, and commands run as
processes whose stderr is read as it comes (no sleeps: tests wait for the lines they expect)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import _servers
import httpx
import trio

import trioweb
from trioweb._types import ASGIApp

#: The repository's root: commands run there, so ``tests.apps.basic:app`` imports.
ROOT = Path(__file__).resolve().parent.parent
#: ``python -m trioweb``, the ``trioweb`` command of this interpreter.
TRIOWEB = (sys.executable, "-m", "trioweb")
#: ``python -m hypercorn``, the ``hypercorn`` command of this interpreter.
HYPERCORN = (sys.executable, "-m", "hypercorn")


@asynccontextmanager
async def served(app: ASGIApp, **serve_kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with :func:`trioweb.serve` on 127.0.0.1, port 0, and yield an HTTP client
    whose ``base_url`` is the server's; on exit the server is cancelled (a graceful shutdown).

    The server is the ``server`` fixture's (stock Hypercorn or trioweb's layer) when the test
    uses it, else trioweb.serve's default."""
    serve_kwargs = {**_servers.serve_kwargs(_servers.current), **serve_kwargs}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            partial(trioweb.serve, app, host="127.0.0.1", port=0, **serve_kwargs)
        )
        async with httpx.AsyncClient(base_url=url) as client:
            yield client
        nursery.cancel_scope.cancel()


class Command:
    """A running command; its stderr is kept in :attr:`stderr` as it is read."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._stderr = bytearray()

    @property
    def stderr(self) -> str:
        """What the command has printed to stderr so far (as far as it was read)."""
        return self._stderr.decode(errors="replace")

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Read stderr until a line matches ``pattern``; fails if the command ends first."""
        assert self.process.stderr is not None
        while (match := re.search(pattern, self.stderr, re.MULTILINE)) is None:
            chunk = await self.process.stderr.receive_some()
            if not chunk:
                raise AssertionError(f"ended without printing {pattern!r}:\n{self.stderr}")
            self._stderr += chunk
        return match

    def send_signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the command's process (not to the workers it started)."""
        self.process.send_signal(signum)

    async def finish(self) -> int:
        """Read stderr to its end, then wait for the command to exit; returns its exit status."""
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.receive_some():
            self._stderr += chunk
        return await self.process.wait()


@asynccontextmanager
async def running(*argv: str, env: Mapping[str, str] | None = None) -> AsyncIterator[Command]:
    """Run ``argv`` in the repository's root, in a session of its own; on exit, whatever of
    it still runs (a failed test) is killed, worker processes included."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        yield Command(process)
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            assert process.stderr is not None
            await process.stderr.aclose()
