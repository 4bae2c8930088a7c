"""The test client: how it builds requests, how it reports responses and misbehaving apps, and
its timeout."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from _checkpoints import assert_raises_at_a_checkpoint
from werkzeug.datastructures import Headers

from trioweb import LifespanError, TrioWeb, request
from trioweb.testing import TestClient, TestResponse

Message = dict[str, Any]
HTTPHandler = Callable[[Message, Callable[[], Awaitable[Message]], Any], Awaitable[None]]


def _echo_app() -> TrioWeb:
    app = TrioWeb(__name__)

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def echo() -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "args": request.args.to_dict(flat=False),
            "content_type": request.content_type,
            "content_length": request.headers.get("Content-Length"),
            "body": (await request.get_data()).decode(),
            "x_token": request.headers.getlist("X-Token"),
            "root_path": request.root_path,
            "http_version": request.scope["http_version"],
        }

    return app


def _raw_app(http: HTTPHandler) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: a correct lifespan, and `http` for requests."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await http(scope, receive, send)

    return app


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
async def test_method_helpers(method: str) -> None:
    """Each helper sends its method; a bodiless POST/PUT/PATCH says `Content-Length: 0`."""
    async with _echo_app().test_client() as client:
        echoed = await (await getattr(client, method)("/echo")).get_json()
    assert echoed["method"] == method.upper()
    expected_length = "0" if method in ("post", "put", "patch") else None
    assert echoed["content_length"] == expected_length


async def test_open_with_any_method_and_request_options() -> None:
    """`open` takes any method, `http_version`, and `root_path`, the mount point the app's path
    is below."""
    async with _echo_app().test_client() as client:
        response = await client.open("/echo", method="put", root_path="/app", http_version="2")
        echoed = await response.get_json()
    assert echoed["method"] == "PUT"
    assert echoed["http_version"] == "2"
    assert (echoed["root_path"], echoed["path"]) == ("/app", "/echo")


@pytest.mark.parametrize(
    ("kwargs", "body", "content_type"),
    [
        ({"data": b"\x00raw"}, "\x00raw", None),
        ({"data": "text \u00e9"}, "text \u00e9", None),
        ({"data": {"a": "1", "b": ["2", "3"]}}, "a=1&b=2&b=3", "application/x-www-form-urlencoded"),
        ({"json": {"k": [1, None]}}, '{"k": [1, null]}', "application/json"),
        (
            {"data": b"<x/>", "headers": {"Content-Type": "application/xml"}},
            "<x/>",
            "application/xml",
        ),
    ],
)
async def test_request_bodies(kwargs: dict[str, Any], body: str, content_type: str | None) -> None:
    """`data=` sends bytes and str as they are and a dict form-encoded; `json=` sends JSON; each
    with a matching Content-Type and Content-Length."""
    async with _echo_app().test_client() as client:
        echoed = await (await client.post("/echo", **kwargs)).get_json()
    assert echoed["body"] == body
    assert echoed["content_type"] == content_type
    assert echoed["content_length"] == str(len(body.encode()))


async def test_multipart_data() -> None:
    """A dict with `(file, filename)` values is sent as multipart/form-data."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def upload() -> dict[str, Any]:
        files = await request.files
        return {"type": request.mimetype, "name": files["doc"].filename}

    async with app.test_client() as client:
        response = await client.post("/", data={"doc": (io.BytesIO(b"abc"), "doc.txt")})
    assert await response.get_json() == {"type": "multipart/form-data", "name": "doc.txt"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Token": "t1"},
        [("X-Token", "t1"), ("X-Token", "t2")],
        Headers([("X-Token", "t1"), ("X-Token", "t2")]),
    ],
)
async def test_headers(headers: Any) -> None:
    """`headers=` takes a dict, a list of pairs (repeated names kept) or werkzeug Headers."""
    async with _echo_app().test_client() as client:
        echoed = await (await client.get("/echo", headers=headers)).get_json()
    expected = ["t1"] if isinstance(headers, dict) else ["t1", "t2"]
    assert echoed["x_token"] == expected


@pytest.mark.parametrize(
    ("path", "query_string", "args"),
    [
        ("/echo", {"a": "1", "b": ["2", "3"]}, {"a": ["1"], "b": ["2", "3"]}),
        ("/echo", "a=1&a=2", {"a": ["1", "2"]}),
        ("/echo", b"x=%C3%A9", {"x": ["\u00e9"]}),
        ("/echo?in=path&in=twice", None, {"in": ["path", "twice"]}),
        ("/echo?ignored=1", {"given": "1"}, {"given": ["1"]}),
        ("/echo", None, {}),
    ],
)
async def test_query_string(path: str, query_string: Any, args: dict[str, list[str]]) -> None:
    """`query_string=` takes a dict, str or bytes; a `?` in the path works when it is not given
    (and is replaced when it is)."""
    async with _echo_app().test_client() as client:
        echoed = await (await client.get(path, query_string=query_string)).get_json()
    assert echoed["args"] == args
    assert echoed["path"] == "/echo"


