"""The session: a signed cookie opened on first use, saved after the after_request hooks, read
(never written) by websockets; flashed messages kept in it; a replaceable interface."""

from __future__ import annotations

import logging
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
import trio
from _docs import load_example
from itsdangerous import URLSafeTimedSerializer

from trioweb import (
    Blueprint,
    Response,
    SecureCookieSessionInterface,
    Session,
    SessionInterface,
    TrioWeb,
    flash,
    get_flashed_messages,
    render_template_string,
    session,
    websocket,
)
from trioweb.testing import TestResponse, WebsocketResponseError

SECRET = "test secret key, long and random enough"


def _cookie(response: TestResponse, name: str = "session") -> str | None:
    """The value the response sets for cookie ``name`` (``None`` if it sets none)."""
    for header in response.headers.getlist("Set-Cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if name in parsed:
            return parsed[name].value
    return None


def _set_cookie_header(response: TestResponse) -> str:
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == 1, headers
    return headers[0]


def _app() -> TrioWeb:
    app = TrioWeb(__name__)
    app.secret_key = SECRET

    @app.post("/login/<user>")
    async def login(user: str) -> str:
        session["user"] = user
        return "logged in"

    @app.get("/whoami")
    async def whoami() -> str:
        return str(session.get("user", "anonymous"))

    @app.post("/logout")
    async def logout() -> str:
        session.clear()
        return "bye"

    @app.get("/plain")
    async def plain() -> str:
        return "no session here"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send(str(session.get("user", "anonymous")))

    return app


async def test_session_set_by_one_request_is_read_by_the_next_and_by_a_websocket() -> None:
    """A session value set in a view comes back in a signed cookie; sending that cookie back,
    a later request and a websocket handshake both read it."""
    app = _app()
    async with app.test_client() as client:
        response = await client.post("/login/ada")
        cookie = _cookie(response)
        assert cookie is not None
        assert cookie.count(".") == 2  # payload.timestamp.signature
        assert "Cookie" in response.headers["Vary"]
        headers = {"Cookie": f"session={cookie}"}
        assert await (await client.get("/whoami", headers=headers)).get_data() == b"ada"
        assert await (await client.get("/whoami")).get_data() == b"anonymous"
        async with client.websocket("/ws", headers=headers) as ws:
            assert await ws.receive() == "ada"


async def test_cookie_attributes_follow_the_config() -> None:
    """The cookie's name, path, domain, HttpOnly, Secure and SameSite come from the config; a
    session that is not permanent has no expiry (it ends with the browser)."""
    app = _app()
    app.config.update(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    async with app.test_client() as client:
        response = await client.post("/login/ada")
    header = _set_cookie_header(response)
    assert header.startswith("sid=")
    for part in ("Domain=example.com", "Path=/app", "HttpOnly", "Secure", "SameSite=Lax"):
        assert part in header
    assert "Expires" not in header


async def test_default_cookie_path_is_the_application_root_and_httponly_can_be_off() -> None:
    """Without SESSION_COOKIE_PATH the cookie's path is APPLICATION_ROOT; HttpOnly follows
    SESSION_COOKIE_HTTPONLY."""
    app = _app()
    app.config.update(APPLICATION_ROOT="/root", SESSION_COOKIE_HTTPONLY=False)
    async with app.test_client() as client:
        header = _set_cookie_header(await client.post("/login/ada"))
    assert "Path=/root" in header
    assert "HttpOnly" not in header


async def test_untouched_session_sends_no_cookie_and_no_vary() -> None:
    """A request whose code never touches the session gets no Set-Cookie and no Vary: Cookie."""
    app = _app()
    async with app.test_client() as client:
        response = await client.get("/plain")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


async def test_read_only_access_sends_vary_but_no_cookie() -> None:
    """Reading the session (the response depends on the cookie) adds Vary: Cookie, and sends
    no cookie when nothing changed."""
    app = _app()
    async with app.test_client() as client:
        response = await client.get("/whoami")
    assert response.headers["Vary"] == "Cookie"
    assert "Set-Cookie" not in response.headers


async def test_emptying_the_session_deletes_the_cookie() -> None:
    """Clearing a session that had data expires the cookie."""
    app = _app()
    async with app.test_client() as client:
        cookie = _cookie(await client.post("/login/ada"))
        response = await client.post("/logout", headers={"Cookie": f"session={cookie}"})
    header = _set_cookie_header(response)
    assert header.startswith("session=;")
    assert "Expires=Thu, 01 Jan 1970" in header
    assert "Cookie" in response.headers["Vary"]


async def test_clearing_an_empty_session_sends_nothing() -> None:
    """Clearing a session the client never had changes nothing the client holds."""
    app = _app()
    async with app.test_client() as client:
        response = await client.post("/logout")
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("garbage", id="not-signed"),
        pytest.param("eyJ1c2VyIjoiZXZlIn0.ZZZZZZ.invalidsignature", id="bad-signature"),
        pytest.param(
            URLSafeTimedSerializer("another key", salt="trioweb.session").dumps({"user": "eve"}),
            id="other-key",
        ),
        pytest.param(
            URLSafeTimedSerializer(
                SECRET,
                salt="trioweb.session",
                signer_kwargs={
                    "key_derivation": "hmac",
                    "digest_method": __import__("hashlib").sha256,
                },
            ).dumps(["not", "a", "dict"]),
            id="not-a-dict",
        ),
        pytest.param("", id="empty"),
    ],
)
async def test_tampered_or_foreign_cookie_is_an_empty_session(cookie: str) -> None:
    """A cookie that is not a valid session signed with SECRET_KEY opens an empty session: the
    view runs, never a 500."""
    app = _app()
    async with app.test_client() as client:
        response = await client.get("/whoami", headers={"Cookie": f"session={cookie}"})
    assert response.status_code == 200
    assert await response.get_data() == b"anonymous"


