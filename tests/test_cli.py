"""The ``trioweb`` command (and ``hypercorn -k trio``): serving an app module, stopping on a
signal, and failing clearly."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from _e2e import HYPERCORN, TRIOWEB, running
from hypercorn.config import Config as HypercornConfig

from tests.apps import basic
from trioweb import LifespanError
from trioweb._cli import load_app, main

SERVING = r"^trioweb: serving on (http://127\.0\.0\.1:\d+) \(Ctrl\+C to quit\)$"
RUNNING_ON = r"Running on (http://127\.0\.0\.1:\d+) \(CTRL \+ C to quit\)$"


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url + "/")


# In process: arguments, loading the app, and what main() does with run()'s outcome. These call
# no async code (run() is faked), so there is nothing for a Trio deadline to interrupt.


class FakeRun:
    """Stands in for ``trioweb._serving.run``: records its call, then raises ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, str, int]] = []

    def __call__(self, app: Any, *, host: str, port: int) -> None:
        self.calls.append((app, host, port))
        if self.error is not None:
            raise self.error


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_app`` may add the current directory to ``sys.path``: undo that after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.mark.parametrize(
    ("argv", "env", "app", "host", "port"),
    [
        (["run", "--app", "tests.apps.basic:app"], {}, basic.app, "127.0.0.1", 5000),
        (["run", "--app", "tests.apps.basic"], {}, basic.app, "127.0.0.1", 5000),
        (["run"], {"TRIOWEB_APP": "tests.apps.basic:app"}, basic.app, "127.0.0.1", 5000),
        (
            ["run", "--app", "tests.apps.basic:app", "--host", "::1", "--port", "0"],
            {"TRIOWEB_APP": "elsewhere:app"},
            basic.app,
            "::1",
            0,
        ),
    ],
)
async def test_run_serves_the_app_it_is_given(
    argv: list[str],
    env: dict[str, str],
    app: Any,
    host: str,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    isolated_imports: None,
) -> None:
    """``trioweb run`` serves ``--app`` (else $TRIOWEB_APP; the attribute defaults to ``app``)
    on ``--host``/``--port`` in this process, and exits 0 once it stops."""
    monkeypatch.delenv("TRIOWEB_APP", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake = FakeRun()
    monkeypatch.setattr("trioweb._cli.run", fake)
    assert main(argv) == 0
    assert fake.calls == [(app, host, port)]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            LifespanError("startup", "Traceback (most recent call last):\nRuntimeError: no db\n"),
            "trioweb: before_serving failed: RuntimeError: no db\n",
        ),
        (
            LifespanError("shutdown", "ValueError: bad"),
            "trioweb: after_serving failed: ValueError: bad\n",
        ),
        (LifespanError("startup", ""), "trioweb: before_serving failed: (no message)\n"),
        (
            OSError(98, "Address already in use"),
            "trioweb: cannot serve on 127.0.0.1:5000: Address already in use\n",
        ),
    ],
)
async def test_serving_failures_exit_1_with_one_line(
    error: Exception,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    isolated_imports: None,
) -> None:
    """A failing lifespan or a port that cannot be bound is one line on stderr and status 1."""
    monkeypatch.setattr("trioweb._cli.run", FakeRun(error))
    assert main(["run", "--app", "tests.apps.basic"]) == 1
    assert capsys.readouterr().err == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "say which app to run: --app module:app or TRIOWEB_APP"),
        (["run", "--app", "tests.apps.basic", "--workers", "0"], "--workers must be at least 1"),
    ],
)
async def test_usage_errors_exit_2(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No app, or no worker, is a usage error (status 2) that says what to do."""
    monkeypatch.delenv("TRIOWEB_APP", raising=False)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"trioweb: {message}\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nosuchmodule:app",
            "trioweb: cannot import 'nosuchmodule' (No module named 'nosuchmodule')",
        ),
        ("tests.apps.nosuch", "trioweb: cannot import 'tests.apps.nosuch' (No module named"),
        ("tests.apps.basic:nosuch", "trioweb: 'tests.apps.basic' has no attribute 'nosuch'"),
        ("tests.apps.basic:__name__", "trioweb: 'tests.apps.basic:__name__' is not an ASGI app"),
    ],
)
async def test_load_app_explains_what_is_wrong(
    spec: str, message: str, isolated_imports: None
) -> None:
    """An app that cannot be loaded stops the command with a message saying why."""
    with pytest.raises(SystemExit) as caught:
        load_app(spec)
    assert str(caught.value.code).startswith(message)


async def test_load_app_shows_a_missing_import_inside_the_module(isolated_imports: None) -> None:
    """A module that exists but imports a missing one raises that ModuleNotFoundError, even
    when the missing name is a prefix of the module's (``tests.app`` of ``tests.apps...``)."""
    with pytest.raises(ModuleNotFoundError) as caught:
        load_app("tests.apps.broken_import")
    assert caught.value.name == "tests.app"


async def test_load_app_imports_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_imports: None
) -> None:
    """A module in the current directory loads even when that directory is not on sys.path."""
    (tmp_path / "cwd_app_for_trioweb_tests.py").write_text("async def app(scope, r, s): pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "cwd_app_for_trioweb_tests", raising=False)
    app = load_app("cwd_app_for_trioweb_tests")
    assert app.__module__ == "cwd_app_for_trioweb_tests"
    del sys.modules["cwd_app_for_trioweb_tests"]


@pytest.mark.parametrize(
    ("argv", "workers", "reload", "where"),
    [
        (["--workers", "3"], 3, False, "http://127.0.0.1:5000"),
        (["--workers", "2", "--port", "0"], 2, False, "a free port of 127.0.0.1"),
        (["--reload", "--host", "::1", "--port", "8000"], 1, True, "http://[::1]:8000"),
    ],
)
async def test_workers_and_reload_run_hypercorns_supervisor(
    argv: list[str],
    workers: int,
    reload: bool,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    isolated_imports: None,
) -> None:
    """``--workers N`` and ``--reload`` hand the app to Hypercorn's process supervisor with the
    trio worker class; its exit status is the command's."""
    configs: list[HypercornConfig] = []

    def fake_hypercorn_run(config: HypercornConfig) -> int:
        configs.append(config)
        return 3

    monkeypatch.setattr("hypercorn.run.run", fake_hypercorn_run)
    assert main(["run", "--app", "tests.apps.basic", *argv]) == 3
    (config,) = configs
    assert config.application_path == "tests.apps.basic"
    assert (config.worker_class, config.workers, config.use_reloader) == ("trio", workers, reload)
    assert capsys.readouterr().err == (
        f"trioweb: serving tests.apps.basic on {where} with {workers} worker(s) (Ctrl+C to quit)\n"
    )


# As processes: what a user sees ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "signum"),
    [
        (["--app", "tests.apps.basic:app"], {}, signal.SIGINT),
        ([], {"TRIOWEB_APP": "tests.apps.basic:app"}, signal.SIGTERM),
    ],
)
async def test_trioweb_run_serves_until_a_signal(
    argv: list[str], env: dict[str, str], signum: signal.Signals
) -> None:
    """``trioweb run --port 0`` prints its URL, serves it, and on Ctrl+C or SIGTERM shuts down
    gracefully (after_serving runs) and exits 0."""
    with trio.fail_after(5):
        async with running(*TRIOWEB, "run", *argv, "--port", "0", env=env) as command:
            url = (await command.wait_for(SERVING))[1]
            response = await _get(url)
            assert (response.status_code, response.text) == (200, "basic")
            command.send_signal(signum)
            assert await command.finish() == 0
    stderr = command.stderr
    assert stderr.index("basic: before_serving ran") < stderr.index("trioweb: serving on")
    assert stderr.endswith("basic: after_serving ran\ntrioweb: stopped\n")
    assert len(re.findall(RUNNING_ON, stderr, re.MULTILINE)) == 1


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["run"], 2, "trioweb: say which app to run"),
        (["run", "--app", "tests.apps.basic", "--workers", "0"], 2, "--workers must be"),
        (["run", "--app", "nosuchmodule:app"], 1, "trioweb: cannot import 'nosuchmodule'"),
    ],
)
async def test_trioweb_refuses_bad_arguments(argv: list[str], status: int, message: str) -> None:
    """Bad arguments end the command with a message and a non-zero status, serving nothing."""
    with trio.fail_after(5):
        async with running(*TRIOWEB, *argv, env={"TRIOWEB_APP": ""}) as command:
            assert await command.finish() == status
    assert message in command.stderr
    assert "Traceback" not in command.stderr


