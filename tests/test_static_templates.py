"""Static files and Jinja2 templates, found next to the module named by the app's import name
(the fixture package `fixtures.staticapp`), and next to a blueprint's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _docs import load_example
from fixtures import staticapp
from jinja2 import TemplateNotFound
from werkzeug.exceptions import NotFound
from werkzeug.http import http_date

from trioweb import (
    Blueprint,
    TrioWeb,
    g,
    render_template,
    render_template_string,
    send_file,
    send_from_directory,
)

ROOT = Path(staticapp.__file__).parent


async def test_folders_are_found_next_to_the_import_name() -> None:
    """`TrioWeb(__name__)` roots `static/` and `templates/` at the module's folder."""
    app = staticapp.create_app()
    assert app.root_path == str(ROOT)
    assert app.static_folder == str(ROOT / "static")
    assert app.template_folder == str(ROOT / "templates")


async def test_root_path_falls_back_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import name that is not an imported module with a file roots the app at the working
    directory; `root_path=` sets it explicitly."""
    monkeypatch.chdir(tmp_path)
    assert TrioWeb("no_such_module_imported").root_path == str(tmp_path)
    assert TrioWeb("builtins").root_path == str(tmp_path)
    assert TrioWeb("x", root_path=str(ROOT)).static_folder == str(ROOT / "static")


# Static files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content", "mimetype"),
    [
        ("/static/hello.txt", b"hello, static\n", "text/plain"),
        ("/static/css/site.css", b"body { color: red; }\n", "text/css"),
        ("/static/sub/deep.txt", b"nested\n", "text/plain"),
    ],
)
async def test_static_file_is_served(path: str, content: bytes, mimetype: str) -> None:
    """A file under `static/` is served at `/static/<path>` with its content, a content type
    guessed from its name, its length, Last-Modified and an ETag."""
    app = staticapp.create_app()
    async with app.test_client() as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert await response.get_data() == content
    assert response.mimetype == mimetype
    assert response.headers["Content-Length"] == str(len(content))
    file = ROOT / path.lstrip("/")
    assert response.headers["Last-Modified"] == http_date(file.stat().st_mtime)
    assert response.headers["ETag"].startswith('"')
    assert "Cache-Control" not in response.headers


async def test_static_file_revalidation_is_304() -> None:
    """A matching `If-None-Match` or a current `If-Modified-Since` gives a bodyless 304; a stale
    ETag gives the file again."""
    app = staticapp.create_app()
    async with app.test_client() as client:
        first = await client.get("/static/hello.txt")
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
            response = await client.get("/static/hello.txt", headers=headers)
            assert response.status_code == 304
            assert await response.get_data() == b""
            assert "Content-Length" not in response.headers
            assert response.headers["ETag"] == etag
        stale = await client.get("/static/hello.txt", headers={"If-None-Match": '"stale"'})
        assert (stale.status_code, await stale.get_data()) == (200, b"hello, static\n")


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.txt",
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub",
        "/static/hello.txt%00.png",
        "/static/%00",
    ],
)
async def test_static_404s(path: str) -> None:
    """A missing file, a directory, a NUL in the path (was a 500) and any path escaping
    `static/` are 404s."""
    app = staticapp.create_app()
    async with app.test_client() as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert b"never served" not in await response.get_data()


async def test_static_max_age_from_config() -> None:
    """`SEND_FILE_MAX_AGE_DEFAULT` sets a public Cache-Control max-age on static files."""
    app = staticapp.create_app()
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 60
    async with app.test_client() as client:
        response = await client.get("/static/hello.txt")
    assert set(response.headers["Cache-Control"].split(", ")) == {"public", "max-age=60"}


async def test_static_url_path_and_no_static_folder() -> None:
    """`static_url_path` moves the static route; `static_folder=None` removes it."""
    moved = TrioWeb(staticapp.__name__, static_url_path="/assets/")
    none = TrioWeb(staticapp.__name__, static_folder=None)
    async with moved.test_client() as client:
        assert (await client.get("/assets/hello.txt")).status_code == 200
        assert (await client.get("/static/hello.txt")).status_code == 404
    async with none.test_client() as client:
        assert (await client.get("/static/hello.txt")).status_code == 404
    assert "static" not in none.view_functions


async def test_blueprint_static_folder() -> None:
    """A blueprint's `static_folder` is served under its prefix at `/static` (or its own
    `static_url_path`), with the endpoint `<name>.static`."""
    app = staticapp.create_app()
    app.register_blueprint(staticapp.create_admin())
    other = Blueprint(
        "other", staticapp.__name__, static_folder="admin/static", static_url_path="/files"
    )
    app.register_blueprint(other)
    async with app.test_client() as client:
        response = await client.get("/admin/static/admin.js")
        assert await response.get_data() == b'console.log("admin");\n'
        assert (await client.get("/files/admin.js")).status_code == 200
    assert {"admin.static", "other.static"} <= set(app.view_functions)


async def test_send_file_options_in_a_view() -> None:
    """`send_file` in a view: `as_attachment` with `download_name`, an explicit `mimetype`, an
    unknown extension as octet-stream, and `conditional=False` ignoring If-None-Match."""
    app = TrioWeb(__name__)
    hello = ROOT / "static" / "hello.txt"

    @app.route("/download")
    async def download() -> Any:
        return await send_file(hello, as_attachment=True, download_name="report 1.csv")

    @app.route("/typed")
    async def typed() -> Any:
        return await send_file(str(hello), mimetype="application/x-custom")

    @app.route("/unconditional")
    async def unconditional() -> Any:
        return await send_file(hello, conditional=False)

    @app.route("/unknown")
    async def unknown() -> Any:
        return await send_file(ROOT / "static" / "hello.txt", download_name="data.zzz-unknown")

    async with app.test_client() as client:
        response = await client.get("/download")
        assert response.headers["Content-Disposition"] == 'attachment; filename="report 1.csv"'
        assert response.mimetype == "text/csv"
        assert (await client.get("/typed")).mimetype == "application/x-custom"
        assert (await client.get("/unknown")).mimetype == "application/octet-stream"
        etag = response.headers["ETag"]
        again = await client.get("/unconditional", headers={"If-None-Match": etag})
        assert (again.status_code, await again.get_data()) == (200, b"hello, static\n")


async def test_send_file_outside_a_request() -> None:
    """Outside a request, `send_file` builds the response without conditional handling."""
    response = await send_file(ROOT / "static" / "hello.txt", max_age=10)
    assert response.is_streamed
    assert await response.get_data() == b"hello, static\n"
    assert response.cache_control.max_age == 10


async def test_send_file_and_send_from_directory_not_found() -> None:
    """`send_file` of a missing file or a directory and `send_from_directory` of an escaping
    path raise NotFound."""
    with pytest.raises(NotFound):
        await send_file(ROOT / "nope.txt")
    with pytest.raises(NotFound):
        await send_file(ROOT / "static")
    with pytest.raises(NotFound):
        await send_from_directory(ROOT / "static", "../secret.txt")
    response = await send_from_directory(ROOT / "static", "sub/deep.txt")
    assert await response.get_data() == b"nested\n"


async def test_large_file_is_streamed_in_chunks(tmp_path: Path) -> None:
    """A file larger than one read chunk arrives whole."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(200_000))
    app = TrioWeb(__name__, root_path=str(tmp_path), static_folder=".")
    async with app.test_client() as client:
        response = await client.get("/static/big.bin")
    assert await response.get_data() == big.read_bytes()


