"""Request hooks: before_request, after_request and teardown_request, on the app and blueprints."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from _docs import load_example
from _ws import refusal

import trioweb
from trioweb import Blueprint, Response, TrioWeb, abort, g


async def test_before_request_runs_before_the_view_and_shares_g() -> None:
    """`before_request` runs first; what it puts on `g` the view sees."""
    app = TrioWeb(__name__)

    @app.before_request
    async def load_user() -> None:
        g.user = "ada"

    @app.route("/")
    async def index() -> str:
        return f"user {g.user}"

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"user ada"


async def test_before_request_value_short_circuits_the_view() -> None:
    """A `before_request` hook that returns a value answers with it; the view and later
    `before_request` hooks do not run."""
    app = TrioWeb(__name__)
    ran: list[str] = []

    @app.before_request
    async def deny() -> tuple[str, int]:
        ran.append("deny")
        return "denied", 403

    @app.before_request
    async def later() -> None:
        ran.append("later")

    @app.route("/")
    async def index() -> str:
        ran.append("view")
        return "view"

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (403, b"denied")
    assert ran == ["deny"]


async def test_before_request_runs_for_unknown_routes() -> None:
    """The app's `before_request` hooks run before a routing error is raised (as in Flask)."""
    app = TrioWeb(__name__)
    ran: list[str] = []

    @app.before_request
    async def record() -> None:
        ran.append("before")

    async with app.test_client() as client:
        assert (await client.get("/missing")).status_code == 404
    assert ran == ["before"]


async def test_after_request_can_modify_or_replace_the_response() -> None:
    """`after_request` hooks get the response and what they return is sent."""
    app = TrioWeb(__name__)

    @app.after_request
    async def add_header(response: Response) -> Response:
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.after_request
    async def replace(response: Response) -> Response:
        return Response(await response.get_data(as_text=True) + "!", 201)

    @app.route("/")
    async def index() -> str:
        return "hi"

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 201
    assert await response.get_data() == b"hi!"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/crash", 500), ("/deny", 403)])
async def test_after_request_runs_on_error_responses(path: str, status: int) -> None:
    """`after_request` hooks also see error pages (404, 500, abort), as in Flask."""
    app = TrioWeb(__name__)

    @app.after_request
    async def cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    @app.route("/crash")
    async def crash() -> str:
        raise RuntimeError("boom")

    @app.route("/deny")
    async def deny() -> str:
        abort(403)

    async with app.test_client() as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_failing_after_request_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """An `after_request` hook that raises turns the response into a logged 500."""
    app = TrioWeb(__name__)

    @app.after_request
    async def broken(response: Response) -> Response:
        raise LookupError("after hook bug")

    @app.route("/")
    async def index() -> str:
        return "fine"

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert any(
        isinstance(r.exc_info[1], LookupError) for r in caplog.records if r.exc_info is not None
    )


async def test_teardown_request_gets_none_after_a_response() -> None:
    """`teardown_request` runs after every request with `None` when nothing went wrong, also when
    an error handler or an HTTP error answered."""
    app = TrioWeb(__name__)
    seen: list[BaseException | None] = []

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    @app.errorhandler(KeyError)
    async def handle_key_error(error: KeyError) -> tuple[str, int]:
        return "no such key", 404

    @app.route("/")
    async def index() -> str:
        return "ok"

    @app.route("/handled")
    async def handled() -> str:
        raise KeyError("k")

    async with app.test_client() as client:
        await client.get("/")
        await client.get("/missing")
        assert (await client.get("/handled")).status_code == 404
    assert seen == [None, None, None]


async def test_teardown_request_gets_the_unhandled_exception() -> None:
    """A view's exception that no handler takes (a 500) is passed to `teardown_request`."""
    app = TrioWeb(__name__)
    seen: list[BaseException | None] = []
    boom = RuntimeError("boom")

    @app.teardown_request
    async def teardown(error: BaseException | None) -> None:
        seen.append(error)

    @app.route("/")
    async def index() -> str:
        raise boom

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    assert seen == [boom]