async def test_modified_cookie_is_refused() -> None:
    """Changing one character of a valid cookie's payload makes it an empty session."""
    app = _app()
    async with app.test_client() as client:
        cookie = _cookie(await client.post("/login/ada"))
        assert cookie is not None
        payload, _, rest = cookie.partition(".")
        forged = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + rest
        response = await client.get("/whoami", headers={"Cookie": f"session={forged}"})
    assert await response.get_data() == b"anonymous"


async def test_expired_cookie_is_an_empty_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cookie signed longer ago than PERMANENT_SESSION_LIFETIME opens an empty session."""
    app = _app()
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=60)
    async with app.test_client() as client:
        cookie = _cookie(await client.post("/login/ada"))
        headers = {"Cookie": f"session={cookie}"}
        assert await (await client.get("/whoami", headers=headers)).get_data() == b"ada"
        import itsdangerous.timed

        now = itsdangerous.timed.TimestampSigner.get_timestamp
        monkeypatch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: now(self) + 61
        )
        assert await (await client.get("/whoami", headers=headers)).get_data() == b"anonymous"


async def test_permanent_session_has_an_expiry_and_is_refreshed() -> None:
    """`session.permanent = True` gives the cookie an expiry PERMANENT_SESSION_LIFETIME away;
    later requests that only read it send it again (SESSION_REFRESH_EACH_REQUEST), unless that
    is off."""
    app = _app()
    app.config["PERMANENT_SESSION_LIFETIME"] = 3600

    @app.post("/remember")
    async def remember() -> str:
        session.permanent = True
        session["user"] = "ada"
        return str(session.permanent)

    async with app.test_client() as client:
        response = await client.post("/remember")
        assert await response.get_data() == b"True"
        assert "Expires=" in _set_cookie_header(response)
        headers = {"Cookie": f"session={_cookie(response)}"}
        refreshed = await client.get("/whoami", headers=headers)
        assert "Expires=" in _set_cookie_header(refreshed)
        app.config["SESSION_REFRESH_EACH_REQUEST"] = False
        assert "Set-Cookie" not in (await client.get("/whoami", headers=headers)).headers


async def test_session_is_saved_after_the_after_request_hooks() -> None:
    """A before_request hook and an after_request hook can both change the session, and the
    saved cookie has both changes."""
    app = _app()

    @app.before_request
    async def count() -> None:
        session["visits"] = session.get("visits", 0) + 1

    @app.after_request
    async def stamp(response: Response) -> Response:
        session["last"] = "after"
        return response

    @app.get("/state")
    async def state() -> dict[str, Any]:
        return dict(session)

    async with app.test_client() as client:
        first = await client.get("/state")
        headers = {"Cookie": f"session={_cookie(first)}"}
        second = await client.get("/state", headers=headers)
    assert await first.get_json() == {"visits": 1}
    assert await second.get_json() == {"visits": 2, "last": "after"}


async def test_session_is_saved_on_error_responses() -> None:
    """An error page (here a 404 from abort) still carries the session changes made before."""
    app = _app()

    @app.get("/missing")
    async def missing() -> str:
        session["tried"] = True
        from trioweb import abort

        abort(404)

    async with app.test_client() as client:
        response = await client.get("/missing")
    assert response.status_code == 404
    assert _cookie(response) is not None


async def test_mutating_methods_mark_the_session_modified() -> None:
    """Every dict method that changes the session marks it modified; reads do not."""
    changes: list[tuple[str, Any]] = [
        ("setitem", lambda s: s.__setitem__("a", 1)),
        ("delitem", lambda s: s.__delitem__("x")),
        ("clear", lambda s: s.clear()),
        ("pop", lambda s: s.pop("x")),
        ("popitem", lambda s: s.popitem()),
        ("setdefault-new", lambda s: s.setdefault("new", 1)),
        ("update", lambda s: s.update(a=1)),
        ("ior", lambda s: s.__ior__({"a": 1})),
        ("permanent", lambda s: setattr(s, "permanent", True)),
    ]
    for name, change in changes:
        opened = Session({"x": 1})
        change(opened)
        assert opened.modified, name
    emptied = Session()
    emptied.clear()
    assert not emptied.modified
    reads = Session({"x": 1})
    assert reads.get("x") == 1
    assert reads.setdefault("x", 2) == 1
    assert reads.pop("missing", None) is None
    assert "x" in reads
    assert not reads.permanent
    assert not reads.modified


async def test_without_secret_key_reads_are_empty_and_a_write_says_to_set_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without SECRET_KEY the session reads as empty (a cookie is ignored), and writing to it
    is a RuntimeError (a 500) that says to set SECRET_KEY."""
    app = _app()
    app.secret_key = None
    async with app.test_client() as client:
        response = await client.get("/whoami", headers={"Cookie": "session=anything"})
        assert await response.get_data() == b"anonymous"
        assert "Set-Cookie" not in response.headers
        with caplog.at_level(logging.ERROR, "trioweb"):
            failed = await client.post("/login/ada")
    assert failed.status_code == 500
    assert "Set-Cookie" not in failed.headers
    assert "no secret key was set: set app.secret_key" in caplog.text


