"""The lifespan, through the test client: before/after_serving, the app nursery, and background
tasks."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
import trio
import trio.testing
from _docs import load_example
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
    """A background task's exception is logged; other tasks and requests carry on, and the test
    client raises it when it exits."""
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

    with pytest.raises(ValueError, match="job failed"):  # noqa: PT012 (raised on exit)
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


# while_serving -----------------------------------------------------------------------------------


async def test_while_serving_runs_around_serving_in_quarts_order() -> None:
    """A while_serving generator's code before `yield` runs at startup after the before_serving
    functions; its code after `yield` at shutdown after the after_serving functions; several run
    in registration order at both ends. The app nursery is open in both halves."""
    app = TrioWeb(__name__)
    events: list[str] = []

    @app.before_serving
    async def before() -> None:
        events.append("before_serving")

    @app.while_serving
    async def pool() -> AsyncGenerator[None, None]:
        events.append(f"open pool, nursery open: {current_app.nursery is not None}")
        yield
        events.append(f"close pool, nursery open: {current_app.nursery is not None}")

    @app.while_serving
    async def cache() -> AsyncGenerator[None, None]:
        events.append("open cache")
        yield
        events.append("close cache")

    @app.after_serving
    async def after() -> None:
        events.append("after_serving")

    @app.route("/")
    async def index() -> str:
        events.append("request")
        return "ok"

    async with app.test_client() as client:
        await client.get("/")
    assert events == [
        "before_serving",
        "open pool, nursery open: True",
        "open cache",
        "request",
        "after_serving",
        "close pool, nursery open: True",
        "close cache",
    ]
    events.clear()
    async with app.test_client():  # served again: the generators start afresh
        pass
    assert events.count("open pool, nursery open: True") == 1


async def test_while_serving_startup_error_fails_startup_and_closes_the_started_ones() -> None:
    """An exception before `yield` fails startup (LifespanError); generators already started are
    closed, so their `finally` blocks run; later ones never start."""
    app = TrioWeb(__name__)
    events: list[str] = []

    @app.while_serving
    async def first() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            events.append("first closed")

    @app.while_serving
    async def broken() -> AsyncGenerator[None, None]:
        raise OSError("cannot connect")
        yield  # pragma: no cover

    @app.while_serving
    async def never() -> AsyncGenerator[None, None]:
        events.append("never")  # pragma: no cover
        yield  # pragma: no cover

    with pytest.raises(LifespanError, match="cannot connect") as info:
        async with app.test_client():
            pass  # pragma: no cover
    assert info.value.phase == "startup"
    assert events == ["first closed"]


async def test_while_serving_shutdown_error_fails_shutdown() -> None:
    """An exception after `yield` fails shutdown, like an after_serving function."""
    app = TrioWeb(__name__)

    @app.while_serving
    async def broken() -> AsyncGenerator[None, None]:
        yield
        raise OSError("flush failed")

    with pytest.raises(LifespanError, match="flush failed") as info:
        async with app.test_client():
            pass
    assert info.value.phase == "shutdown"


async def test_failing_after_serving_still_closes_while_serving() -> None:
    """When an after_serving function fails, the while_serving generators are closed (their
    `finally` blocks run) and the failure is reported."""
    app = TrioWeb(__name__)
    events: list[str] = []

    @app.while_serving
    async def pool() -> AsyncGenerator[None, None]:
        try:
            yield
            events.append("shutdown half")  # pragma: no cover
        finally:
            events.append("closed")

    @app.after_serving
    async def broken() -> None:
        raise OSError("flush failed")

    with pytest.raises(LifespanError, match="flush failed"):
        async with app.test_client():
            pass
    assert events == ["closed"]


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        ("startup", "returned without yielding"),
        ("shutdown", "yielded more than once"),
    ],
)
async def test_while_serving_must_yield_exactly_once(phase: str, message: str) -> None:
    """A generator that never yields fails startup, one that yields twice fails shutdown, each
    with a RuntimeError that names the function and says what to do."""
    app = TrioWeb(__name__)

    if phase == "startup":

        @app.while_serving
        async def no_yield() -> AsyncGenerator[None, None]:
            return
            yield  # pragma: no cover

    else:

        @app.while_serving
        async def two_yields() -> AsyncGenerator[None, None]:
            yield
            yield

    with pytest.raises(LifespanError, match=message) as info:
        async with app.test_client():
            pass
    assert info.value.phase == phase
    assert "while_serving function" in info.value.message


async def test_while_serving_needs_an_async_generator_function() -> None:
    """Decorating anything but an async generator function is a TypeError saying so."""
    app = TrioWeb(__name__)

    async def not_a_generator() -> None:
        pass  # pragma: no cover

    with pytest.raises(TypeError, match="must be an async generator function"):
        app.while_serving(not_a_generator)  # type: ignore[arg-type]


# A task started directly on app.nursery that raises ---------------------------------------------


def _app_with_a_crashing_task() -> tuple[TrioWeb, list[str]]:
    """An app whose /crash starts a task on app.nursery that raises, beside a background task
    started at startup; ``events`` records what happens to them."""
    app = TrioWeb(__name__)
    events: list[str] = []

    async def survivor() -> None:
        try:
            await trio.sleep_forever()
        finally:
            events.append("background task cancelled")

    async def crash() -> None:
        raise KeyError("crashed")

    @app.before_serving
    async def start() -> None:
        app.add_background_task(survivor)

    @app.route("/crash")
    async def start_crash() -> str:
        assert app.nursery is not None
        app.nursery.start_soon(crash)
        return "started"

    @app.route("/later")
    async def later() -> str:
        app.add_background_task(survivor)
        return "still serving"

    return app, events


async def test_a_crashing_nursery_task_is_logged_and_the_app_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task on app.nursery that raises takes that nursery down (trio cancels its other
    tasks), is logged at CRITICAL, and a fresh app nursery takes its place: requests and
    add_background_task go on working; the test client raises the crash on exit."""
    app, events = _app_with_a_crashing_task()
    with pytest.raises(KeyError, match="crashed"):  # noqa: PT012 (raised on exit)
        async with app.test_client() as client:
            first = app.nursery
            await client.get("/crash")
            await trio.testing.wait_all_tasks_blocked()
            assert events == ["background task cancelled"]
            assert app.nursery is not None
            assert app.nursery is not first
            assert await (await client.get("/later")).get_data() == b"still serving"
    assert events == ["background task cancelled"] * 2
    (record,) = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert "app.add_background_task()" in record.getMessage()
    assert isinstance(record.exc_info[1], KeyError)