async def test_response_accessors() -> None:
    """A TestResponse has the status, headers, body and parsed JSON the app sent."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Any:
        return {"ok": True}, 201, {"X-Id": "9"}

    async with app.test_client() as client:
        response = await client.get("/")
    assert isinstance(response, TestResponse)
    assert (response.status_code, response.status) == (201, "201 CREATED")
    assert response.headers["X-Id"] == "9"
    assert await response.get_data() == b'{"ok":true}'
    assert await response.get_data(as_text=True) == '{"ok":true}'
    assert await response.get_json() == {"ok": True}


async def test_timeout_raises_too_slow_error(autojump_clock: trio.testing.MockClock) -> None:
    """A view that never answers makes the request fail with trio.TooSlowError after the
    client's timeout, saying which request and how to allow more time."""
    app = TrioWeb(__name__)
    cancelled = trio.Event()

    @app.route("/hang")
    async def hang() -> str:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with app.test_client(timeout=1) as client:
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError, match=r"GET /hang: no complete response within 1"):
            await client.get("/hang")
        assert trio.current_time() - start == pytest.approx(1)
    assert cancelled.is_set()


async def test_hanging_before_serving_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """A `before_serving` that never returns fails the client's entry with TooSlowError."""
    app = TrioWeb(__name__)

    @app.before_serving
    async def hang() -> None:
        await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError):
        async with app.test_client(timeout=2):
            raise AssertionError("not reached")


async def test_exception_in_the_body_propagates_unwrapped() -> None:
    """An exception raised inside `async with app.test_client()` reaches the caller as it is,
    not inside an exception group."""
    app = TrioWeb(__name__)
    with pytest.raises(KeyError, match="from the test"):
        async with app.test_client():
            raise KeyError("from the test")


async def test_client_cannot_be_entered_twice() -> None:
    """Entering an open client again is a RuntimeError; a closed one can be reused."""
    app = TrioWeb(__name__)
    client = app.test_client()
    async with client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()
    async with client:
        pass


async def test_app_sees_disconnect_after_the_response() -> None:
    """After the complete response, the app's next `receive()` is `http.disconnect`."""
    seen: list[Message] = []

    async def http(scope: Message, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        seen.append(await receive())

    async with TestClient(_raw_app(http)) as client:
        response = await client.post("/", data=b"hi")
    assert response.status_code == 204
    assert seen == [
        {"type": "http.request", "body": b"hi", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def _no_response(scope: Message, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def _body_first(scope: Message, receive: Any, send: Any) -> None:
    await send({"type": "http.response.body", "body": b"x"})


async def _after_end(scope: Message, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})
    await send({"type": "http.response.body", "body": b"y"})


async def _crash(scope: Message, receive: Any, send: Any) -> None:
    raise OSError("app crashed")


@pytest.mark.parametrize(
    ("http", "error", "match"),
    [
        (_no_response, RuntimeError, "without sending a complete response"),
        (_body_first, RuntimeError, "'http.response.body' out of order"),
        (_after_end, RuntimeError, "after the response ended"),
        (_crash, OSError, "app crashed"),
    ],
)
async def test_misbehaving_apps_are_reported(
    http: HTTPHandler, error: type[Exception], match: str
) -> None:
    """An app that sends no complete response, sends out of order or after the end, or raises,
    makes the request fail with an error saying so (the app's own error unwrapped)."""
    async with TestClient(_raw_app(http)) as client:
        with pytest.raises(error, match=match):
            await client.get("/")


async def test_app_crashing_with_several_errors_raises_the_group() -> None:
    """An app whose task fails with several errors raises them as a group."""

    async def http(scope: Message, receive: Any, send: Any) -> None:
        async def fail() -> None:
            raise ValueError("one of two")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail)
            nursery.start_soon(fail)

    async with TestClient(_raw_app(http)) as client:
        with pytest.raises(ExceptionGroup) as info:
            await client.get("/")
    assert [str(e) for e in info.value.exceptions] == ["one of two", "one of two"]


async def test_unexpected_lifespan_answer_is_runtime_error() -> None:
    """An app answering the lifespan startup with something else is a RuntimeError."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.surprise"})
        await trio.sleep_forever()

    with pytest.raises(RuntimeError, match=r"answered lifespan\.startup with"):
        async with TestClient(app):
            raise AssertionError("not reached")


async def test_lifespan_failure_message_from_another_app() -> None:
    """A startup failure without a message still raises LifespanError."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed"})

    with pytest.raises(LifespanError, match=r"^lifespan startup failed: $"):
        async with TestClient(app):
            raise AssertionError("not reached")


