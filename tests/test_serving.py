"""trioweb.serve and app.run: Hypercorn's trio worker under a Trio nursery, started, stopped and
failing as documented."""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from _docs import load_example
from _e2e import served
from hypercorn.config import Config as HypercornConfig
from hypercorn.middleware import ProxyFixMiddleware
from trio_websocket import ConnectionClosed

import trioweb
from trioweb import LifespanError, TrioWeb, serve, websocket
from trioweb._errors import lone_exception
from trioweb._serving import hypercorn_config, run
from trioweb.testing import TestClient
from trioweb.testing.pytest_plugin import LiveServer


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def lifecycle_app(events: list[str]) -> TrioWeb:
    """An app that records its lifespan, with a background task, in ``events``."""
    app = TrioWeb(__name__)

    async def background() -> None:
        try:
            await trio.sleep_forever()
        finally:
            events.append("background task cancelled")

    @app.before_serving
    async def start() -> None:
        events.append("before_serving")
        app.add_background_task(background)

    @app.after_serving
    async def stop() -> None:
        events.append("after_serving")

    @app.route("/")
    async def index() -> str:
        return "hello"

    return app


def failing_app(phase: str) -> TrioWeb:
    """An app whose ``before_serving`` (phase ``"startup"``) or ``after_serving`` fails."""
    app = TrioWeb(__name__)

    async def fail() -> None:
        raise RuntimeError(f"{phase} broke")

    if phase == "startup":
        app.before_serving(fail)
    else:
        app.after_serving(fail)
    return app


async def test_start_returns_the_url_once_before_serving_has_run() -> None:
    """``nursery.start(serve, ...)`` returns http://127.0.0.1:<port>, before_serving done."""
    events: list[str] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, lifecycle_app(events), port=0))
            match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url)
            assert match is not None, url
            assert int(match[1]) > 0
            assert events == ["before_serving"]
            async with httpx.AsyncClient() as client:
                response = await client.get(url + "/")
            assert (response.status_code, response.text) == (200, "hello")
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("stop_by", ["cancellation", "shutdown_trigger"])
async def test_stopping_is_graceful(stop_by: str) -> None:
    """Stopping lets the request in flight finish, then runs after_serving, then cancels the
    background tasks; the port is closed afterwards."""
    events: list[str] = []
    app = lifecycle_app(events)
    view_entered, release_view, stop = trio.Event(), trio.Event(), trio.Event()
    responses: list[httpx.Response] = []

    @app.route("/slow")
    async def slow() -> str:
        view_entered.set()
        await release_view.wait()
        return "finished"

    async def fetch(url: str) -> None:
        async with httpx.AsyncClient() as client:
            responses.append(await client.get(url + "/slow"))

    async def release_once_shutting_down() -> None:
        await trio.testing.wait_all_tasks_blocked()
        events.append("view released")
        release_view.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as clients, trio.open_nursery() as servers:
            url = await servers.start(partial(serve, app, port=0, shutdown_trigger=stop.wait))
            clients.start_soon(fetch, url)
            await view_entered.wait()
            clients.start_soon(release_once_shutting_down)
            if stop_by == "cancellation":
                servers.cancel_scope.cancel()
            else:
                stop.set()
        assert [(r.status_code, r.text) for r in responses] == [(200, "finished")]
        assert events == [
            "before_serving",
            "view released",
            "after_serving",
            "background task cancelled",
        ]
        port = int(url.rpartition(":")[2])
        with pytest.raises(OSError, match="all attempts to connect"):
            await trio.open_tcp_stream("127.0.0.1", port)