async def test_without_the_extension_a_crash_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under a server (the connection layer's lifespan scope, without trioweb.task_errors) a
    failed background task and a crash are logged, and the lifespan goes on to a normal
    shutdown."""
    app = TrioWeb(__name__)
    crashed = trio.Event()

    async def crash() -> None:
        crashed.set()
        raise KeyError("crashed")

    async def fail() -> None:
        raise ValueError("failed")

    @app.before_serving
    async def start() -> None:
        app.add_background_task(fail)
        await trio.testing.wait_all_tasks_blocked()

    to_app, inbox = trio.open_memory_channel[dict[str, object]](1)
    outbox, from_app = trio.open_memory_channel[dict[str, object]](1)
    scope = {
        "type": "lifespan",
        "asgi": {"version": "3.0"},
        "state": {},
        "extensions": {"trioweb.layer": {}},
    }
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, inbox.receive, outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        assert await from_app.receive() == {"type": "lifespan.startup.complete"}
        assert app.nursery is not None
        app.nursery.start_soon(crash)
        await crashed.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert app.nursery is not None
        await to_app.send({"type": "lifespan.shutdown"})
        assert await from_app.receive() == {"type": "lifespan.shutdown.complete"}
    assert [r.levelname for r in caplog.records] == ["ERROR", "CRITICAL"]


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
async def test_a_crash_during_startup_or_shutdown_leaves_them_alone(phase: str) -> None:
    """A task on app.nursery that raises while before_serving or after_serving runs ends only
    the app nursery: the lifespan phase completes, and the client raises the crash on exit."""
    app = TrioWeb(__name__)
    events: list[str] = []

    async def crash() -> None:
        raise KeyError("crashed")

    async def crash_and_go_on() -> None:
        assert app.nursery is not None
        app.nursery.start_soon(crash)
        await trio.testing.wait_all_tasks_blocked()
        events.append(f"{phase} completed")

    if phase == "startup":
        app.before_serving(crash_and_go_on)
    else:
        app.after_serving(crash_and_go_on)
    with pytest.raises(KeyError, match="crashed"):
        async with app.test_client():
            pass
    assert events == [f"{phase} completed"]
    assert app.nursery is None


async def test_a_task_that_raises_when_cancelled_at_shutdown() -> None:
    """A task on app.nursery whose cleanup raises at shutdown: the shutdown completes and the
    client raises the cleanup's exception."""
    app = TrioWeb(__name__)

    async def bad_cleanup() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise OSError("cleanup failed")

    @app.before_serving
    async def start() -> None:
        assert app.nursery is not None
        app.nursery.start_soon(bad_cleanup)

    with pytest.raises(OSError, match="cleanup failed"):
        async with app.test_client():
            pass
    assert app.nursery is None


# As the docs show (docs/examples/lifespan.py, notes.py) -------------------------------------------

lifespan_example = load_example("lifespan")
notes_example = load_example("notes")


async def test_notes_lists_the_welcome_note() -> None:
    """The notes app starts with one note, listed with its URL."""
    with trio.fail_after(5):
        async with notes_example.app.test_client() as client:
            response = await client.get("/notes")
            assert await response.get_json() == {
                "notes": [{"id": 1, "text": "Try trioweb", "url": "/notes/1"}]
            }


async def test_lifespan_worker_drains_the_queue_at_shutdown() -> None:
    """Jobs queued by views are all done by the worker before the app stops."""
    with trio.fail_after(5):
        async with lifespan_example.app.test_client() as client:
            for job in ["resize", "email", "archive"]:
                response = await client.post("/jobs", data=job)
                assert response.status_code == 202
        assert lifespan_example.jobs.done == ["resize", "email", "archive"]
        assert lifespan_example.app.nursery is None


async def test_lifespan_background_task_runs_after_the_response() -> None:
    """add_background_task runs the function in the app nursery, without the request."""
    with trio.fail_after(5):
        async with lifespan_example.app.test_client() as client:
            response = await client.post("/welcome/ada")
            assert response.status_code == 202
            await trio.testing.wait_all_tasks_blocked()
            assert lifespan_example.welcomed[-1] == "ada"


async def test_lifespan_background_task_needs_a_serving_app() -> None:
    """add_background_task outside serving raises RuntimeError."""
    with pytest.raises(RuntimeError, match="needs the app to be serving"):
        lifespan_example.app.add_background_task(lifespan_example.send_welcome, "ada")
