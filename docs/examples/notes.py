"""The tutorial's app: a small notes service (``trioweb run --app notes:app``)."""

from trioweb import TrioWeb, abort, request, url_for

app = TrioWeb(__name__)

#: The notes, by id. A real app would keep them in a database.
notes: dict[int, str] = {}


@app.before_serving
async def load_notes() -> None:
    notes.clear()
    notes[1] = "Try trioweb"


@app.get("/")
async def index() -> str:
    return "Hello from the notes app!\n"


@app.get("/notes")
async def list_notes() -> dict[str, list[dict[str, object]]]:
    return {
        "notes": [
            {"id": note_id, "text": text, "url": url_for("show_note", note_id=note_id)}
            for note_id, text in notes.items()
        ]
    }


@app.get("/notes/<int:note_id>")
async def show_note(note_id: int) -> dict[str, object]:
    if note_id not in notes:
        abort(404)
    return {"id": note_id, "text": notes[note_id]}


@app.post("/notes")
async def add_note() -> tuple[dict[str, object], int, dict[str, str]]:
    data = await request.get_json()
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text:
        abort(400, 'Send a JSON object such as {"text": "buy milk"}.')
    note_id = max(notes, default=0) + 1
    notes[note_id] = text
    location = url_for("show_note", note_id=note_id)
    return {"id": note_id, "text": text}, 201, {"Location": location}


if __name__ == "__main__":
    app.run()