async def test_writing_in_a_websocket_is_an_error_saying_why() -> None:
    """In a websocket handler the session is readable but a write raises RuntimeError saying
    that a websocket cannot set cookies, and what to do instead; flash() too."""
    app = _app()
    seen: list[str] = []

    @app.websocket("/write")
    async def write() -> None:
        await websocket.accept()
        for change in (lambda: session.__setitem__("user", "eve"), lambda: flash("hi")):
            try:
                change()
            except RuntimeError as error:
                seen.append(str(error))
        await websocket.send("done")

    async with app.test_client() as client, client.websocket("/write") as ws:
        assert await ws.receive() == "done"
    assert len(seen) == 2
    assert all("read-only in a websocket" in message for message in seen)
    assert "HTTP view" in seen[0]


async def test_session_outside_a_connection_is_a_runtime_error() -> None:
    """Using `session` or `get_flashed_messages()` outside a request or websocket raises
    RuntimeError saying where they work."""
    with pytest.raises(RuntimeError, match="session is only available while handling"):
        session.get("user")
    with pytest.raises(RuntimeError, match="get_flashed_messages"):
        get_flashed_messages()


async def test_session_is_shared_with_tasks_the_view_starts() -> None:
    """Tasks in the view's nursery see (and change) the same session as the view."""
    app = _app()

    @app.post("/task")
    async def task() -> str:
        async def set_it() -> None:
            session["from_task"] = True

        async with trio.open_nursery() as nursery:
            nursery.start_soon(set_it)
        return str(session["from_task"])

    async with app.test_client() as client:
        response = await client.post("/task")
    assert await response.get_data() == b"True"
    assert _cookie(response) is not None


# Flashed messages -------------------------------------------------------------------------------