async def test_failing_before_serving_is_raised_from_start() -> None:
    """A failing before_serving makes ``nursery.start(serve, ...)`` raise LifespanError."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            with pytest.raises(LifespanError) as caught:
                await nursery.start(partial(serve, failing_app("startup"), port=0))
    assert caught.value.phase == "startup"
    assert "RuntimeError: startup broke" in caught.value.message


async def test_failing_after_serving_is_raised_at_shutdown() -> None:
    """A failing after_serving makes ``serve`` raise LifespanError when it is stopped."""
    with trio.fail_after(5):
        with pytest.RaisesGroup(
            pytest.RaisesExc(
                LifespanError,
                check=lambda error: "RuntimeError: shutdown broke" in error.message,
            )
        ):
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(serve, failing_app("shutdown"), port=0))
                nursery.cancel_scope.cancel()


# Hypercorn 0.18 does not close the socket it fails to bind.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
async def test_a_port_in_use_raises_os_error() -> None:
    """Serving on a port that another socket listens on raises OSError from ``start``."""
    with trio.fail_after(5):
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener, trio.open_nursery() as nursery:
            port = listener.socket.getsockname()[1]
            with pytest.raises(OSError, match="in use") as caught:
                await nursery.start(partial(serve, TrioWeb(__name__), port=port))
    assert not isinstance(caught.value, BaseExceptionGroup)
    del caught
    gc.collect()  # that socket's warning, now, under this test's filter


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_serve_on_ipv6_reports_a_bracketed_url() -> None:
    """On ``::1`` the URL is http://[::1]:<port>, and it answers."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, lifecycle_app([]), host="::1", port=0))
            assert re.fullmatch(r"http://\[::1\]:[1-9]\d*", url), url
            async with httpx.AsyncClient() as client:
                assert (await client.get(url + "/")).text == "hello"
            nursery.cancel_scope.cancel()


async def test_serve_applies_the_given_hypercorn_config() -> None:
    """Settings of ``config`` other than ``bind`` take effect (here: no Server header)."""
    config = HypercornConfig()
    config.include_server_header = False
    with trio.fail_after(5):
        async with served(lifecycle_app([])) as client:
            assert "server" in (await client.get("/")).headers
        async with served(lifecycle_app([]), config=config) as client:
            assert "server" not in (await client.get("/")).headers


@pytest.mark.parametrize(
    ("host", "port", "bind"),
    [
        ("127.0.0.1", 5000, "127.0.0.1:5000"),
        ("0.0.0.0", 0, "0.0.0.0:0"),
        ("localhost", 8080, "localhost:8080"),
        ("::1", 8000, "[::1]:8000"),
        ("::", 0, "[::]:0"),
    ],
)
async def test_hypercorn_config_binds_host_and_port(host: str, port: int, bind: str) -> None:
    """``hypercorn_config`` binds ``host:port``, brackets IPv6, and copies the given config
    without changing it."""
    original = HypercornConfig()
    original.bind = ["10.0.0.1:1"]
    original.graceful_timeout = 0.5
    config = hypercorn_config(host, port, original)
    assert config is not original
    assert config.bind == [bind]
    assert config.graceful_timeout == 0.5
    assert original.bind == ["10.0.0.1:1"]
    assert hypercorn_config(host, port).bind == [bind]


class _SignalWhenIdle:
    """Stands in for Ctrl+C in ``run`` (signals cannot reach a worker thread): its first
    "signal" comes once every other task waits, that is, once the server is up and idle."""

    def __init__(self) -> None:
        self.sent = False

    def __aiter__(self) -> _SignalWhenIdle:
        return self

    async def __anext__(self) -> int:
        if self.sent:
            await trio.sleep_forever()
        await trio.testing.wait_all_tasks_blocked()
        self.sent = True
        return signal.SIGINT


@contextmanager
def _signal_when_idle(signals: object) -> Iterator[_SignalWhenIdle]:
    yield _SignalWhenIdle()


