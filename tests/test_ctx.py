"""Context: where `current_app`, `request` and `g` work, and where they say they do not."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from trioweb import (
    TrioWeb,
    current_app,
    g,
    has_request_context,
    has_websocket_context,
    request,
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