# Templates ----------------------------------------------------------------------------------------


async def test_render_template_escapes_html_templates() -> None:
    """`await render_template(name, **context)` renders from `templates/`; `.html` templates
    autoescape, `.txt` ones do not."""
    app = staticapp.create_app()

    @app.route("/<kind>")
    async def page(kind: str) -> str:
        return await render_template(f"{kind}", name="<b>Ada</b>")

    async with app.test_client() as client:
        html = await (await client.get("/hello.html")).get_data(as_text=True)
        text = await (await client.get("/plain.txt")).get_data(as_text=True)
    assert html.strip() == "<p>Hello &lt;b&gt;Ada&lt;/b&gt;!</p>"
    assert text.strip() == "Hello <b>Ada</b>!"


async def test_render_template_string_autoescapes() -> None:
    """`await render_template_string(source, **context)` renders with autoescaping; `|safe`
    opts out."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        return await render_template_string("{{ a }} {{ b|safe }}", a="<i>esc</i>", b="<i>raw</i>")

    async with app.test_client() as client:
        body = await (await client.get("/")).get_data(as_text=True)
    assert body == "&lt;i&gt;esc&lt;/i&gt; <i>raw</i>"


async def test_templates_see_request_url_for_config_and_g() -> None:
    """Templates can use `request`, `url_for`, `config` and `g`."""
    app = staticapp.create_app()
    app.config["GREETING"] = "hi"

    @app.route("/page")
    async def index() -> str:
        g.user = "ada"
        return await render_template("globals.html")

    async with app.test_client() as client:
        body = await (await client.get("/page")).get_data(as_text=True)
    assert body.strip() == "GET /page /page?page=2 hi ada"


async def test_template_rendered_outside_a_request_has_no_request() -> None:
    """Outside a request (here in `before_serving`) a template renders without `request`."""
    app = TrioWeb(__name__)
    rendered: list[str] = []

    @app.before_serving
    async def warm_up() -> None:
        rendered.append(await render_template_string("{{ request is defined }}"))

    async with app.test_client():
        pass
    assert rendered == ["False"]


async def test_blueprint_templates_come_after_the_apps() -> None:
    """A blueprint's `template_folder` is searched after the app's: its own templates are found,
    and the app's win for a shared name."""
    app = staticapp.create_app()
    app.register_blueprint(staticapp.create_admin())

    @app.route("/panel")
    async def panel() -> str:
        return await render_template("admin/panel.html", name="root")

    @app.route("/shared")
    async def shared() -> str:
        return await render_template("shared.html")

    async with app.test_client() as client:
        assert (await (await client.get("/panel")).get_data(as_text=True)).strip() == (
            "admin panel for root"
        )
        assert (await (await client.get("/shared")).get_data(as_text=True)).strip() == (
            "from the app"
        )