@pytest.mark.parametrize("logging_configured", [True, False])
async def test_run_serves_until_stopped(
    logging_configured: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` prints "Running on <url>" once (not Hypercorn's line too), and after Ctrl+C runs
    after_serving and prints "stopped"; with no logging configured it logs to stderr, the
    access log included."""
    monkeypatch.setattr(trioweb._serving, "_signal_receiver", _signal_when_idle)
    root = logging.getLogger()
    if not logging_configured:
        monkeypatch.setattr(root, "handlers", [])
        monkeypatch.setattr(root, "level", root.level)
    events: list[str] = []
    app = lifecycle_app(events)
    with trio.fail_after(5):
        await trio.to_thread.run_sync(partial(run, app, port=0), abandon_on_cancel=True)
    assert events == ["before_serving", "after_serving", "background task cancelled"]
    stderr = capsys.readouterr().err
    running_on = re.findall(r"Running on http://127\.0\.0\.1:\d+", stderr)
    assert len(running_on) == 1
    assert re.search(r"^Running on http://127\.0\.0\.1:\d+ \(Ctrl\+C to quit\)$", stderr, re.M)
    assert stderr.endswith("trioweb: stopped\n")
    shutting_down = "INFO trioweb: shutting down (Ctrl+C again to quit at once)"
    assert (shutting_down in stderr) == (not logging_configured)
    assert not logging.getLogger("hypercorn.error").filters  # run() left no filter behind


@pytest.mark.parametrize(
    ("access_log", "config", "logged"),
    [
        (True, None, True),
        (False, None, False),
        (True, HypercornConfig.from_mapping(accesslog=None), False),
    ],
)
async def test_run_logs_each_request_unless_told_not_to(
    access_log: bool,
    config: HypercornConfig | None,
    logged: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``run`` logs each request to ``hypercorn.access`` in ACCESS_LOG_FORMAT, unless
    ``access_log=False`` or the config says where (here: nowhere)."""
    caplog.set_level(logging.INFO)
    app = TrioWeb(__name__)

    @app.route("/hello")
    async def hello() -> str:
        return "hi"

    announced, fetched = trio.Event(), trio.Event()
    urls: list[str] = []

    def announce(url: str) -> None:
        urls.append(url)
        announced.set()

    async def fetch() -> None:
        await announced.wait()
        async with httpx.AsyncClient() as client:
            assert (await client.get(urls[0] + "/hello?x=1")).text == "hi"
        fetched.set()

    class SignalOnceFetched(_SignalWhenIdle):
        async def __anext__(self) -> int:
            if self.sent:
                await trio.sleep_forever()
            await fetched.wait()
            self.sent = True
            return signal.SIGINT

    @contextmanager
    def signal_once_fetched(signals: object) -> Iterator[_SignalWhenIdle]:
        yield SignalOnceFetched()

    monkeypatch.setattr(trioweb._serving, "_print_running_on", announce)
    monkeypatch.setattr(trioweb._serving, "_signal_receiver", signal_once_fetched)

    @app.before_serving
    async def start_fetching() -> None:
        app.add_background_task(fetch)

    with trio.fail_after(5):
        await trio.to_thread.run_sync(
            partial(run, app, port=0, config=config, access_log=access_log),
            abandon_on_cancel=True,
        )
    access = [r.getMessage() for r in caplog.records if r.name == "hypercorn.access"]
    # One line per request: not the second one, status "-", that Hypercorn 0.18 may write
    # when the stream closes (pgjones/hypercorn#357).
    if logged:
        (line,) = access
        assert re.fullmatch(r'127\.0\.0\.1:\d+ "GET /hello\?x=1 1\.1" 200 2 \d+\.\d{6}s', line)
    else:
        assert access == []


async def test_run_raises_a_failing_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` raises LifespanError itself (not in a group) and never says it is serving."""
    monkeypatch.setattr(trioweb._serving, "_signal_receiver", _signal_when_idle)
    with trio.fail_after(5), pytest.raises(LifespanError, match="startup broke"):
        await trio.to_thread.run_sync(
            partial(run, failing_app("startup"), port=0), abandon_on_cancel=True
        )
    assert "Running on" not in capsys.readouterr().err


async def test_run_refuses_a_setting_hypercorn_does_not_have() -> None:
    """A keyword that is not a Hypercorn setting is a TypeError that says where they are."""
    with pytest.raises(TypeError, match="'graceful' is not a Hypercorn setting"):
        run(TrioWeb(__name__), graceful=1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_ctrl_c_and_sigterm_start_the_shutdown(signum: signal.Signals) -> None:
    """Either signal cancels the scope ``run`` serves in (its graceful shutdown)."""
    scope = trio.CancelScope()
    root = trio.lowlevel.current_task()
    with trio.fail_after(5):
        with trioweb._serving._signal_receiver((signal.SIGINT, signal.SIGTERM)) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trioweb._serving._watch_signals, scope, 60, root, signals)
                await trio.testing.wait_all_tasks_blocked()
                assert not scope.cancel_called
                signal.raise_signal(signum)
                await trio.testing.wait_all_tasks_blocked()  # the watcher took the signal
                assert scope.cancel_called
                nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("second_signal", "message"),
    [
        (False, "the shutdown did not finish within 1.5 s; exiting anyway"),
        (True, "interrupted during the shutdown; exiting at once"),
    ],
)
async def test_a_shutdown_that_does_not_end_names_the_stuck_task_and_exits_1(
    second_signal: bool,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task that swallows Cancelled keeps the shutdown from ending: once the bound has passed
    (or at a second signal) each such task is logged with where it waits, and the process exits
    with status 1 (os._exit, faked here: it releases the task instead)."""
    released = trio.Event()
    exits: list[int] = []

    def fake_exit(status: int) -> None:
        exits.append(status)
        released.set()

    monkeypatch.setattr(os, "_exit", fake_exit)
    caplog.set_level(logging.INFO, logger="trioweb")
    send_signal, signals = trio.open_memory_channel[int](2)
    serving = trio.CancelScope()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await trio.sleep_forever()
            except trio.Cancelled:  # the bug: swallowed, in a loop
                with trio.CancelScope(shield=True):
                    await trio.sleep(0.1)

    async def signal_twice() -> None:
        await send_signal.send(signal.SIGINT)
        if second_signal:
            await trio.sleep(0.5)
            await send_signal.send(signal.SIGINT)

    async with trio.open_nursery() as nursery:
        root = trio.lowlevel.current_task()
        nursery.start_soon(trioweb._serving._watch_signals, serving, 1.5, root, signals)
        with serving:
            async with trio.open_nursery() as server:
                server.start_soon(stubborn, name="stubborn-handler")
                nursery.start_soon(signal_twice)
    assert exits == [1]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0] == message
    assert all(line.startswith("this task would not end: ") for line in errors[1:])
    (stuck,) = [line for line in errors[1:] if "stubborn-handler" in line]  # not signal_twice
    assert stuck.startswith("this task would not end: stubborn-handler at ")
    assert re.search(r"test_serving\.py:\d+ in stubborn$", stuck)


