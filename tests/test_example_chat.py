"""examples/chat, the app the README runs, does what its docstring and the tutorial say.

Through the test client for every behaviour (one process, the in-memory hub), and once through
real Hypercorn with trio-websocket clients. The heartbeat and slow-client tests use
``autojump_clock``: virtual time jumps ahead whenever every task is blocked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from _broadcast import FakeBackend
from _docs import load_example
from _e2e import ROOT, TRIOWEB, running, served
from trio_websocket import open_websocket_url

from examples.chat import app as chat
from examples.chat.app import app
from trioweb.testing import (
    TestClient,
    TestWebsocket,
    WebsocketDisconnectError,
    WebsocketResponseError,
)

CHAT = Path(chat.__file__).parent


@asynccontextmanager
async def joined(
    client: TestClient, name: str, room: str = "lobby"
) -> AsyncIterator[TestWebsocket]:
    """A websocket of ``name`` in ``room``, past its welcome and its own join."""
    async with client.websocket(f"/ws/rooms/{room}", query_string={"name": name}) as ws:
        assert (await ws.receive_json())["type"] == "welcome"
        assert await ws.receive_json() == {"type": "join", "name": name}
        yield ws


async def closing(ws: TestWebsocket) -> WebsocketDisconnectError:
    """Read ``ws`` until the app closes it; how it closed."""
    while True:
        try:
            await ws.receive()
        except WebsocketDisconnectError as closed:
            return closed


def said(name: str, text: str) -> dict[str, str]:
    return {"type": "message", "name": name, "text": text}


# The page ----------------------------------------------------------------------------------------


async def test_page_has_the_elements_the_script_and_the_browser_test_use() -> None:
    """GET / is the chat page: the join form (room prefilled "lobby"), the send form, the lists
    of messages and of who is online, and the status; its script and style are served."""
    async with app.test_client() as client:
        response = await client.get("/")
        assert response.status_code == 200
        page = (await response.get_data()).decode()
        for element in [
            '<form id="join"',
            '<input id="name"',
            '<input id="room" name="room" required maxlength="32" value="lobby">',
            '<form id="send"',
            '<input id="message"',
            '<ul id="messages">',
            '<ul id="online">',
            'id="status"',
            '<script src="/static/chat.js"',
            '<link rel="stylesheet" href="/static/chat.css">',
        ]:
            assert element in page
        for path, kind in [("/static/chat.js", "javascript"), ("/static/chat.css", "text/css")]:
            response = await client.get(path)
            assert response.status_code == 200
            assert kind in response.headers["Content-Type"]
            assert await response.get_data() == (CHAT / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize(
    ("query", "prefilled"),
    [("?room=kitchen", "kitchen"), ("?room=no%20spaces", "lobby"), ("?room=" + "x" * 33, "lobby")],
)
async def test_page_prefills_the_room_from_the_url(query: str, prefilled: str) -> None:
    """``/?room=kitchen`` prefills the room; a room's name the server would refuse does not."""
    async with app.test_client() as client:
        page = (await (await client.get("/" + query)).get_data()).decode()
        assert f'<input id="room" name="room" required maxlength="32" value="{prefilled}">' in page


def test_script_shows_text_never_html() -> None:
    """The page's script puts what users send into the page as text, never as HTML."""
    script = (CHAT / "static" / "chat.js").read_text()
    assert "textContent" in script
    assert re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script) is None


@pytest.mark.parametrize(
    ("environment", "url"),
    [({}, "memory://"), ({"BROADCAST_URL": "redis://valkey:6379/0"}, "redis://valkey:6379/0")],
)
def test_broadcast_url_comes_from_the_environment(environment: dict[str, str], url: str) -> None:
    """``BROADCAST_URL`` in the environment, as the README sets it, chooses the hub's backend;
    without it the hub is in memory."""
    env = {key: value for key, value in os.environ.items() if key != "BROADCAST_URL"}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from examples.chat.app import app; print(app.config['BROADCAST_URL'])",
        ],
        cwd=ROOT,
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == url


# Joining -----------------------------------------------------------------------------------------


async def test_welcome_lists_who_is_online_then_the_others_see_the_join() -> None:
    """A new user's first message is the welcome, with everyone in the room (themself
    included); the others then see them join."""
    async with (
        app.test_client() as client,
        joined(client, "bob") as bob,
        client.websocket("/ws/rooms/lobby?name=ann") as ann,
    ):
        assert await ann.receive_json() == {
            "type": "welcome",
            "room": "lobby",
            "name": "ann",
            "online": ["ann", "bob"],
            "ping_interval": app.config["CHAT_PING_INTERVAL"],
        }
        assert await bob.receive_json() == {"type": "join", "name": "ann"}
        assert await ann.receive_json() == {"type": "join", "name": "ann"}


