"""A stand-in for examples/chat (temporary: deleted once the chat example lands): one page that
follows the chat's DOM contract, and a websocket per room with an in-process registry, so the
browser test can be written before the real chat exists."""

from __future__ import annotations

import json

import trio

from trioweb import TrioWeb, websocket

app = TrioWeb(__name__)
rooms: dict[str, dict[str, trio.MemorySendChannel[str]]] = {}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chat (stand-in)</title></head>
<body>
<p id="status">disconnected</p>
<form id="join"><input id="name" placeholder="name"><input id="room" value="lobby">
<button type="submit">Join</button></form>
<form id="send" hidden><input id="message"><button type="submit">Send</button></form>
<ul id="online"></ul>
<ul id="messages"></ul>
<script>
let ws;
const $ = (s) => document.querySelector(s);
$("#join").onsubmit = (e) => {
  e.preventDefault();
  const url = `ws://${location.host}/ws/${$("#room").value}?name=${$("#name").value}`;
  ws = new WebSocket(url);
  ws.onopen = () => { $("#status").textContent = "connected"; $("#join").hidden = true;
                      $("#send").hidden = false; };
  ws.onclose = () => { $("#status").textContent = "disconnected"; };
  ws.onmessage = (m) => {
    const data = JSON.parse(m.data);
    if (data.online) {
      $("#online").replaceChildren(...data.online.map((n) => {
        const li = document.createElement("li"); li.textContent = n; return li; }));
    }
    const li = document.createElement("li");
    li.className = data.text === undefined ? "notice" : "message";
    li.textContent = data.text === undefined ? data.notice : `${data.name}: ${data.text}`;
    $("#messages").append(li);
  };
};
$("#send").onsubmit = (e) => {
  e.preventDefault(); ws.send($("#message").value); $("#message").value = "";
};
</script></body></html>"""


@app.route("/")
async def page() -> str:
    return PAGE


async def tell(room: str, event: dict[str, object]) -> None:
    for channel in list(rooms.get(room, {}).values()):
        await channel.send(json.dumps(event))


@app.websocket("/ws/<room>")
async def chat(room: str) -> None:
    name = websocket.args.get("name", "anonymous")
    send, receive = trio.open_memory_channel[str](100)
    members = rooms.setdefault(room, {})
    members[name] = send
    try:
        await tell(room, {"notice": f"{name} joined", "online": sorted(members)})
        async with trio.open_nursery() as nursery:

            async def forward() -> None:
                async for text in receive:
                    await websocket.send(text)

            nursery.start_soon(forward)
            async for message in websocket:
                await tell(room, {"name": name, "text": message})
            nursery.cancel_scope.cancel()
    finally:
        del members[name]
        with trio.CancelScope(shield=True):
            await tell(room, {"notice": f"{name} left", "online": sorted(members)})
