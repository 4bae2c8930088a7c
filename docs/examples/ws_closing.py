"""Closing a websocket: close codes, errors after accept, and the websocket hooks."""

import trio

from trioweb import TrioWeb, g, websocket

app = TrioWeb(__name__)

MESSAGE_TOO_BIG = 1009
MAX_NOTE = 200  # characters
MAX_NOTES = 3


class QuotaExceeded(Exception):
    """The user has saved as many notes as they may."""


#: One line per error handled, and per websocket that ended.
events: list[str] = []


@app.websocket("/notes")
async def notes() -> None:
    await websocket.accept()
    saved = 0
    while True:
        note = await websocket.receive()
        if note == "bye":
            return  # trioweb closes with 1000
        if len(note) > MAX_NOTE:
            await websocket.close(MESSAGE_TOO_BIG, f"notes are at most {MAX_NOTE} characters")
            return
        if saved == MAX_NOTES:
            raise QuotaExceeded(f"{MAX_NOTES} notes saved already")
        saved += 1
        await websocket.send_json(saved=saved)


@app.errorhandler(QuotaExceeded)
async def quota_exceeded(error: QuotaExceeded) -> tuple[dict[str, str], int]:
    events.append(f"quota exceeded: {error}")
    # An HTTP view would answer with this; an accepted websocket closes with 1011 instead.
    return {"error": str(error)}, 429


@app.before_websocket
async def start_clock() -> None:
    g.started = trio.current_time()


@app.teardown_websocket
async def record_session(error: BaseException | None) -> None:
    seconds = trio.current_time() - g.started
    outcome = "ok" if error is None else type(error).__name__
    events.append(f"{websocket.path} ended after {seconds:.0f} s: {outcome}")
