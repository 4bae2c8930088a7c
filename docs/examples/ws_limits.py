"""Limits on websockets: messages up to 64 KiB, no compression, quiet connections pinged."""

import logging

from trioweb import TrioWeb, websocket

log = logging.getLogger(__name__)

app = TrioWeb(__name__)
app.config.update(
    WEBSOCKET_MAX_MESSAGE_SIZE=64 * 1024,  # bytes per message; closed with 1009 beyond
    WEBSOCKET_COMPRESSION=False,  # do not accept permessage-deflate
    WEBSOCKET_PING_INTERVAL=30.0,  # ping a connection that was quiet for 30 s,
    WEBSOCKET_PING_TIMEOUT=10.0,  # and end it if nothing comes back within 10 s
)


@app.websocket("/upload")
async def upload() -> None:
    total = 0
    try:
        async for chunk in websocket:
            total += len(chunk)
            await websocket.send(str(total))
    finally:
        log.info("upload ended: %s %s", websocket.close_code, websocket.close_reason)
