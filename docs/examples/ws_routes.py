"""A page and its websocket on the same path."""

from trioweb import TrioWeb, url_for, websocket

app = TrioWeb(__name__)

PAGE = """<!doctype html>
<title>Feed</title>
<pre id="feed"></pre>
<script>
  const socket = new WebSocket("{url}");
  socket.onmessage = (event) => {{
    document.getElementById("feed").textContent += event.data + "\\n";
  }};
</script>
"""


@app.get("/feed")
async def feed_page() -> str:
    # url_for builds a websocket rule's URL with ws:// (wss:// when the page came over https).
    return PAGE.format(url=url_for("feed_socket"))


@app.websocket("/feed")
async def feed_socket() -> None:
    await websocket.accept()
    for line in ["first", "second", "third"]:
        await websocket.send(line)


@app.websocket("/socket-only")
async def socket_only() -> None:
    await websocket.send("websockets only here")


@app.get("/page-only")
async def page_only() -> str:
    return "HTTP only here"