class Hub:
    """The chat's hub, but ``track`` first waits (at most a minute) until the test has seen the
    welcome of the user it tracks, and records whether it had."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.welcomed: dict[str, trio.Event] = {}
        self.tracked: list[tuple[str, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.hub, name)

    @asynccontextmanager
    async def track(self, topic: str, key: str) -> AsyncIterator[None]:
        welcomed = self.welcomed.setdefault(key, trio.Event())
        with trio.move_on_after(60):
            await welcomed.wait()
        self.tracked.append((key, welcomed.is_set()))
        async with self.hub.track(topic, key):
            yield


async def test_welcome_arrives_before_the_others_see_the_join(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.abc.Clock
) -> None:
    """The handler makes a user present (which the others see as a join) only once the user's
    welcome has reached them: had it tracked first, the welcome could not have arrived."""
    hub = Hub(chat.hub)
    monkeypatch.setattr(chat, "hub", hub)
    async with app.test_client() as client, client.websocket("/ws/rooms/lobby?name=bob") as bob:
        assert (await bob.receive_json())["type"] == "welcome"
        hub.welcomed.setdefault("bob", trio.Event()).set()
        assert await bob.receive_json() == {"type": "join", "name": "bob"}
        async with client.websocket("/ws/rooms/lobby?name=ann") as ann:
            assert (await ann.receive_json())["online"] == ["ann", "bob"]
            hub.welcomed.setdefault("ann", trio.Event()).set()
            assert await bob.receive_json() == {"type": "join", "name": "ann"}
    assert hub.tracked == [("bob", True), ("ann", True)]


async def test_what_is_said_once_a_user_is_seen_reaches_them() -> None:
    """Subscribed before present: a message sent as soon as the others see a user join reaches
    that user, after their welcome."""
    async with (
        app.test_client() as client,
        joined(client, "bob") as bob,
        client.websocket("/ws/rooms/lobby?name=ann") as ann,
    ):
        assert await bob.receive_json() == {"type": "join", "name": "ann"}
        await bob.send_json({"type": "message", "text": "hi ann"})
        assert (await ann.receive_json())["type"] == "welcome"
        assert await ann.receive_json() == {"type": "join", "name": "ann"}
        assert await ann.receive_json() == said("bob", "hi ann")


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/ws/rooms/lobby", 400, "send a name"),
        ("/ws/rooms/lobby?name=", 400, "send a name"),
        ("/ws/rooms/lobby?name=%20%20", 400, "send a name"),
        ("/ws/rooms/lobby?name=" + "n" * 25, 400, "at most 24 printable characters"),
        ("/ws/rooms/lobby?name=a%07b", 400, "at most 24 printable characters"),
        ("/ws/rooms/" + "r" * 33 + "?name=ann", 400, "1 to 32 letters, digits, '-' or '_'"),
        ("/ws/rooms/a.b?name=ann", 400, "1 to 32 letters, digits, '-' or '_'"),
        ("/ws/rooms/lobby?name=bob", 409, "the name 'bob' is taken in room 'lobby': choose"),
        ("/ws/rooms/lobby?name=%20bob%20", 409, "the name 'bob' is taken"),
    ],
)
async def test_bad_or_taken_name_is_refused_before_accept(
    path: str, status: int, error: str
) -> None:
    """An invalid name or room, or a name present in the room, is refused at the handshake with
    an HTTP status and a JSON error saying what to change; the room sees nothing of it."""
    async with app.test_client() as client, joined(client, "bob") as bob:
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket(path):
                pass  # pragma: no cover (refused)
        assert refused.value.response.status_code == status
        assert error in (await refused.value.response.get_json())["error"]
        await bob.send_json({"type": "message", "text": "still here"})
        assert await bob.receive_json() == said("bob", "still here")


async def test_name_is_free_again_once_its_user_left() -> None:
    """After a user leaves, their name can be taken again."""
    async with app.test_client() as client:
        async with joined(client, "ann"):
            pass
        async with joined(client, "ann") as ann:
            await ann.send_json({"type": "message", "text": "back"})
            assert await ann.receive_json() == said("ann", "back")


async def test_same_name_in_two_rooms() -> None:
    """A name is taken per room: the same user may be in two rooms."""
    async with app.test_client() as client, joined(client, "ann"), joined(client, "ann", "kitchen"):
        pass


# Messages and presence ---------------------------------------------------------------------------


async def test_message_reaches_everyone_in_the_room_and_no_other_room() -> None:
    """What a user sends reaches every user of the room (the sender too), in order, and nobody
    in another room."""
    async with (
        app.test_client() as client,
        joined(client, "ann") as ann,
        joined(client, "carol", "kitchen") as carol,
        joined(client, "bob") as bob,
    ):
        assert await ann.receive_json() == {"type": "join", "name": "bob"}
        for text in ["one", "two", "<b>three</b> & \u00e9t\u00e9"]:
            await ann.send_json({"type": "message", "text": text})
        for ws in (ann, bob):
            for text in ["one", "two", "<b>three</b> & \u00e9t\u00e9"]:
                assert await ws.receive_json() == said("ann", text)
        # Carol's next message is her own: nothing of the lobby came in between.
        await carol.send_json({"type": "message", "text": "kitchen only"})
        assert await carol.receive_json() == said("carol", "kitchen only")


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        ("not json", 'send JSON: {"type": "message", "text": "..."} or {"type": "ping"}'),
        (b'{"type": "ping"}', None),
        ('["message"]', 'send JSON: {"type": "message"'),
        ('{"type": "shout", "text": "hi"}', 'send JSON: {"type": "message"'),
        ('{"type": "message"}', "send some text: 'text' must be a non-empty string"),
        ('{"type": "message", "text": " "}', "send some text"),
        ('{"type": "message", "text": 5}', "send some text"),
        ('{"type": "message", "text": "' + "x" * 2001 + '"}', "a message is at most 2000"),
    ],
)
async def test_bad_message_gets_an_error_and_the_websocket_stays(
    sent: str | bytes, error: str | None
) -> None:
    """A message the server cannot use is answered with an error saying what to send (a ping
    in a binary frame is still a ping); nothing reaches the room, and the websocket stays."""
    async with (
        app.test_client() as client,
        joined(client, "ann") as ann,
        joined(client, "bob") as bob,
    ):
        assert await ann.receive_json() == {"type": "join", "name": "bob"}
        await ann.send(sent)
        reply = await ann.receive_json()
        if error is None:
            assert reply == {"type": "pong"}
        else:
            assert reply["type"] == "error"
            assert error in reply["error"]
        await ann.send_json({"type": "message", "text": "fine"})
        assert await ann.receive_json() == said("ann", "fine")
        assert await bob.receive_json() == said("ann", "fine")


async def test_leave_notice_and_presence_when_a_client_disconnects() -> None:
    """When a user's websocket goes, the others see them leave, and the next welcome no longer
    lists them."""
    async with app.test_client() as client, joined(client, "ann") as ann:
        async with joined(client, "bob"):
            assert await ann.receive_json() == {"type": "join", "name": "bob"}
        assert await ann.receive_json() == {"type": "leave", "name": "bob"}
        async with client.websocket("/ws/rooms/lobby?name=carol") as carol:
            assert (await carol.receive_json())["online"] == ["ann", "carol"]


# The HTTP API ------------------------------------------------------------------------------------


async def test_posted_message_reaches_everyone_in_the_room() -> None:
    """POST /api/rooms/<room>/messages with a JSON name and text reaches every user of the room
    (whatever the content type: ``curl -d`` sends a form's); it answers 202 with the message."""
    async with (
        app.test_client() as client,
        joined(client, "ann") as ann,
        joined(client, "carol", "kitchen") as carol,
        joined(client, "bob") as bob,
    ):
        assert await ann.receive_json() == {"type": "join", "name": "bob"}
        response = await client.post(
            "/api/rooms/lobby/messages", json={"name": " deploy-bot ", "text": "v2 is out"}
        )
        assert response.status_code == 202
        assert await response.get_json() == said("deploy-bot", "v2 is out")
        response = await client.post(
            "/api/rooms/lobby/messages",
            data='{"name": "curl", "text": "no content type"}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 202
        for ws in (ann, bob):
            assert await ws.receive_json() == said("deploy-bot", "v2 is out")
            assert await ws.receive_json() == said("curl", "no content type")
        await carol.send_json({"type": "message", "text": "kitchen only"})
        assert await carol.receive_json() == said("carol", "kitchen only")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, 'send a JSON object: {"name": "...", "text": "..."}'),
        (b"", 400, "send a JSON object"),
        (b'["bot", "hi"]', 400, "send a JSON object"),
        (b'{"text": "hi"}', 400, "send a name: 'name' must be a non-empty string"),
        (b'{"name": "", "text": "hi"}', 400, "send a name"),
        (b'{"name": 7, "text": "hi"}', 400, "send a name"),
        (b'{"name": "' + b"n" * 25 + b'", "text": "hi"}', 400, "at most 24 printable"),
        (b'{"name": "bot"}', 400, "send some text: 'text' must be a non-empty string"),
        (b'{"name": "bot", "text": ""}', 400, "send some text"),
        (b'{"name": "bot", "text": "' + b"x" * 2001 + b'"}', 400, "a message is at most 2000"),
        (b'{"name": "bot", "text": "' + b"x" * 17000 + b'"}', 413, None),
    ],
)
async def test_bad_post_is_refused_with_what_to_fix(
    body: bytes, status: int, error: str | None
) -> None:
    """A body that is not a JSON object with a valid name and text is refused with 400 and an
    error saying what to send (a body over 16 KiB: 413); nothing reaches the room."""
    async with app.test_client() as client, joined(client, "ann") as ann:
        response = await client.post(
            "/api/rooms/lobby/messages", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status
        if error is not None:
            assert error in (await response.get_json())["error"]
        await ann.send_json({"type": "message", "text": "next"})
        assert await ann.receive_json() == said("ann", "next")


async def test_post_to_a_bad_room_is_refused() -> None:
    """A room's name the websocket would refuse is refused by the API too."""
    async with app.test_client() as client:
        response = await client.post("/api/rooms/a.b/messages", json={"name": "n", "text": "t"})
        assert response.status_code == 400
        assert "1 to 32 letters" in (await response.get_json())["error"]


async def test_page_is_told_when_the_hub_loses_its_server_and_finds_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the hub's server goes away and comes back, users get ``interrupted`` (with the
    reason) and ``resumed`` (with how many messages were lost), and the chat carries on."""
    backend = FakeBackend()
    monkeypatch.setattr("trioweb.broadcast._hub.backend_for", lambda url, **options: backend)
    async with app.test_client() as client, joined(client, "ann") as ann:
        backend.lose_server("connection reset")
        assert await ann.receive_json() == {"type": "interrupted", "reason": "connection reset"}
        backend.find_server(lost=3)
        assert await ann.receive_json() == {"type": "resumed", "lost": 3}
        await ann.send_json({"type": "message", "text": "still here"})
        assert await ann.receive_json() == said("ann", "still here")


# Heartbeat and slow clients ----------------------------------------------------------------------


async def test_ping_is_answered_and_keeps_the_websocket_open(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.abc.Clock
) -> None:
    """A client that pings every interval is answered ``pong`` each time and stays, well past
    the silence limit."""
    monkeypatch.setitem(app.config, "CHAT_PING_INTERVAL", 0.4)
    async with app.test_client() as client, joined(client, "ann") as ann:
        for _ in range(10):  # 4 s: four times the 1 s silence limit
            await trio.sleep(0.4)
            await ann.send_json({"type": "ping"})
            assert await ann.receive_json() == {"type": "pong"}


async def test_silent_client_is_closed_with_4000_and_is_no_longer_online(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.abc.Clock
) -> None:
    """A client that sends nothing for 2.5 ping intervals is closed with 4000 and a reason, and
    is no longer online."""
    monkeypatch.setitem(app.config, "CHAT_PING_INTERVAL", 0.4)
    async with app.test_client() as client:
        async with client.websocket("/ws/rooms/lobby?name=bob") as bob:
            start = trio.current_time()
            assert (await bob.receive_json())["type"] == "welcome"
            closed = await closing(bob)
            assert (closed.code, closed.reason) == (4000, "nothing received for 1 s")
            assert trio.current_time() - start == pytest.approx(1.0)
        async with client.websocket("/ws/rooms/lobby?name=carol") as carol:
            assert (await carol.receive_json())["online"] == ["carol"]


async def test_client_that_stops_reading_is_cut_with_1013_and_nobody_waits(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A client that stops reading while the room talks is closed with 1013 once 256 messages
    wait for it; the others get every message and the publisher never waits."""
    async with (
        app.test_client() as client,
        joined(client, "ann") as ann,
        joined(client, "bob") as bob,
    ):
        assert await ann.receive_json() == {"type": "join", "name": "bob"}
        for number in range(300):  # bob reads nothing meanwhile
            response = await client.post(
                "/api/rooms/lobby/messages", json={"name": "bot", "text": str(number)}
            )
            assert response.status_code == 202
            assert await ann.receive_json() == said("bot", str(number))
        closed = await closing(bob)
        assert closed.code == 1013
        assert "too slow" in closed.reason
        assert await ann.receive_json() == {"type": "leave", "name": "bob"}


