"""trioweb run's worker supervisor: workers report when they serve, a failed worker stops the
command with status 1, Ctrl+C stops them all, a stuck one is killed, --reload restarts them."""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path

import pytest
from hypercorn.config import Config as HypercornConfig

from tests.apps import workers
from trioweb._serving import hypercorn_config
from trioweb._supervisor import _Supervisor, supervise


def _config() -> HypercornConfig:
    return hypercorn_config("127.0.0.1", 0, graceful_timeout=0, shutdown_timeout=0)


def _supervise(
    mode: str, tmp_path: Path, *, count: int = 1, reload: bool = False, watched: str = ""
) -> int:
    """Run the supervisor here (the main thread) over ``count`` stand-in workers; a timer
    bounds it (10 s), as trio.fail_after bounds the async tests."""
    args = (mode, str(tmp_path), watched, count)

    def too_slow(signum: int, frame: object) -> None:
        raise TimeoutError("the supervisor did not end within 10 s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        return supervise(workers.worker, args, _config(), workers=count, reload=reload)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# These tests are synchronous (the supervisor blocks, and handles signals in the main thread);
# each ends by itself: the stand-in workers signal the supervisor or fail.


def test_workers_that_serve_are_announced_once_and_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once every worker serves, "Running on" is printed once; SIGTERM stops them all, each
    exits 0, and so does the supervisor."""
    assert _supervise("serve", tmp_path, count=2) == 0
    err = capsys.readouterr().err
    assert err == "Running on http://127.0.0.1:1 with 2 worker(s) (Ctrl+C to quit)\n"


def test_a_failing_worker_stops_the_others_and_status_is_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker that exits non-zero unasked (a failed before_serving, say) ends the command
    with status 1 (Hypercorn 0.18's supervisor returns 0 here), without "Running on"."""
    assert _supervise("fail", tmp_path, count=2) == 1
    err = capsys.readouterr().err
    assert "trioweb: a worker failed (exit status 3); stopping\n" in err
    assert "Running on" not in err


def test_a_worker_that_exits_0_unasked_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker that ends by itself with status 0 (Hypercorn's max_requests) is replaced."""
    assert _supervise("exit-once", tmp_path) == 0
    assert "Running on http://127.0.0.1:1 with 1 worker(s)" in capsys.readouterr().err


def test_a_worker_that_does_not_stop_is_killed_after_its_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker still running a second after the shutdown bound (here 0 + 0 + 1) is killed, and
    the status is 1."""
    assert _supervise("stubborn", tmp_path) == 1
    assert "did not stop within 2 s; killing it\n" in capsys.readouterr().err


def test_reload_restarts_the_workers_when_a_source_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With reload, a changed module file (of a module loaded in the supervisor) stops the
    workers and starts new ones."""
    module = tmp_path / "reload_watched_for_trioweb_tests.py"
    module.write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(module.stem)
    try:
        assert _supervise("reload", tmp_path, reload=True, watched=str(module)) == 0
    finally:
        del sys.modules[module.stem]
    err = capsys.readouterr().err
    assert "trioweb: a source file changed; restarting\n" in err
    assert err.count("Running on") == 1


def test_a_second_signal_sends_sigterm_again_and_keeps_the_first_deadline() -> None:
    """The first signal sets the shutdown's deadline; a second one does not move it."""
    supervisor = _Supervisor(workers.worker, (), None, 1, 5.0)  # type: ignore[arg-type]
    supervisor.on_signal(signal.SIGINT, None)
    deadline = supervisor.deadline
    assert deadline is not None
    supervisor.on_signal(signal.SIGINT, None)
    assert supervisor.deadline == deadline