async def test_render_template_picks_the_first_existing_of_a_list() -> None:
    """A list of names renders the first template that exists."""
    app = staticapp.create_app()

    @app.route("/")
    async def index() -> str:
        return await render_template(["missing.html", "hello.html"], name="x")

    async with app.test_client() as client:
        assert b"Hello x!" in await (await client.get("/")).get_data()


async def test_missing_template_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """A template no folder has raises TemplateNotFound (a logged 500); so does any template
    when the app has no template folder."""
    app = TrioWeb(staticapp.__name__, template_folder=None)

    @app.route("/")
    async def index() -> str:
        return await render_template("hello.html")

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    assert any(isinstance(r.exc_info[1], TemplateNotFound) for r in caplog.records if r.exc_info)


@pytest.mark.parametrize(
    ("debug", "auto_reload", "expected"),
    [(False, None, False), (True, None, True), (False, True, True), (True, False, False)],
)
async def test_template_auto_reload(debug: bool, auto_reload: bool | None, expected: bool) -> None:
    """Templates reload when changed if `TEMPLATES_AUTO_RELOAD` says so, else in DEBUG."""
    app = TrioWeb(__name__)
    app.config.from_mapping(DEBUG=debug, TEMPLATES_AUTO_RELOAD=auto_reload)
    assert app.jinja_env.auto_reload is expected


# Template filters, globals, tests and context processors -----------------------------------------


async def test_template_filter_global_and_test_decorators_and_add_forms() -> None:
    """`template_filter`, `template_global` and `template_test` (named after the function or
    given a name) and their `add_*` forms make functions usable in every template."""
    app = TrioWeb(__name__)

    @app.template_filter()
    def initials(value: str) -> str:
        return "".join(word[0] for word in value.split())

    @app.template_filter("shout")
    def shout(value: str) -> str:
        return value.upper() + "!"

    @app.template_global()
    def greeting() -> str:
        return "hello"

    @app.template_test("even")
    def is_even(value: int) -> bool:
        return value % 2 == 0

    app.add_template_filter(lambda value: value[::-1], "reverse_it")
    app.add_template_global(lambda: 42, "answer")
    app.add_template_test(lambda value: value == 0, "zero")
    source = (
        "{{ greeting()|shout }} {{ 'abc'|reverse_it }} {{ answer() }}"
        " {{ 4 is even }} {{ 3 is even }} {{ 0 is zero }} {{ 'Ada Lovelace'|initials }}"
    )
    async with app.app_context():
        assert await render_template_string(source) == "HELLO! cba 42 True False True AL"