# The tutorial's first step: docs/examples/chat_rooms.py ------------------------------------------


async def test_first_step_relays_each_message_to_everyone_in_its_room() -> None:
    """The few-line version: what a client sends (text or bytes, as sent) reaches every client
    of its room, the sender too, and nobody in another room."""
    rooms = load_example("chat_rooms").app
    async with (
        rooms.test_client() as client,
        client.websocket("/rooms/lobby") as ann,
        client.websocket("/rooms/lobby") as bob,
        client.websocket("/rooms/kitchen") as carol,
    ):
        for message in ["hello", b"\x00 bytes", ""]:
            await ann.send(message)
            assert await ann.receive() == message
            assert await bob.receive() == message
        await carol.send("kitchen only")
        assert await carol.receive() == "kitchen only"


# On a real server --------------------------------------------------------------------------------


async def test_chat_on_hypercorn_with_real_websockets() -> None:
    """Served by Hypercorn: two browsers' websockets see each other join, talk, and see a
    message posted over HTTP."""
    async with served(app) as http:
        ws_url = str(http.base_url.copy_with(scheme="ws", path="/ws/rooms/lobby")) + "?name="
        async with open_websocket_url(ws_url + "ann") as ann:
            assert json.loads(await ann.get_message())["online"] == ["ann"]
            assert json.loads(await ann.get_message()) == {"type": "join", "name": "ann"}
            async with open_websocket_url(ws_url + "bob") as bob:
                assert json.loads(await bob.get_message())["online"] == ["ann", "bob"]
                assert json.loads(await ann.get_message()) == {"type": "join", "name": "bob"}
                await bob.send_message(json.dumps({"type": "message", "text": "hi ann"}))
                response = await http.post(
                    "/api/rooms/lobby/messages", json={"name": "bot", "text": "hello both"}
                )
                assert response.status_code == 202
                for message in [said("bob", "hi ann"), said("bot", "hello both")]:
                    assert json.loads(await ann.get_message()) == message
                await bob.send_message(json.dumps({"type": "ping"}))
                while (reply := json.loads(await bob.get_message()))["type"] != "pong":
                    assert reply["type"] in ("join", "message")
            assert json.loads(await ann.get_message()) == {"type": "leave", "name": "bob"}
            page = await http.get("/")
            assert '<ul id="messages">' in page.text


