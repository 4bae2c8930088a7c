"""Pages: Jinja2 templates, static files and file downloads."""

import os

from trioweb import Response, TrioWeb, render_template, render_template_string, send_from_directory

app = TrioWeb(__name__)

DOWNLOADS = os.path.join(app.root_path, "downloads")


@app.get("/hello/<name>")
async def hello(name: str) -> str:
    return await render_template("hello.html", name=name)


@app.get("/shout/<word>")
async def shout(word: str) -> str:
    return await render_template_string("<b>{{ word | upper }}!</b>", word=word)


@app.get("/downloads/<path:filename>")
async def download(filename: str) -> Response:
    return await send_from_directory(DOWNLOADS, filename, as_attachment=True)
