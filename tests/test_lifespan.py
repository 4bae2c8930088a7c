"""The lifespan, through the test client: before/after_serving, the app nursery, and background
tasks."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypercorn.config import Config as HypercornConfig

import trioweb._serving
from trioweb import LifespanError, TrioWeb, current_app, has_request_context


async def test_before_and_after_serving_run_once_around_serving() -> None:
    """`before_serving` runs once before the first request, `after_serving` once at shutdown,
    each in registration order."""
    app = TrioWeb(__name__)
    events: list[str] = []

    @app.before_serving
    async def open_db() -> None:
        events.append("open db")

    @app.before_serving
    async def open_cache() -> None:
        events.append("open cache")

    @app.after_serving
    async def close_db() -> None:
        events.append("close db")

    @app.route("/")
    async def index() -> str:
        events.append("request")
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
        await client.get("/")
    assert events == ["open db", "open cache", "request", "request", "close db"]


async def test_app_nursery_is_open_only_while_serving() -> None:
    """`app.nursery` is None before serving, a nursery while serving, and None after."""
    app = TrioWeb(__name__)
    seen: list[object] = []

    @app.before_serving
    async def startup() -> None:
        seen.append(current_app.nursery)

    assert app.nursery is None
    async with app.test_client():
        assert isinstance(app.nursery, trio.Nursery)
        assert seen == [app.nursery]
    assert app.nursery is None


async def test_background_task_outlives_its_request_without_its_context() -> None:
    """A task started from a view runs after the response, without the request's context
    (`has_request_context()` is False) but with `current_app`, and gets its arguments."""
    app = TrioWeb(__name__)
    done = trio.Event()
    seen: dict[str, object] = {}

    async def job(a: int, b: str) -> None:
        seen.update(args=(a, b), request=has_request_context(), app=current_app.name)
        done.set()

    @app.route("/")
    async def index() -> str:
        assert has_request_context()
        app.add_background_task(job, 1, "two")
        return "accepted"

    async with app.test_client() as client:
        response = await client.get("/")
        assert response.status_code == 200
        await done.wait()
    assert seen == {"args": (1, "two"), "request": False, "app": __name__}


async def test_background_tasks_are_cancelled_at_shutdown() -> None:
    """A background task still running at shutdown is cancelled after `after_serving` ran."""
    app = TrioWeb(__name__)
    events: list[str] = []
    started = trio.Event()

    async def forever() -> None:
        try:
            started.set()
            await trio.sleep_forever()
        finally:
            events.append("task cancelled")

    @app.before_serving
    async def start() -> None:
        app.add_background_task(forever)

    @app.after_serving
    async def stop() -> None:
        events.append("after_serving")

    async with app.test_client():
        await started.wait()
        assert events == []
    assert events == ["after_serving", "task cancelled"]


async def test_failing_background_task_is_logged_and_serving_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A background task's exception is logged; other tasks and requests carry on."""
    app = TrioWeb(__name__)
    failed = trio.Event()
    survivor_cancelled: list[bool] = []

    async def broken() -> None:
        try:
            raise ValueError("job failed")
        finally:
            failed.set()

    async def survivor() -> None:
        try:
            await trio.sleep_forever()
        finally:
            survivor_cancelled.append(True)

    @app.route("/start")
    async def start() -> str:
        app.add_background_task(survivor)
        app.add_background_task(broken)
        return "started"

    @app.route("/")
    async def index() -> str:
        return "ok"

    async with app.test_client() as client:
        await client.get("/start")
        await failed.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert survivor_cancelled == []
        assert (await client.get("/")).status_code == 200
    assert survivor_cancelled == [True]
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Background task")]
    assert isinstance(record.exc_info[1], ValueError)


async def test_run_hands_the_app_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`app.run(host, port, debug=..., **settings)` sets DEBUG when given and serves the app
    there, with the Hypercorn config and settings it was given."""
    calls: list[tuple[object, ...]] = []

    def fake_run(app: TrioWeb, **kwargs: object) -> None:
        calls.append((app, kwargs))

    monkeypatch.setattr(trioweb._serving, "run", fake_run)
    app = TrioWeb(__name__)
    config = HypercornConfig()
    app.run("0.0.0.0", 8000, debug=True, config=config, access_log=False, graceful_timeout=1)
    assert app.debug is True
    app.run()
    assert app.debug is True
    assert calls == [
        (
            app,
            {
                "host": "0.0.0.0",
                "port": 8000,
                "config": config,
                "access_log": False,
                "graceful_timeout": 1,
            },
        ),
        (app, {"host": None, "port": None, "config": None, "access_log": True}),
    ]


async def test_add_background_task_outside_serving_is_runtime_error() -> None:
    """`add_background_task` when the app is not serving says to call it while serving."""
    app = TrioWeb(__name__)

    async def job() -> None:
        raise AssertionError("not run")

    with pytest.raises(RuntimeError, match="needs the app to be serving"):
        app.add_background_task(job)


async def test_failing_before_serving_raises_lifespan_error() -> None:
    """A `before_serving` that raises makes `async with app.test_client()` raise LifespanError
    (phase "startup", the traceback in its message); the body never runs and the nursery is
    gone."""
    app = TrioWeb(__name__)
    ran: list[str] = []

    @app.before_serving
    async def broken() -> None:
        raise ConnectionRefusedError("database is down")

    @app.after_serving
    async def never() -> None:
        ran.append("after_serving")

    with pytest.raises(LifespanError) as info:
        async with app.test_client():
            ran.append("body")
    assert info.value.phase == "startup"
    assert "ConnectionRefusedError: database is down" in info.value.message
    assert ran == []
    assert app.nursery is None


async def test_failing_before_serving_cancels_tasks_it_started() -> None:
    """Background tasks started by `before_serving` functions are cancelled if a later one
    fails."""
    app = TrioWeb(__name__)
    cancelled: list[bool] = []

    async def task() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(True)

    @app.before_serving
    async def start() -> None:
        app.add_background_task(task)
        await trio.testing.wait_all_tasks_blocked()

    @app.before_serving
    async def broken() -> None:
        raise RuntimeError("second step failed")

    with pytest.raises(LifespanError):
        async with app.test_client():
            pass
    assert cancelled == [True]


async def test_failing_after_serving_raises_lifespan_error() -> None:
    """An `after_serving` that raises makes leaving the test client raise LifespanError (phase
    "shutdown"); background tasks are still cancelled."""
    app = TrioWeb(__name__)
    cancelled: list[bool] = []

    async def task() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(True)

    @app.before_serving
    async def start() -> None:
        app.add_background_task(task)

    @app.after_serving
    async def broken() -> None:
        raise OSError("flush failed")

    with pytest.raises(LifespanError, match="lifespan shutdown failed") as info:
        async with app.test_client():
            pass
    assert info.value.phase == "shutdown"
    assert cancelled == [True]
    assert app.nursery is None