# The README ---------------------------------------------------------------------------------------

README = (ROOT / "README.md").read_text()


def test_readme_runs_the_chat_and_shows_the_first_step() -> None:
    """The README's first command starts this chat on port 5000, and its code sample is the
    tutorial's first step, as tested above."""
    commands = re.findall(r"^```sh\n(.*?)\n```$", README, re.MULTILINE | re.DOTALL)
    assert len(commands) == 2
    assert commands[0].endswith("trioweb run --app examples.chat.app:app --port 5000")
    sample = re.search(r"^```python\n(.*?)```$", README, re.MULTILINE | re.DOTALL)
    assert sample is not None
    first_step = (ROOT / "docs" / "examples" / "chat_rooms.py").read_text()
    assert first_step.endswith(sample[1])


async def test_trioweb_run_serves_the_chat_from_the_repository_root() -> None:
    """``trioweb run --app examples.chat.app:app``, run where the README runs it, serves the
    page, its script and a websocket, and stops on Ctrl+C."""
    with trio.fail_after(10):
        async with running(
            *TRIOWEB, "run", "--app", "examples.chat.app:app", "--port", "0"
        ) as command:
            url = (await command.wait_for(r"^Running on (http://127\.0\.0\.1:\d+) "))[1]
            async with httpx.AsyncClient(base_url=url) as http:
                assert '<form id="join"' in (await http.get("/")).text
                assert (await http.get("/static/chat.js")).status_code == 200
            ws_url = url.replace("http://", "ws://") + "/ws/rooms/lobby?name=ann"
            async with open_websocket_url(ws_url) as ann:
                assert json.loads(await ann.get_message())["online"] == ["ann"]
            command.send_signal(signal.SIGINT)
            assert await command.finish() == 0