async def test_registrations_after_first_render_are_seen() -> None:
    """A filter, global or test registered after the environment was made (after the first
    render) works in the next render."""
    app = TrioWeb(__name__)
    async with app.app_context():
        assert await render_template_string("{{ 1 }}") == "1"
        app.add_template_filter(lambda value: value * 2, "double")
        app.add_template_global(lambda: "g", "glob")
        app.add_template_test(lambda value: True, "anything")
        rendered = await render_template_string("{{ 2|double }} {{ glob() }} {{ 1 is anything }}")
    assert rendered == "4 g True"


async def test_context_processors_app_and_blueprint() -> None:
    """App context processors (sync or async) add names to every template; a blueprint's only
    to templates of its own views (nested blueprints' too); render_template's arguments win."""
    app = TrioWeb(__name__)
    parent = Blueprint("parent", __name__, url_prefix="/parent")
    child = Blueprint("child", __name__, url_prefix="/child")

    @app.context_processor
    def site() -> dict[str, Any]:
        return {"site": "Site", "who": "app"}

    @app.context_processor
    async def user() -> dict[str, Any]:
        return {"user": "ada"}

    @parent.context_processor
    async def section() -> dict[str, Any]:
        return {"section": "parent", "who": "parent"}

    @child.context_processor
    def subsection() -> dict[str, Any]:
        return {"who": "child"}

    source = "{{ site }}/{{ user }}/{{ section|default('-') }}/{{ who }}"

    @app.get("/")
    async def index() -> str:
        return await render_template_string(source)

    @app.get("/override")
    async def override() -> str:
        return await render_template_string(source, who="argument")

    @parent.get("/")
    async def parent_view() -> str:
        return await render_template_string(source)

    @child.get("/")
    async def child_view() -> str:
        return await render_template_string(source)

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    async with app.test_client() as client:
        bodies = [
            await (await client.get(path)).get_data()
            for path in ("/", "/override", "/parent/", "/parent/child/")
        ]
    assert bodies == [
        b"Site/ada/-/app",
        b"Site/ada/-/argument",
        b"Site/ada/parent/parent",
        b"Site/ada/parent/child",
    ]


# As the docs show (docs/examples/pages.py) --------------------------------------------------------

pages_example = load_example("pages")


async def test_pages_template_escapes_and_links_static() -> None:
    """render_template escapes values and url_for('static') links the stylesheet."""
    with trio.fail_after(5):
        async with pages_example.app.test_client() as client:
            response = await client.get("/hello/Tom&Jerry")
            html = await response.get_data(as_text=True)
            assert "Hello, Tom&amp;Jerry!" in html
            assert 'href="/static/style.css"' in html
            assert "You asked for /hello/Tom&amp;Jerry." in html
            shout = await client.get("/shout/trio")
            assert await shout.get_data() == b"<b>TRIO!</b>"


async def test_pages_static_file_is_cached() -> None:
    """A static file is served with an ETag, and a request that sends it back gets a 304."""
    with trio.fail_after(5):
        async with pages_example.app.test_client() as client:
            response = await client.get("/static/style.css")
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/css")
            etag = response.headers["ETag"]
            again = await client.get("/static/style.css", headers={"If-None-Match": etag})
            assert again.status_code == 304


@pytest.mark.parametrize(
    ("filename", "status"),
    [("report.txt", 200), ("missing.txt", 404), ("../pages.py", 404)],
)
async def test_pages_download(filename: str, status: int) -> None:
    """send_from_directory serves files of its folder as attachments, and nothing outside it."""
    with trio.fail_after(5):
        async with pages_example.app.test_client() as client:
            response = await client.get(f"/downloads/{filename}")
            assert response.status_code == status
            if status == 200:
                assert response.headers["Content-Disposition"] == "attachment; filename=report.txt"
                assert await response.get_data() == b"Quarterly report: all good.\n"


# As the docs show (docs/examples/templating.py) ---------------------------------------------------

templating_example = load_example("templating")


async def test_templating_filters_tests_globals_and_context_processors() -> None:
    """The app's filter, test and global and its context processor apply everywhere; the
    shop's context processor only to the shop's pages; the blueprint's app filter everywhere."""
    async with templating_example.app.test_client() as client:
        home = await (await client.get("/", headers={"X-User": "ada"})).get_data()
        shop = await (await client.get("/shop/")).get_data()
    assert home == b"HOME for ada: 123.45 EUR, True"
    assert shop == b"THE SHOP for guest: 9.99 EUR (cheap), True"
