// The chat page: join a room over a websocket, show messages and who is online, send messages.
// Plain JavaScript, no build step. Text from other users is only ever set with textContent, so
// a message cannot inject HTML. Every websocket message is a JSON object with a "type"
// (examples/chat/app.py lists them). When the socket drops, the page reconnects with backoff
// (1 s, 2 s, 4 s ... 30 s) and starts again from the server's welcome.
"use strict";

const $ = (id) => document.getElementById(id);
const joinForm = $("join");
const sendForm = $("send");
const messages = $("messages");
const online = $("online");
const status = $("status");

let socket = null; // the open (or opening) websocket
let me = ""; // this user's name
let room = "";
let joined = false; // welcomed at least once: a refused reconnect is retried, a first try is not
let retries = 0;
let names = new Set(); // who is online
let heartbeat = null;
let lastHeard = 0;

function setStatus(text) {
  status.textContent = text;
  status.className = text === "connected" ? "connected" : "";
}

function addItem(className, ...parts) {
  const item = document.createElement("li");
  item.className = className;
  for (const [partClass, text] of parts) {
    const span = document.createElement("span");
    span.className = partClass;
    span.textContent = text;
    item.append(span);
  }
  const atBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 4;
  messages.append(item);
  if (atBottom) messages.scrollTop = messages.scrollHeight;
}

const notice = (text) => addItem("notice", ["text", text]);

function showOnline() {
  online.replaceChildren(
    ...[...names].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }),
  );
}

function handle(message) {
  switch (message.type) {
    case "welcome":
      joined = true;
      retries = 0;
      names = new Set(message.online);
      showOnline();
      setStatus("connected");
      notice(`You are ${message.name} in ${message.room}.`);
      startHeartbeat(message.ping_interval);
      break;
    case "message":
      addItem("message", ["name", message.name], ["text", message.text]);
      break;
    case "join":
      names.add(message.name);
      showOnline();
      notice(`${message.name} joined`);
      break;
    case "leave":
      names.delete(message.name);
      showOnline();
      notice(`${message.name} left`);
      break;
    case "error":
      notice(`Not sent: ${message.error}`);
      break;
    case "interrupted":
      notice("The server lost contact with the other servers: messages may be missed.");
      break;
    case "resumed":
      notice(`Back in contact (${message.lost} messages were lost).`);
      break;
  }
}

// The client pings every ping_interval seconds; a server that has said nothing for 2.5
// intervals counts as gone, and the page reconnects.
function startHeartbeat(seconds) {
  stopHeartbeat();
  const ws = socket;
  heartbeat = setInterval(() => {
    if (Date.now() - lastHeard > 2500 * seconds) dropped(ws);
    else ws.send(JSON.stringify({ type: "ping" }));
  }, 1000 * seconds);
}

function stopHeartbeat() {
  clearInterval(heartbeat);
  heartbeat = null;
}

function connect() {
  setStatus("connecting");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ name: me });
  const ws = new WebSocket(`${scheme}//${location.host}/ws/rooms/${encodeURIComponent(room)}?${query}`);
  socket = ws;
  ws.onmessage = (event) => {
    lastHeard = Date.now();
    try {
      handle(JSON.parse(event.data));
    } catch (error) {
      console.error("bad message from the server", event.data, error);
    }
  };
  ws.onclose = () => dropped(ws);
}

// The websocket `ws` is gone (closed, refused, or silent): reconnect, unless it was never let in.
function dropped(ws) {
  if (ws !== socket) return; // already handled
  socket = null;
  ws.onclose = null;
  ws.close();
  stopHeartbeat();
  if (!joined) {
    setStatus("not connected");
    notice(`Could not join ${room} as ${me}: the name may be taken or invalid, or the room's name`
      + " is not 1 to 32 letters, digits, - or _.");
    joinForm.hidden = false;
    return;
  }
  const seconds = Math.min(30, 2 ** retries);
  retries += 1;
  setStatus(`disconnected: reconnecting in ${seconds} s`);
  notice("Disconnected.");
  setTimeout(connect, 1000 * seconds);
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  me = $("name").value.trim();
  room = $("room").value.trim() || "lobby";
  joined = false;
  joinForm.hidden = true;
  $("chat").hidden = false;
  $("title").textContent = room;
  history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
  connect();
});

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message");
  if (socket === null || socket.readyState !== WebSocket.OPEN || !input.value.trim()) return;
  socket.send(JSON.stringify({ type: "message", text: input.value }));
  input.value = "";
});