def _flash_app() -> TrioWeb:
    app = TrioWeb(__name__)
    app.secret_key = SECRET

    @app.post("/save")
    async def save() -> str:
        flash("Saved.")
        flash("Disk almost full.", "warning")
        flash("Could not email.", "error")
        return "ok"

    @app.get("/show")
    async def show() -> dict[str, Any]:
        return {
            "all": get_flashed_messages(),
            "again": get_flashed_messages(with_categories=True),
            "errors": get_flashed_messages(category_filter=["error", "warning"]),
        }

    return app


async def test_flashed_messages_are_shown_once_on_the_next_request() -> None:
    """Messages flashed in one request are returned, oldest first, by the next one (several
    times within it, filtered by category if asked), then are gone from the session."""
    app = _flash_app()
    async with app.test_client() as client:
        saved = await client.post("/save")
        shown = await client.get("/show", headers={"Cookie": f"session={_cookie(saved)}"})
        body = await shown.get_json()
        assert body == {
            "all": ["Saved.", "Disk almost full.", "Could not email."],
            "again": [
                ["message", "Saved."],
                ["warning", "Disk almost full."],
                ["error", "Could not email."],
            ],
            "errors": ["Disk almost full.", "Could not email."],
        }
        header = _set_cookie_header(shown)  # the messages left the session: it is now empty
        assert header.startswith("session=;")
        nothing = await client.get("/show", headers={"Cookie": f"session={_cookie(shown)}"})
        assert (await nothing.get_json())["all"] == []


async def test_flashed_messages_in_a_template() -> None:
    """Templates can call get_flashed_messages() and read `session`."""
    app = _flash_app()

    @app.get("/page")
    async def page() -> str:
        return await render_template_string(
            "{{ session.get('who', '?') }}:{% for c, m in get_flashed_messages(true) %}"
            "[{{ c }}|{{ m }}]{% endfor %}"
        )

    async with app.test_client() as client:
        saved = await client.post("/save")
        page_response = await client.get("/page", headers={"Cookie": f"session={_cookie(saved)}"})
    assert await page_response.get_data() == (
        b"?:[message|Saved.][warning|Disk almost full.][error|Could not email.]"
    )


async def test_websocket_reads_flashed_messages_without_removing_them() -> None:
    """A websocket sees the flashed messages but leaves them in the (read-only) session."""
    app = _flash_app()

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send_json(get_flashed_messages())
        await websocket.send_json(session.get("_flashes"))

    async with app.test_client() as client:
        saved = await client.post("/save")
        headers = {"Cookie": f"session={_cookie(saved)}"}
        async with client.websocket("/ws", headers=headers) as ws:
            assert await ws.receive_json() == ["Saved.", "Disk almost full.", "Could not email."]
            assert len(await ws.receive_json()) == 3


# A replaceable interface ------------------------------------------------------------------------


class MemorySessions(SessionInterface):
    """Sessions kept in a dict on the server, the cookie holding only a key."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}

    def open_session(self, app: TrioWeb, conn: Any) -> Session | None:
        sid = conn.cookies.get("sid")
        if sid is None or sid not in self.store:
            return Session(new=True)
        return Session(self.store[sid])

    def save_session(self, app: TrioWeb, session: Session, response: Response) -> None:
        sid = str(len(self.store) + 1)
        self.store[sid] = dict(session)
        response.set_cookie("sid", sid)


async def test_custom_session_interface() -> None:
    """An app's session_interface replaces the signed cookie: views use `session` the same."""
    app = _app()
    app.session_interface = MemorySessions()
    async with app.test_client() as client:
        response = await client.post("/login/ada")
        sid = _cookie(response, "sid")
        assert sid == "1"
        whoami = await client.get("/whoami", headers={"Cookie": f"sid={sid}"})
        assert await whoami.get_data() == b"ada"


async def test_interface_that_opens_no_session_makes_it_read_only() -> None:
    """An interface returning None (sessions unavailable) gives an empty session whose writes
    raise RuntimeError naming the interface; the base class's methods are abstract."""

    class Unavailable(SessionInterface):
        def open_session(self, app: TrioWeb, conn: Any) -> Session | None:
            return None

    app = _app()
    app.session_interface = Unavailable()
    seen: list[str] = []

    @app.get("/try")
    async def attempt() -> str:
        try:
            session["x"] = 1
        except RuntimeError as error:
            seen.append(str(error))
        return str(len(session))

    async with app.test_client() as client:
        assert await (await client.get("/try")).get_data() == b"0"
    assert "opened none" in seen[0]
    with pytest.raises(NotImplementedError):
        SessionInterface().open_session(app, None)  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        SessionInterface().save_session(app, Session(), Response())