@pytest.mark.parametrize(
    ("phase", "functions"), [("startup", "before_serving"), ("shutdown", "after_serving")]
)
async def test_a_lifespan_past_hypercorns_timeout_is_a_lifespan_error(
    phase: str, functions: str
) -> None:
    """A before_serving or after_serving that outlasts Hypercorn's startup_timeout or
    shutdown_timeout is a LifespanError naming them and the setting (Hypercorn's own error
    says "startup" for both)."""
    app = TrioWeb(__name__)
    hanging = app.before_serving if phase == "startup" else app.after_serving
    hanging(trio.sleep_forever)
    config = HypercornConfig.from_mapping({f"{phase}_timeout": 0.1})
    with trio.fail_after(5), pytest.raises(BaseExceptionGroup) as caught:  # noqa: PT012
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, app, port=0, config=config))
            nursery.cancel_scope.cancel()
    error = lone_exception(caught.value)
    assert isinstance(error, LifespanError)
    assert error.phase == phase
    assert error.message == (
        f"TimeoutError: the {functions} functions did not finish within 0.1 s (Hypercorn's"
        f" {phase}_timeout setting)"
    )


@pytest.mark.parametrize(("answered", "logged"), [(True, []), (False, ['"GET /gone 1.1" - -'])])
async def test_the_access_log_writes_one_line_per_request(
    answered: bool, logged: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The second line Hypercorn 0.18 writes without a response, once the app has answered,
    is dropped (pgjones/hypercorn#357); a request whose client left unanswered is logged."""
    caplog.set_level(logging.INFO, logger="hypercorn.access")
    config = HypercornConfig.from_mapping(accesslog=logging.getLogger("hypercorn.access"))
    config.access_log_format = '"%(r)s" %(s)s %(b)s'
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/gone",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    if answered:
        scope[trioweb._serving._ANSWERED] = True
    await trioweb._serving._OneLinePerRequest(config).access(scope, None, 0.1)
    assert [r.getMessage() for r in caplog.records if r.name == "hypercorn.access"] == logged


async def test_hypercorn_config_applies_settings_and_keeps_a_configured_bind() -> None:
    """Settings by name win over the config's; a bind the config sets is kept unless host or
    port is given; shutdown_timeout defaults to trioweb's 10 s, not Hypercorn's 60."""
    original = HypercornConfig.from_mapping(bind=["127.0.0.1:8123"], keep_alive_timeout=9)
    config = hypercorn_config(config=original, keep_alive_timeout=1, graceful_timeout=0)
    assert config.bind == ["127.0.0.1:8123"]
    assert (config.keep_alive_timeout, config.graceful_timeout) == (1, 0)
    assert config.shutdown_timeout == trioweb._serving.SHUTDOWN_TIMEOUT == 10
    assert hypercorn_config(port=0, config=original).bind == ["127.0.0.1:0"]
    assert hypercorn_config().bind == ["127.0.0.1:5000"]
    with pytest.raises(TypeError, match="'_bind' is not a Hypercorn setting"):
        hypercorn_config(_bind=["x"])


async def test_failing_tasks_under_a_server_are_logged_and_it_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served by Hypercorn, a failed background task and a task that crashes app.nursery are
    logged (ERROR, CRITICAL); the server goes on answering and starting background tasks."""
    app = TrioWeb(__name__)
    done = trio.Event()

    async def fail() -> None:
        raise ValueError("background task failed")

    async def crash() -> None:
        raise KeyError("crashed the app nursery")

    async def finish() -> None:
        done.set()

    @app.route("/fail")
    async def start_fail() -> str:
        app.add_background_task(fail)
        assert app.nursery is not None
        app.nursery.start_soon(crash)
        return "started"

    @app.route("/later")
    async def later() -> str:
        app.add_background_task(finish)
        return "still serving"

    crash_logged = _LogEvent(logging.CRITICAL)
    logging.getLogger("trioweb").addHandler(crash_logged)
    try:
        async with served(app) as client:
            assert (await client.get("/fail")).text == "started"
            await crash_logged.event.wait()
            assert (await client.get("/later")).text == "still serving"
            await done.wait()
    finally:
        logging.getLogger("trioweb").removeHandler(crash_logged)
    failures = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert sorted(type(r.exc_info[1]).__name__ for r in failures) == ["KeyError", "ValueError"]


class _LogEvent(logging.Handler):
    """A log handler that sets ``event`` when a record of ``level`` or above is logged."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


proxy_example = load_example("proxy")


serving_example = load_example("serving")


async def _http_get(url: str, path: str = "/") -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        chunks = []
        while chunk := await stream.receive_some():
            chunks.append(chunk)
    return b"".join(chunks)


async def test_serving_serve_until_stop() -> None:
    """nursery.start(serve_until, stop) returns the URL of a live server that stops on stop."""
    with trio.fail_after(5):
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serving_example.serve_until, stop)
            assert url.startswith("http://127.0.0.1:")
            reply = await _http_get(url)
            assert reply.startswith(b"HTTP/1.1 200")
            assert reply.endswith(b"Served from inside a Trio program\n")
            stop.set()


async def test_serving_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    """main() serves the app and prints its URL once it accepts connections."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serving_example.main, port=0))
            await trio.testing.wait_all_tasks_blocked()
            url = capsys.readouterr().out.removeprefix("serving on ").strip()
            reply = await _http_get(url)
            assert reply.startswith(b"HTTP/1.1 200")
            nursery.cancel_scope.cancel()


#: What the /left handler of _live_app saw, and an event set when its cleanup is done.
_live_state: dict[str, Any] = {}


_live_app = TrioWeb("live")


@_live_app.websocket("/left")
async def _left() -> None:
    try:
        await websocket.receive()
    finally:
        _live_state["code"] = websocket.close_code
        _live_state["done"].set()


@_live_app.websocket("/broken")
async def _broken() -> None:
    await websocket.receive()
    raise KeyError("a bug")


@pytest.mark.parametrize("app", [_live_app], ids=["live"])
async def test_ws_the_handler_sees_the_code_the_client_closed_with(
    live_server: LiveServer, server: str
) -> None:
    """Served through the connection layer, the handler sees the client's close code; stock
    Hypercorn 0.18 reports 1006, whatever code the client closed with (pinned, issue 8)."""
    _live_state["done"] = trio.Event()
    async with live_server.websocket("/left") as connection:
        await connection.aclose(4000, "bye")
    await _live_state["done"].wait()
    assert _live_state["code"] == (4000 if server == "layer" else 1006)


@pytest.mark.parametrize("app", [_live_app], ids=["live"])
# Stock Hypercorn's own behaviour, pinned (trioweb's layer differs: issue 8).
@pytest.mark.parametrize("server", ["stock"], indirect=True)
async def test_ws_hypercorn_logs_an_unhandled_error_and_the_client_sees_1011(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An unhandled exception after accept: the client gets 1011, Hypercorn logs the error."""
    async with live_server.websocket("/broken") as connection:
        await connection.send_message("go")
        with pytest.raises(ConnectionClosed) as closed:
            await connection.get_message()
    assert closed.value.reason.code == 1011
    assert closed.value.reason.reason == "Internal Server Error"
    (record,) = [r for r in caplog.records if r.getMessage() == "Error in ASGI Framework"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


#: What a proxy that terminated TLS for https://notes.example.com says about its client.
X_FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "notes.example.com",
}


FORWARDED = {"Forwarded": "for=203.0.113.7;proto=https;host=notes.example.com"}


@pytest.mark.parametrize(
    ("mode", "headers"),
    [
        ("legacy", X_FORWARDED),
        ("modern", FORWARDED),
        # A client may send its own X-Forwarded-For; the proxy appends the address it saw, and
        # with trusted_hops=1 only that last value counts.
        ("legacy", {**X_FORWARDED, "X-Forwarded-For": "198.51.100.1, 203.0.113.7"}),
    ],
    ids=["x-forwarded", "forwarded", "spoofed-for"],
)
async def test_behind_a_proxy_the_request_sees_what_the_client_saw(
    mode: str, headers: dict[str, str]
) -> None:
    """Wrapped in ProxyFixMiddleware, the request has the client's scheme, host and address,
    and url_for builds external URLs (a websocket's with wss) that the client can use."""
    wrapped = ProxyFixMiddleware(proxy_example.app, mode=mode, trusted_hops=1)
    async with TestClient(wrapped) as client:
        response = await client.get("/whoami", headers=headers)
    assert await response.get_json() == {
        "scheme": "https",
        "secure": True,
        "url": "https://notes.example.com/whoami",
        "remote_addr": "203.0.113.7",
        "feed": "wss://notes.example.com/feed",
    }


@pytest.mark.parametrize(("proto", "scheme"), [("https", "https"), ("wss", "wss")])
async def test_behind_a_proxy_the_websocket_sees_what_the_client_saw(
    proto: str, scheme: str
) -> None:
    """Wrapped in ProxyFixMiddleware, the websocket has the client's address and host, and the
    scheme the proxy names, as it names it (https from nginx, wss from others): is_secure is
    what to check."""
    headers = {**X_FORWARDED, "X-Forwarded-Proto": proto}
    async with (
        TestClient(proxy_example.asgi_app) as client,
        client.websocket("/feed", headers=headers) as ws,
    ):
        assert await ws.receive_json() == {
            "scheme": scheme,
            "secure": True,
            "url": f"{scheme}://notes.example.com/feed",
            "remote_addr": "203.0.113.7",
        }


async def test_without_the_middleware_forwarded_headers_are_not_trusted() -> None:
    """The app alone ignores X-Forwarded-* and Forwarded: anyone can send them."""
    async with proxy_example.app.test_client() as client:
        response = await client.get("/whoami", headers={**X_FORWARDED, **FORWARDED})
        async with client.websocket("/feed", headers=X_FORWARDED) as ws:
            seen = await ws.receive_json()
    assert (await response.get_json())["url"] == "http://localhost/whoami"
    assert (await response.get_json())["remote_addr"] == "127.0.0.1"
    assert (seen["scheme"], seen["secure"]) == ("ws", False)


async def test_behind_a_proxy_under_hypercorn() -> None:
    """Served by Hypercorn, the wrapped app answers a proxied request with the client's URL."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            partial(serve, proxy_example.asgi_app, port=0, shutdown_trigger=stop.wait)
        )
        async with httpx.AsyncClient() as http:
            response = await http.get(url + "/whoami", headers=X_FORWARDED)
        stop.set()
    assert response.json()["url"] == "https://notes.example.com/whoami"
    assert response.json()["remote_addr"] == "203.0.113.7"
