"""Request bodies: raw bytes, JSON, forms and uploaded files, under size limits."""

from trioweb import TrioWeb, request

app = TrioWeb(__name__)
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # refuse bodies over 1 MiB with a 413


@app.post("/echo")
async def echo() -> bytes:
    data = await request.get_data()
    return data


@app.post("/sum")
async def add_numbers() -> dict[str, float]:
    numbers = await request.get_json()
    return {"sum": sum(numbers)}


@app.post("/sum-or-nothing")
async def add_numbers_quietly() -> dict[str, float | None]:
    numbers = await request.get_json(silent=True)
    return {"sum": sum(numbers) if isinstance(numbers, list) else None}


@app.post("/signup")
async def signup() -> str:
    form = await request.form
    return f"Welcome, {form['name']}!\n"


@app.post("/upload")
async def upload() -> dict[str, object]:
    files = await request.files
    photo = files["photo"]
    content = photo.read()
    return {"filename": photo.filename, "size": len(content)}
