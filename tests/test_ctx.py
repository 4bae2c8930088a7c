"""Context: where `current_app`, `request` and `g` work, and where they say they do not."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel
from _docs import load_example

from trioweb import (
    TrioWeb,
    copy_current_app_context,
    copy_current_request_context,
    copy_current_websocket_context,
    current_app,
    g,
    has_app_context,
    has_request_context,
    has_websocket_context,
    request,
    url_for,
    websocket,
)


@pytest.mark.parametrize(
    ("get", "message"),
    [
        (lambda: current_app.name, "Working outside of application context: app is only"),
        (lambda: request.method, "Working outside of request context: request is only"),
        (lambda: g.user, "Working outside of request or websocket context: g is only"),
        (lambda: websocket.path, "Working outside of websocket context: websocket is only"),
    ],
)
async def test_globals_outside_their_context_raise_runtime_error(get, message: str) -> None:
    """Using `current_app`, `request`, `g` or `websocket` where none is bound is a RuntimeError
    saying where they are available."""
    with pytest.raises(RuntimeError, match=message):
        get()


async def test_context_inside_a_view() -> None:
    """In a view, `current_app` is the app, `request` is bound, and no websocket is."""
    app = TrioWeb(__name__)
    seen: dict[str, object] = {}

    @app.route("/")
    async def index() -> str:
        seen.update(
            app=current_app._get_current_object(),  # type: ignore[attr-defined]
            request=has_request_context(),
            websocket=has_websocket_context(),
        )
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
    assert seen == {"app": app, "request": True, "websocket": False}


async def test_context_does_not_leak_into_the_caller() -> None:
    """After a request, the test's own task has no request bound."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> str:
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
        assert not has_request_context()


async def test_g_is_fresh_for_each_request() -> None:
    """`g` holds data for one request only."""
    app = TrioWeb(__name__)

    @app.route("/<value>")
    async def index(value: str) -> str:
        previous = getattr(g, "value", "unset")
        g.value = value
        return previous

    async with app.test_client() as client:
        assert await (await client.get("/one")).get_data() == b"unset"
        assert await (await client.get("/two")).get_data() == b"unset"


async def test_tasks_started_by_a_view_see_its_request() -> None:
    """Tasks a view starts in its own nursery see the same `request` and `g`."""
    app = TrioWeb(__name__)
    seen: list[str] = []

    async def child(n: int) -> None:
        await trio.lowlevel.checkpoint()
        seen.append(f"{n} {request.path} {g.user}")

    @app.route("/fan")
    async def fan() -> str:
        g.user = "ada"
        async with trio.open_nursery() as nursery:
            for n in range(2):
                nursery.start_soon(child, n)
        return "done"

    async with app.test_client() as client:
        await client.get("/fan")
    assert sorted(seen) == ["0 /fan ada", "1 /fan ada"]


async def test_concurrent_requests_do_not_see_each_other() -> None:
    """Requests running at the same time each see their own `request`."""
    app = TrioWeb(__name__)
    both_inside = trio.Event()
    inside = 0

    @app.route("/<name>")
    async def view(name: str) -> str:
        nonlocal inside
        inside += 1
        if inside == 2:
            both_inside.set()
        await both_inside.wait()
        return request.path

    results: dict[str, bytes] = {}
    async with app.test_client() as client:

        async def get(name: str) -> None:
            results[name] = await (await client.get(f"/{name}")).get_data()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, "a")
            nursery.start_soon(get, "b")
    assert results == {"a": b"/a", "b": b"/b"}


# App contexts and copied contexts ---------------------------------------------------------------


async def test_app_context_binds_the_app_and_a_fresh_g_then_restores() -> None:
    """`async with app.app_context():` binds `current_app` and a `g` of its own, with no request;
    contexts nest, each `g` fresh, and leaving restores what was bound before."""
    app, other = TrioWeb("first"), TrioWeb("second")
    assert not has_app_context()
    async with app.app_context():
        assert has_app_context()
        assert current_app.name == "first"
        assert not has_request_context()
        g.value = 1
        async with other.app_context():
            assert current_app.name == "second"
            assert getattr(g, "value", None) is None
        assert current_app.name == "first"
        assert g.value == 1
    assert not has_app_context()
    with pytest.raises(RuntimeError, match=r"app\.app_context"):
        g.value  # noqa: B018


async def test_sync_app_context() -> None:
    """`with app.app_context():` works too, for code that cannot await (a CLI command)."""
    app = TrioWeb(__name__)
    with app.app_context() as ctx:
        assert ctx is not None
        assert current_app.name == __name__
    assert not has_app_context()


async def test_app_context_is_restored_when_the_block_raises() -> None:
    """An exception leaving the block still unbinds the app."""
    app = TrioWeb(__name__)
    with pytest.raises(ZeroDivisionError):
        async with app.app_context():
            1 / 0  # noqa: B018
    assert not has_app_context()


async def test_url_for_in_an_app_context_uses_server_name() -> None:
    """In an app context, url_for builds external URLs from SERVER_NAME, APPLICATION_ROOT and
    PREFERRED_URL_SCHEME."""
    app = TrioWeb(__name__)

    @app.get("/users/<int:user_id>")
    async def user(user_id: int) -> str:
        return ""

    app.config.update(
        SERVER_NAME="example.com", APPLICATION_ROOT="/app", PREFERRED_URL_SCHEME="https"
    )
    async with app.app_context():
        assert url_for("user", user_id=7) == "https://example.com/app/users/7"