async def test_failing_teardown_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A `teardown_request` hook that raises is logged; the other teardowns still run and the
    response is unaffected."""
    app = TrioWeb(__name__)
    ran: list[str] = []

    @app.teardown_request
    async def first(error: BaseException | None) -> None:
        ran.append("first")

    @app.teardown_request
    async def broken(error: BaseException | None) -> None:
        raise ValueError("teardown bug")

    @app.route("/")
    async def index() -> str:
        return "ok"

    with caplog.at_level(logging.ERROR, logger="trioweb"):
        async with app.test_client() as client:
            response = await client.get("/")
            assert (response.status_code, await response.get_data()) == (200, b"ok")
            assert (await client.get("/")).status_code == 200
    assert ran == ["first", "first"]
    failures = [r for r in caplog.records if "teardown_request function" in r.getMessage()]
    assert len(failures) == 2
    assert isinstance(failures[0].exc_info[1], ValueError)


async def test_hook_order_across_app_and_nested_blueprints() -> None:
    """`before_request`: app first, then the blueprints outer to inner, each in registration
    order; `after_request` and `teardown_request`: innermost first, each in reverse order."""
    app = TrioWeb(__name__)
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")
    ran: list[str] = []

    def hooks(owner: TrioWeb | Blueprint, name: str) -> None:
        for n in (1, 2):

            async def before(n: int = n) -> None:
                ran.append(f"before {name} {n}")

            async def after(response: Response, n: int = n) -> Response:
                ran.append(f"after {name} {n}")
                return response

            async def teardown(error: BaseException | None, n: int = n) -> None:
                ran.append(f"teardown {name} {n}")

            owner.before_request(before)
            owner.after_request(after)
            owner.teardown_request(teardown)

    hooks(app, "app")
    hooks(parent, "parent")
    hooks(child, "child")

    @child.route("/")
    async def view() -> str:
        ran.append("view")
        return "ok"

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    async with app.test_client() as client:
        assert (await client.get("/p/c/")).status_code == 200
    assert ran == [
        "before app 1",
        "before app 2",
        "before parent 1",
        "before parent 2",
        "before child 1",
        "before child 2",
        "view",
        "after child 2",
        "after child 1",
        "after parent 2",
        "after parent 1",
        "after app 2",
        "after app 1",
        "teardown child 2",
        "teardown child 1",
        "teardown parent 2",
        "teardown parent 1",
        "teardown app 2",
        "teardown app 1",
    ]


async def test_blueprint_hooks_run_only_for_its_views() -> None:
    """A blueprint's hooks do not run for the app's own views."""
    app = TrioWeb(__name__)
    bp = Blueprint("bp", __name__, url_prefix="/bp")
    ran: list[str] = []

    @bp.before_request
    async def bp_before() -> None:
        ran.append("bp")

    @bp.route("/")
    async def bp_view() -> str:
        return "bp"

    @app.route("/")
    async def app_view() -> str:
        return "app"

    app.register_blueprint(bp)
    async with app.test_client() as client:
        await client.get("/")
        assert ran == []
        await client.get("/bp/")
        assert ran == ["bp"]


@pytest.mark.parametrize(
    "register",
    [
        "before_request",
        "after_request",
        "teardown_request",
        "before_websocket",
        "after_websocket",
        "teardown_websocket",
        "before_serving",
        "after_serving",
    ],
)
async def test_sync_hooks_are_rejected(register: str) -> None:
    """Registering a plain `def` as a hook is a TypeError that says to use `async def`."""
    app = TrioWeb(__name__)

    def sync_hook(*args: object) -> None:
        return None

    with pytest.raises(TypeError, match=r"must be an async function \(async def\)"):
        getattr(app, register)(sync_hook)


async def test_sync_blueprint_hook_is_rejected() -> None:
    """Blueprints refuse sync hooks too."""
    bp = Blueprint("bp", __name__)

    def sync_hook() -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        bp.before_request(sync_hook)


# As the docs show (docs/examples/hooks.py) --------------------------------------------------------

hooks_example = load_example("hooks")


async def test_teardown_receives_the_exception_of_a_500() -> None:
    """teardown_request gets the exception that made the request a 500, else None."""
    app = TrioWeb(__name__)
    seen: list[BaseException | None] = []

    @app.get("/ok")
    async def ok() -> str:
        return "ok"

    @app.get("/broken")
    async def broken() -> str:
        raise RuntimeError("a bug")

    @app.teardown_request
    async def record(error: BaseException | None) -> None:
        seen.append(error)

    with trio.fail_after(5):
        async with app.test_client() as client:
            assert (await client.get("/ok")).status_code == 200
            assert (await client.get("/broken")).status_code == 500
    assert seen[0] is None
    assert isinstance(seen[1], RuntimeError)


@pytest.mark.parametrize(
    ("path", "key", "status", "body"),
    [
        ("/me", "secret-key", 200, b'{"user":"ada"}'),
        ("/me", "wrong", 401, b'{"error":"send a valid X-API-Key header"}'),
        ("/me", None, 401, b'{"error":"send a valid X-API-Key header"}'),
        ("/nowhere", None, 401, None),
        ("/nowhere", "secret-key", 404, None),
    ],
)
async def test_hooks(path: str, key: str | None, status: int, body: bytes | None) -> None:
    """before_request guards every URL, after_request adjusts every response, teardown
    releases what before_request acquired."""
    with trio.fail_after(5):
        headers = {"X-API-Key": key} if key is not None else {}
        async with hooks_example.app.test_client() as client:
            response = await client.get(path, headers=headers)
            assert response.status_code == status
            assert response.headers["Cache-Control"] == "no-store"
            if body is not None:
                assert await response.get_data() == body
        assert hooks_example.pool.in_use == 0


async def test_ws_before_websocket_abort_refuses() -> None:
    """abort() in a before_websocket hook refuses the handshake with that status."""
    app = TrioWeb(__name__)

    @app.before_websocket
    async def closed_for_maintenance() -> None:
        trioweb.abort(503)

    @app.websocket("/")
    async def never_runs() -> None:
        raise AssertionError("the hook refused first")

    assert (await refusal(app, "/")).status_code == 503


async def test_ws_after_websocket_sees_the_refusal_response() -> None:
    """Before accept, after_websocket gets the refusal response and may change it."""
    app = TrioWeb(__name__)

    @app.websocket("/")
    async def refuse() -> tuple[str, int]:
        return "No", 403

    @app.after_websocket
    async def add_header(response: Any) -> Any:
        response.headers["X-Refused"] = "yes"
        return response

    response = await refusal(app, "/")
    assert response.headers["X-Refused"] == "yes"