async def test_trioweb_run_reports_a_port_in_use() -> None:
    """A port that is taken is one line and status 1."""
    with trio.fail_after(5):
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener:
            port = listener.socket.getsockname()[1]
            argv = ("run", "--app", "tests.apps.basic", "--port", str(port))
            async with running(*TRIOWEB, *argv) as command:
                assert await command.finish() == 1
    assert f"trioweb: cannot serve on 127.0.0.1:{port}: Address already in use\n" in command.stderr
    assert "Traceback" not in command.stderr


async def test_trioweb_run_with_workers() -> None:
    """``--workers 2`` serves through Hypercorn's supervisor: two workers on one port, each
    with its lifespan; Ctrl+C stops them all and the command exits 0."""
    argv = ("run", "--app", "tests.apps.basic:app", "--port", "0", "--workers", "2")
    with trio.fail_after(5):
        async with running(*TRIOWEB, *argv) as command:
            await command.wait_for(
                r"^trioweb: serving tests\.apps\.basic:app on a free port of 127\.0\.0\.1 with 2"
                r" worker\(s\)"
            )
            url = (await command.wait_for(RUNNING_ON + r"(?:.|\n)*" + RUNNING_ON))[1]
            assert (await _get(url)).text == "basic"
            command.send_signal(signal.SIGINT)
            assert await command.finish() == 0
    urls = re.findall(RUNNING_ON, command.stderr, re.MULTILINE)
    assert urls == [url, url]
    assert command.stderr.count("basic: after_serving ran") == 2