async def test_app_context_inside_a_request_hides_the_request() -> None:
    """An app context opened in a view has no request and its own `g`; the view's come back
    after it."""
    app = TrioWeb(__name__)
    seen: list[object] = []

    @app.get("/")
    async def index() -> str:
        g.user = "ada"
        async with app.app_context():
            seen.extend([has_request_context(), getattr(g, "user", None)])
        seen.extend([has_request_context(), g.user])
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
    assert seen == [False, None, True, "ada"]


async def test_copy_current_request_context_in_a_background_task() -> None:
    """A function decorated with copy_current_request_context in a view runs with that request
    and its `g` bound, as a background task after the response; the task's context does not
    keep them afterwards."""
    app = TrioWeb(__name__)
    done = trio.Event()
    seen: list[object] = []

    @app.get("/job")
    async def job() -> str:
        g.user = "ada"

        @copy_current_request_context
        async def work(n: int) -> int:
            seen.extend([request.path, request.args["q"], g.user, current_app.name, n])
            return n

        async def run() -> None:
            assert await work(3) == 3
            seen.append(has_request_context())
            done.set()

        app.add_background_task(run)
        return "accepted"

    async with app.test_client() as client:
        await client.get("/job?q=x")
        await done.wait()
    assert seen == ["/job", "x", "ada", __name__, 3, False]


async def test_copy_current_websocket_context_in_an_app_nursery_task() -> None:
    """A function decorated with copy_current_websocket_context sends on the websocket from a
    task in the app nursery."""
    app = TrioWeb(__name__)

    @app.websocket("/ws")
    async def pusher() -> None:
        await websocket.accept()

        @copy_current_websocket_context
        async def push() -> None:
            await websocket.send(f"pushed on {websocket.path}")

        assert app.nursery is not None
        app.nursery.start_soon(push)
        await websocket.receive()

    async with app.test_client() as client, client.websocket("/ws") as ws:
        assert await ws.receive() == "pushed on /ws"
        await ws.send("bye")


async def test_copy_current_app_context() -> None:
    """copy_current_app_context carries the app and `g` (the request's, in a view; the app
    context's, in one) but no request into a later call."""
    app = TrioWeb(__name__)
    done = trio.Event()
    seen: list[object] = []

    @app.get("/")
    async def index() -> str:
        g.user = "ada"

        @copy_current_app_context
        async def work() -> None:
            seen.extend([current_app.name, g.user, has_request_context()])
            done.set()

        app.add_background_task(work)
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
        await done.wait()
    async with app.app_context():
        g.user = "grace"
        work = copy_current_app_context(_read_g_user)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_store, work, seen)
    assert seen == [__name__, "ada", False, "grace"]
    with app.app_context():  # a plain app context before serving: g is fresh, not missing
        assert await copy_current_app_context(_read_g_user)() is None


async def _read_g_user() -> object:
    await trio.lowlevel.checkpoint()
    return getattr(g, "user", None)


async def _store(func: object, into: list[object]) -> None:
    into.append(await func())  # type: ignore[operator]


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        (copy_current_app_context, "copy_current_app_context\\(\\) needs an app"),
        (copy_current_request_context, "copy_current_request_context\\(\\) needs a request"),
        (copy_current_websocket_context, "copy_current_websocket_context\\(\\) needs a websocket"),
    ],
)
async def test_copy_outside_its_context_is_a_runtime_error(decorator, message: str) -> None:
    """Each copy decorator, applied where nothing it captures is bound, raises RuntimeError
    saying where to apply it."""
    with pytest.raises(RuntimeError, match=message):
        decorator(_read_g_user)


async def test_copy_request_context_in_a_websocket_is_a_runtime_error() -> None:
    """copy_current_request_context in a websocket handler (and the websocket copy in a view)
    raise: the connection is not of that kind."""
    app = TrioWeb(__name__)
    errors: list[str] = []

    @app.websocket("/ws")
    async def ws() -> None:
        try:
            copy_current_request_context(_read_g_user)
        except RuntimeError as error:
            errors.append(str(error))
        await websocket.accept()

    @app.get("/")
    async def index() -> str:
        try:
            copy_current_websocket_context(_read_g_user)
        except RuntimeError as error:
            errors.append(str(error))
        return ""

    async with app.test_client() as client:
        async with client.websocket("/ws"):
            pass
        await client.get("/")
    assert len(errors) == 2


async def test_copied_context_does_not_leak_into_the_awaiting_task() -> None:
    """Awaiting a copied function inline binds its context only for the call: afterwards the
    caller's own bindings are back, even when the function raised."""
    app = TrioWeb(__name__)

    async with app.app_context():
        g.user = "inside"

        @copy_current_app_context
        async def fail() -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError("boom")

    assert not has_app_context()
    with pytest.raises(ValueError, match="boom"):
        await fail()
    assert not has_app_context()


# As the docs show (docs/examples/contexts.py) -----------------------------------------------------

contexts_example = load_example("contexts")


async def test_contexts_while_serving_and_copied_request_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The database is open exactly while the app serves; the audit task runs after the
    response with the request that started it."""
    assert not contexts_example.db.open
    async with contexts_example.app.test_client() as client:
        assert contexts_example.db.open
        response = await client.post("/orders", json={"item": "teapot"})
        assert response.status_code == 202
        assert contexts_example.db.rows == []
        await trio.sleep(1)
        assert contexts_example.db.rows == ["teapot ordered from 127.0.0.1 at /orders"]
    assert not contexts_example.db.open


async def test_contexts_script_builds_external_links() -> None:
    """The script part builds https links on SERVER_NAME, and the app still answers requests
    for its own host."""
    assert await contexts_example.print_order_links(2) == [
        "https://shop.example.com/orders/1",
        "https://shop.example.com/orders/2",
    ]
