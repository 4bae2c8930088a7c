"""A chat with rooms: live messages, join and leave notices, who is online, a JSON API.

Run it with ``trioweb run --app examples.chat.app:app --port 5000`` and open
http://127.0.0.1:5000 in two browser windows. One process keeps everything in memory. For several
worker processes (or machines) the rooms must be shared: start Redis or Valkey, install
``trioweb[redis]`` and set ``BROADCAST_URL``::

    BROADCAST_URL=redis://127.0.0.1:6379/0 trioweb run --app examples.chat.app:app --workers 4

The hub (:class:`trioweb.broadcast.Broadcast`) does the sharing: every room is a topic, a
message is published once and reaches each subscriber, and presence (``hub.track``) says who is
online wherever they are connected.

The websocket protocol: every message is a JSON object with a ``type``.

* server to client: ``welcome`` (first, with ``online``: who is in the room, you included, and
  ``ping_interval``), ``message`` (``name``, ``text``), ``join`` and ``leave`` (``name``),
  ``pong``, ``error`` (``error``: what was wrong with what you sent), ``interrupted`` and
  ``resumed`` (the hub lost its Redis server and got it back; messages in between are lost);
* client to server: ``message`` (``text``) and ``ping``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import trio

from trioweb import TrioWeb, render_template, request, websocket
from trioweb.broadcast import Broadcast, Interrupted, Join, Leave, Resumed, Subscription

app = TrioWeb(__name__)
# memory:// (the default) serves one process; redis://host:6379/0 shares rooms between processes.
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")
# The client pings this often; the server closes a websocket that sends nothing for 2.5 times it.
app.config["CHAT_PING_INTERVAL"] = 15.0
# Chat messages are short: keep what a client may send small, over HTTP and over the websocket.
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024
app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] = 16 * 1024

ROOM = re.compile(r"[\w-]{1,32}")
MAX_NAME = 24
MAX_TEXT = 2000
#: The close code for a client that stopped pinging (4000-4999 are for applications to define).
HEARTBEAT_TIMEOUT = 4000

# A chat client that falls 256 messages behind is cut (SubscriberTooSlow closes its websocket with
# 1013, "Try Again Later") and its page reconnects, which starts again from a fresh welcome. The
# drop policies would keep it connected but silently lose messages, and join and leave events
# too, so its list of who is online would go wrong without anyone noticing.
hub = Broadcast(app, buffer=256, overflow="raise")


@app.get("/")
async def index() -> str:
    """The chat page; ``/?room=kitchen`` prefills the room."""
    room = request.args.get("room", "lobby")
    return await render_template("index.html", room=room if ROOM.fullmatch(room) else "lobby")


@app.websocket("/ws/rooms/<room>")
async def chat(room: str) -> Any:
    """One user in one room, from joining until the websocket goes."""
    name = websocket.args.get("name", "").strip()
    problem = room_problem(room) or name_problem(name)
    if problem is not None:
        return {"error": problem}, 400  # before accept: the handshake is refused with 400
    topic = f"room:{room}"
    # Best effort: two clients choosing the same name at the same instant may both get in.
    if name in await hub.presence(topic):
        return {"error": f"the name {name!r} is taken in room {room!r}: choose another"}, 409
    # Subscribe first, so nothing that happens from here on is missed; send the welcome; only
    # then track: the others see the join after this client knows who is there.
    async with hub.subscribe(topic, events=True) as subscription:
        online = await hub.presence(topic)
        await websocket.send_json(
            {
                "type": "welcome",
                "room": room,
                "name": name,
                "online": sorted({*online, name}),
                "ping_interval": app.config["CHAT_PING_INTERVAL"],
            }
        )
        async with hub.track(topic, name), trio.open_nursery() as nursery:
            nursery.start_soon(send_room_to_client, subscription)
            await receive_from_client(topic, name)
            nursery.cancel_scope.cancel()  # the client stopped pinging


async def send_room_to_client(subscription: Subscription) -> None:
    """Send the room's messages and presence events to this client, as they come."""
    async for item in subscription:
        if isinstance(item, str):  # a chat message, already JSON: published once, sent as is
            await websocket.send(item)
        elif isinstance(item, Join | Leave):
            kind = "join" if isinstance(item, Join) else "leave"
            await websocket.send_json({"type": kind, "name": item.key})
        elif isinstance(item, Interrupted):
            await websocket.send_json({"type": "interrupted", "reason": item.reason})
        elif isinstance(item, Resumed):
            await websocket.send_json({"type": "resumed", "lost": item.lost})


async def receive_from_client(topic: str, name: str) -> None:
    """Publish what this client says and answer its pings, until it has been silent for 2.5
    ping intervals: then close its websocket and return."""
    silence_limit = 2.5 * app.config["CHAT_PING_INTERVAL"]
    with trio.move_on_after(silence_limit) as silence:
        async for data in websocket:
            silence.deadline = trio.current_time() + silence_limit
            message = parse(data)
            if message.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
            elif message.get("type") == "message":
                problem = text_problem(message.get("text"))
                if problem is not None:
                    await websocket.send_json({"type": "error", "error": problem})
                    continue
                text = message["text"]
                await hub.publish_json(topic, {"type": "message", "name": name, "text": text})
            else:
                error = 'send JSON: {"type": "message", "text": "..."} or {"type": "ping"}'
                await websocket.send_json({"type": "error", "error": error})
    await websocket.close(HEARTBEAT_TIMEOUT, f"nothing received for {silence_limit:g} s")


@app.post("/api/rooms/<room>/messages")
async def post_message(room: str) -> Any:
    """Say something in a room from outside the chat (a bot, a script): everyone in the room
    gets it. Answers 202 with the message sent, or 400 saying what is wrong."""
    # force: the content type is not checked, so that `curl -d '{...}'` works as is.
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        return {"error": 'send a JSON object: {"name": "...", "text": "..."}'}, 400
    name, text = data.get("name"), data.get("text")
    problem = room_problem(room) or name_problem(name) or text_problem(text)
    if problem is not None:
        return {"error": problem}, 400
    message = {"type": "message", "name": data["name"].strip(), "text": text}
    await hub.publish_json(f"room:{room}", message)
    return message, 202


def parse(data: str | bytes) -> dict[str, Any]:
    """A client's websocket message as a JSON object; ``{}`` if it is not one."""
    try:
        message = json.loads(data)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def room_problem(room: str) -> str | None:
    """What is wrong with a room's name, or ``None``."""
    if ROOM.fullmatch(room) is None:
        return "a room's name is 1 to 32 letters, digits, '-' or '_'"
    return None


def name_problem(name: Any) -> str | None:
    """What is wrong with a user's name, or ``None``."""
    if not isinstance(name, str) or not name.strip():
        return "send a name: 'name' must be a non-empty string"
    if len(name.strip()) > MAX_NAME or not name.isprintable():
        return f"a name is at most {MAX_NAME} printable characters"
    return None


def text_problem(text: Any) -> str | None:
    """What is wrong with a message's text, or ``None``."""
    if not isinstance(text, str) or not text.strip():
        return "send some text: 'text' must be a non-empty string"
    if len(text) > MAX_TEXT:
        return f"a message is at most {MAX_TEXT} characters"
    return None