async def test_hypercorn_k_trio_serves_the_app() -> None:
    """``hypercorn -k trio module:app`` serves a trioweb app; Ctrl+C runs after_serving and
    Hypercorn exits 0."""
    with trio.fail_after(5):
        argv = ("-k", "trio", "tests.apps.basic:app", "--bind", "127.0.0.1:0")
        async with running(*HYPERCORN, *argv) as command:
            url = (await command.wait_for(RUNNING_ON))[1]
            assert (await _get(url)).text == "basic"
            command.send_signal(signal.SIGINT)
            assert await command.finish() == 0
    assert "basic: after_serving ran" in command.stderr


FAILING = "tests.apps.failing_startup:app"
HYPERCORN_FAILING = (*HYPERCORN, "-k", "trio", FAILING, "--bind", "127.0.0.1:0")
DATABASE_ERROR = "RuntimeError: the database is unreachable"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            (*TRIOWEB, "run", "--app", FAILING, "--port", "0"),
            f"trioweb: before_serving failed: {DATABASE_ERROR}\n",
            id="trioweb-run",
        ),
        pytest.param((*HYPERCORN_FAILING, "--workers", "0"), DATABASE_ERROR, id="hypercorn-w0"),
        pytest.param(
            HYPERCORN_FAILING,
            DATABASE_ERROR,
            id="hypercorn",
            marks=pytest.mark.xfail(
                reason="Hypercorn 0.18's supervisor (hypercorn.run.run) takes the failed worker's"
                " status, then reads the emptied list of workers again and returns 0",
                strict=True,
            ),
        ),
    ],
)
async def test_failing_before_serving_exits_non_zero(argv: tuple[str, ...], message: str) -> None:
    """An app whose before_serving fails is not served: the error is printed and the command
    exits non-zero."""
    with trio.fail_after(5):
        async with running(*argv) as command:
            status = await command.finish()
    assert message in command.stderr
    assert "trioweb: serving on" not in command.stderr
    assert status != 0


async def test_failing_before_serving_with_workers_ends_the_command() -> None:
    """With ``--workers 2``, a failing before_serving is printed and the command ends (its
    status is Hypercorn's supervisor's, 0 or not depending on timing, as above)."""
    with trio.fail_after(5):
        argv = ("run", "--app", FAILING, "--port", "0", "--workers", "2")
        async with running(*TRIOWEB, *argv) as command:
            await command.finish()
    assert DATABASE_ERROR in command.stderr
