"""Many workers for real: two Hypercorn trio worker processes serving the how-to's example
(docs/examples/broadcast_workers.py) on ports of their own, sharing rooms and presence through a
real Valkey server (tests/_valkey.py); websocket clients on different workers talk to each
other, the server is restarted mid-test and a worker is killed. Every process started here is
stopped, also when the test fails (``_e2e.running`` kills the worker's process group; the
``valkey`` fixture stops the server)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import _valkey
import httpx
import pytest
import trio
from _docs import load_example
from _e2e import HYPERCORN, Command, running
from trio_websocket import ConnectionClosed, WebSocketConnection

from trioweb.testing.pytest_plugin import LiveServer

#: Hypercorn's line once it serves (``hypercorn -k trio``).
RUNNING_ON = r"Running on (http://127\.0\.0\.1:\d+) \(CTRL \+ C to quit\)$"
#: The presence TTL the workers run with (seconds).
TTL = 2.0


@asynccontextmanager
async def worker(valkey: _valkey.Valkey) -> AsyncIterator[tuple[Command, str]]:
    """A Hypercorn trio worker process serving the chat on a port of its own, and its URL."""
    env = {"TRIOWEB_BROADCAST_URL": valkey.url, "TRIOWEB_BROADCAST_PRESENCE_TTL": str(TTL)}
    argv = ("-k", "trio", "--bind", "127.0.0.1:0", "docs.examples.broadcast_workers:app")
    async with running(*HYPERCORN, *argv, env=env) as command:
        yield command, (await command.wait_for(RUNNING_ON))[1]


@asynccontextmanager
async def chat(url: str, name: str) -> AsyncIterator[WebSocketConnection]:
    """``name``'s websocket to the lobby of the worker at ``url``, once it is welcome (present
    and subscribed)."""
    # The plugin's helper closes the socket whatever happened (trio-websocket's own
    # open_websocket_url leaves it open when the server closes first, as here with 1012).
    async with LiveServer(url).websocket(f"/ws/lobby/{name}") as connection:
        assert await connection.get_message() == f"welcome {name}"
        yield connection


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Ask ``check()`` (a real request to a worker) again every 50 ms until it says yes; the
    test's deadline bounds it."""
    while not await check():  # noqa: ASYNC110 - the state is in another process: ask again
        await trio.sleep(0.05)


async def exchange(*clients: tuple[str, WebSocketConnection], count: int) -> dict[str, list[str]]:
    """Each client sends ``count`` messages at once with the others; returns what each received
    (everyone's, ``count`` per sender)."""
    received: dict[str, list[str]] = {name: [] for name, _ in clients}

    async def talk(name: str, connection: WebSocketConnection) -> None:
        for n in range(count):
            await connection.send_message(f"{name} {n}")

    async def listen(name: str, connection: WebSocketConnection) -> None:
        while len(received[name]) < count * len(clients):
            received[name].append(str(await connection.get_message()))

    async with trio.open_nursery() as nursery:
        for name, connection in clients:
            nursery.start_soon(talk, name, connection)
            nursery.start_soon(listen, name, connection)
    return received


def from_sender(messages: list[str], name: str) -> list[str]:
    return [message for message in messages if message.startswith(f"{name}: ")]


@pytest.mark.deadline(30)
async def test_two_workers_share_rooms_and_presence_and_survive_restarts(
    valkey: _valkey.Valkey,
) -> None:
    """Clients on different workers receive each other's messages in order per publisher and
    see the same presence; a Valkey restart closes the forwarding websockets with 1012, and
    once the workers are back, clients reconnect and talk again; a killed worker's presence
    is gone from the other worker within the TTL."""
    async with (
        worker(valkey) as (_, one),
        worker(valkey) as (two_process, two),
        httpx.AsyncClient() as http,
    ):

        async def presence(url: str) -> dict[str, Any]:
            response = await http.get(f"{url}/presence/lobby")
            assert response.status_code == 200
            result: dict[str, Any] = response.json()
            return result

        async def back(url: str) -> bool:
            stats = (await http.get(f"{url}/stats")).json()
            return bool(stats["connected"] and stats["interruptions"] == 1)

        async with chat(one, "ann") as ann, chat(two, "bob") as bob:
            seen = await presence(one)
            assert seen == await presence(two)
            assert sorted(seen) == ["ann", "bob"]
            assert seen["ann"][0]["worker"] != seen["bob"][0]["worker"]

            received = await exchange(("ann", ann), ("bob", bob), count=25)
            for name in ("ann", "bob"):
                for sender in ("ann", "bob"):
                    expected = [f"{sender}: {sender} {n}" for n in range(25)]
                    assert from_sender(received[name], sender) == expected

            await valkey.restart()
            for connection in (ann, bob):
                with pytest.raises(ConnectionClosed) as closed:
                    await connection.get_message()
                assert closed.value.reason.code == 1012

        await until(lambda: back(one))
        await until(lambda: back(two))
        async with chat(one, "ann") as ann, chat(two, "bob") as bob:
            received = await exchange(("ann", ann), ("bob", bob), count=3)
            assert from_sender(received["ann"], "bob") == [f"bob: bob {n}" for n in range(3)]
            assert from_sender(received["bob"], "ann") == [f"ann: ann {n}" for n in range(3)]
            assert sorted(await presence(one)) == sorted(await presence(two)) == ["ann", "bob"]

            os.killpg(two_process.process.pid, signal.SIGKILL)  # Hypercorn and its worker
            killed = trio.current_time()
            with pytest.raises(ConnectionClosed):
                await bob.get_message()

            async def bob_gone() -> bool:
                return "bob" not in await presence(one)

            await until(bob_gone)
            assert trio.current_time() - killed < TTL + TTL / 3 + 1
            assert sorted(await presence(one)) == ["ann"]


async def test_the_example_runs_in_memory_without_a_server_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without TRIOWEB_BROADCAST_URL the example's hub is in memory: one process, no server."""
    monkeypatch.delenv("TRIOWEB_BROADCAST_URL", raising=False)
    example = load_example("broadcast_workers")
    async with example.app.test_client() as client:
        assert (await (await client.get("/stats")).get_json())["backend"] == "memory://"
        async with client.websocket("/ws/lobby/ann") as ann:
            assert await ann.receive() == "welcome ann"
            present = await (await client.get("/presence/lobby")).get_json()
            assert present == {"ann": [{"worker": os.getpid()}]}
            await ann.send("hi")
            assert await ann.receive() == "ann: hi"