# Checkpoints ----------------------------------------------------------------------------------


async def test_methods_are_checkpoints_even_when_they_raise() -> None:
    """Each async method of TestClient that raises is a checkpoint first: a test looping on it
    can still be cancelled, and other tasks get to run."""
    app = TrioWeb(__name__)
    failing = TrioWeb(__name__)

    @failing.before_serving
    async def refuse() -> None:
        raise OSError("no database")

    client = app.test_client()
    async with client:
        await assert_raises_at_a_checkpoint(client.__aenter__, RuntimeError, "already open")
        await assert_raises_at_a_checkpoint(lambda: client.get("/", json={1}), TypeError, "set")
    async with TestClient(_raw_app(_crash)) as crashing:
        await assert_raises_at_a_checkpoint(lambda: crashing.get("/"), OSError, "app crashed")
    await assert_raises_at_a_checkpoint(
        failing.test_client().__aenter__, LifespanError, "no database"
    )


# Errors of the app's tasks --------------------------------------------------------------------


def _app_with_tasks(*failures: str) -> TrioWeb:
    """An app whose /start starts a background task per failure, each raising ValueError(it)."""
    app = TrioWeb(__name__)

    async def fail(message: str) -> None:
        raise ValueError(message)

    @app.route("/start")
    async def start() -> str:
        for message in failures:
            app.add_background_task(fail, message)
        return "started"

    return app


async def test_a_failed_background_task_is_raised_when_the_client_exits() -> None:
    """The exception of a background task fails the test: the client raises it on exit, as it is,
    after the lifespan has shut down."""
    app = _app_with_tasks("job failed")
    with pytest.raises(ValueError, match="job failed"):  # noqa: PT012
        async with app.test_client() as client:
            assert (await client.get("/start")).status_code == 200
            await trio.testing.wait_all_tasks_blocked()
    assert app.nursery is None


async def test_leaving_is_a_checkpoint_when_it_raises_a_task_error() -> None:
    """The client's exit yields to the scheduler before it raises a task's error."""
    task = trio.lowlevel.current_task()
    with pytest.raises(ValueError, match="job failed"):  # noqa: PT012 (raised on exit)
        async with _app_with_tasks("job failed").test_client() as client:
            await client.get("/start")
            await trio.testing.wait_all_tasks_blocked()
            schedule_points = task._schedule_points
    assert task._schedule_points > schedule_points


async def test_several_failed_background_tasks_are_raised_as_a_group() -> None:
    """Several failed tasks: an ExceptionGroup of their exceptions, in the order they failed."""
    with pytest.raises(ExceptionGroup, match="tasks in the app nursery raised") as raised:
        async with _app_with_tasks("one", "two").test_client() as client:
            await client.get("/start")
    assert sorted(str(error) for error in raised.value.exceptions) == ["one", "two"]


async def test_task_errors_are_noted_on_the_tests_own_failure() -> None:
    """If the test body raises too, its exception leaves the client with a note per task error,
    with the task's traceback."""
    with pytest.raises(AssertionError, match="the test's own") as raised:  # noqa: PT012
        async with _app_with_tasks("job failed").test_client() as client:
            await client.get("/start")
            await trio.testing.wait_all_tasks_blocked()
            raise AssertionError("the test's own failure")
    (note,) = raised.value.__notes__
    assert note.startswith("A task in the app nursery also raised:\nTraceback")
    assert note.endswith("ValueError: job failed")


async def test_task_errors_are_noted_on_a_failed_shutdown() -> None:
    """A failing after_serving raises LifespanError, with the task errors noted on it."""
    app = _app_with_tasks("job failed")

    @app.after_serving
    async def stop() -> None:
        raise OSError("cannot flush")

    with pytest.raises(LifespanError, match="cannot flush") as raised:
        async with app.test_client() as client:
            await client.get("/start")
    assert raised.value.__notes__[0].endswith("ValueError: job failed")


async def test_the_lifespan_scope_offers_the_task_errors_extension() -> None:
    """The lifespan scope the client sends carries ``trioweb.task_errors``: a list, empty at
    first, that the client raises from on exit, whatever app appended to it."""
    offered: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        offered.append(list(scope["extensions"]["trioweb.task_errors"]))
        scope["extensions"]["trioweb.task_errors"].append(KeyError("from another app"))
        await _raw_app(_no_response)(scope, receive, send)

    with pytest.raises(KeyError, match="from another app"):
        async with TestClient(app):
            pass
    assert offered == [[]]