async def test_default_interface_is_the_signed_cookie() -> None:
    """Apps use a SecureCookieSessionInterface unless told otherwise; its serializer needs
    SECRET_KEY."""
    app = TrioWeb(__name__)
    interface = app.session_interface
    assert isinstance(interface, SecureCookieSessionInterface)
    assert interface.get_signing_serializer(app) is None
    app.secret_key = b"bytes work too"
    assert app.config["SECRET_KEY"] == b"bytes work too"
    assert interface.get_signing_serializer(app) is not None


async def test_blueprint_views_share_the_apps_session() -> None:
    """A session set in an app view is read in a blueprint view."""
    app = _app()
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.get("/who")
    async def who() -> str:
        return str(session.get("user"))

    app.register_blueprint(bp)
    async with app.test_client() as client:
        cookie = _cookie(await client.post("/login/ada"))
        response = await client.get("/bp/who", headers={"Cookie": f"session={cookie}"})
    assert await response.get_data() == b"ada"


async def test_saving_a_session_nobody_read_adds_no_vary() -> None:
    """The cookie interface adds Vary: Cookie only for a session marked accessed (one the
    request opened); a session built and saved by other code just gets its cookie."""
    app = TrioWeb(__name__)
    app.secret_key = SECRET
    built = Session()
    built["user"] = "ada"
    response = Response()
    SecureCookieSessionInterface().save_session(app, built, response)
    assert response.headers["Set-Cookie"].startswith("session=")
    assert "Vary" not in response.headers


# As the docs show (docs/examples/sessions.py) -----------------------------------------------------

sessions_example = load_example("sessions")


def _session_cookie(response: Any) -> dict[str, str]:
    """The Cookie header a browser would send back after ``response``."""
    (header,) = response.headers.getlist("Set-Cookie")
    return {"Cookie": header.split(";")[0]}


async def test_sessions_login_flash_and_websocket() -> None:
    """Logging in sets the session and flashes a welcome shown once on the next page; the
    websocket knows the user from the same cookie and refuses a client without one."""
    async with sessions_example.app.test_client() as client:
        wrong = await client.post("/login", data={"user": "ada", "password": "nope"})
        assert wrong.status_code == 302
        page = await client.get("/", headers=_session_cookie(wrong))
        assert b'<p class="error">Wrong user name or password.</p>' in await page.get_data()
        assert b"Not logged in." in await page.get_data()

        login = await client.post("/login", data={"user": "ada", "password": "lovelace"})
        assert "Expires" not in login.headers["Set-Cookie"]  # not "remember me"
        cookie = _session_cookie(login)
        page = await client.get("/", headers=cookie)
        body = await page.get_data()
        assert b'<p class="message">Welcome, ada.</p>' in body
        assert b"Logged in as ada." in body
        cookie = _session_cookie(page)  # the flashed message left the session
        again = await (await client.get("/", headers=cookie)).get_data()
        assert again == b"Logged in as ada."

        async with client.websocket("/chat", headers=cookie) as ws:
            await ws.send("hello")
            assert await ws.receive() == "ada: hello"
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/chat"):
                pass  # pragma: no cover
        assert refused.value.response.status_code == 401

        logout = await client.post("/logout", headers=cookie)
        page = await client.get("/", headers=_session_cookie(logout))
        assert await page.get_data() == b'<p class="message">Logged out.</p>\nNot logged in.'


async def test_sessions_remember_me_makes_the_cookie_permanent() -> None:
    """With "remember" ticked, the cookie gets an expiry (PERMANENT_SESSION_LIFETIME)."""
    async with sessions_example.app.test_client() as client:
        login = await client.post(
            "/login", data={"user": "grace", "password": "hopper", "remember": "on"}
        )
    assert "Expires=" in login.headers["Set-Cookie"]
    assert "SameSite=Lax" in login.headers["Set-Cookie"]
