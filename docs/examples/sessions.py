"""Log in over HTTP, then use the session in a websocket; messages flashed for the next page."""

from trioweb import (
    TrioWeb,
    abort,
    flash,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
    websocket,
)

app = TrioWeb(__name__)
app.config.from_mapping(
    SECRET_KEY="only for development: set TRIOWEB_SECRET_KEY in production",
    SESSION_COOKIE_SAMESITE="Lax",
)
app.config.from_prefixed_env()  # TRIOWEB_SECRET_KEY=... replaces the key above

PASSWORDS = {"ada": "lovelace", "grace": "hopper"}  # a real app checks password hashes

PAGE = """\
{% for category, message in get_flashed_messages(with_categories=true) -%}
<p class="{{ category }}">{{ message }}</p>
{% endfor -%}
{% if session.user %}Logged in as {{ session.user }}.{% else %}Not logged in.{% endif %}
"""


@app.get("/")
async def index() -> str:
    return await render_template_string(PAGE)


@app.post("/login")
async def login() -> object:
    form = await request.form
    user = form.get("user", "")
    if PASSWORDS.get(user) != form.get("password"):
        flash("Wrong user name or password.", "error")
        return redirect(url_for("index"))
    session["user"] = user
    session.permanent = form.get("remember") == "on"  # keep it for PERMANENT_SESSION_LIFETIME
    flash(f"Welcome, {user}.")
    return redirect(url_for("index"))


@app.post("/logout")
async def logout() -> object:
    session.clear()
    flash("Logged out.")
    return redirect(url_for("index"))


@app.websocket("/chat")
async def chat() -> None:
    user = session.get("user")  # read from the handshake's Cookie header
    if user is None:
        abort(401)  # refuses the handshake
    await websocket.accept()
    async for message in websocket:
        await websocket.send(f"{user}: {message}")
