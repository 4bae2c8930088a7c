"""The benchmark harness (bench/) runs end to end: a smoke test, with no timing assertions.

It measures one tiny echo scenario on the raw app and on trioweb with the pure-Trio client, so it
needs neither picows nor uvloop nor the peer frameworks; the real benchmark is ``tox -e bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from bench import conformance, run

ROOT = Path(__file__).resolve().parent.parent


def test_harness_measures_and_writes_its_reports(tmp_path: Path) -> None:
    """One echo run per target yields figures, ratios to raw, and every report file."""
    out, docs = tmp_path / "results", tmp_path / "docs"
    command = [
        *(sys.executable, "-m", "bench.run", "--quick", "--client", "trio-websocket"),
        *("--targets", "raw,trioweb", "--scenarios", "echo-1", "--repeats", "1"),
        *("--duration", "0.2", "--out", str(out), "--docs", str(docs)),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr

    data = json.loads((out / "results.json").read_text())
    assert set(data) == {"duration_s", "environment", "runs", "settings", "summary"}
    for target in ("raw", "trioweb"):
        (run,) = data["runs"]["echo-1"][target]
        assert "error" not in run, run
        assert run["messages"] > 0
        assert {"msgs_per_s", "latency_p50_us", "latency_p99_us", "client_cpu_pct"} <= set(run)
        assert run["errors"] == 0
        if Path(f"/proc/{os.getpid()}/stat").exists():
            assert {"server_cpu_pct", "server_us_per_op"} <= set(run)
        summary = data["summary"]["echo-1"][target]
        assert summary["ok"] == 1
        assert summary["ratio"]["msgs_per_s"] is not None
    assert data["summary"]["echo-1"]["raw"]["ratio"]["msgs_per_s"] == 1.0
    assert "| echo-1 | raw |" in (out / "results.md").read_text()
    table = (docs / "performance_results.rst").read_text()
    assert ".. list-table::" in table
    assert "trioweb" in table


def test_the_hold_scenario_reports_memory_echo_and_handshakes(tmp_path: Path) -> None:
    """``hold``: idle connections held while echo clients and new handshakes run; the result
    has the memory per idle connection, the echo's figures and the handshakes' rate."""
    out = tmp_path / "results"
    command = [
        *(sys.executable, "-m", "bench.run", "--quick", "--client", "trio-websocket"),
        *("--targets", "trioweb", "--scenarios", "hold-200", "--repeats", "1"),
        *("--duration", "0.5", "--out", str(out), "--no-docs"),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert finished.returncode == 0, finished.stderr

    data = json.loads((out / "results.json").read_text())
    (hold,) = data["runs"]["hold-200"]["trioweb"]
    assert "error" not in hold, hold
    assert hold["idle_connections"] == 200
    assert hold["dropped_idle"] == hold["failed_connections"] == hold["errors"] == 0
    assert {"msgs_per_s", "latency_p99_us", "handshakes_per_s", "handshake_p50_us"} <= set(hold)
    if Path(f"/proc/{os.getpid()}/status").exists():
        assert hold["server_rss_idle_kib"] > hold["server_rss_before_idle_kib"]
        assert hold["kib_per_conn"] > 0
    row = (out / "results.md").read_text()
    assert "KiB/idle conn" in row
    assert "handshakes/s" in row


def test_the_layer_target_waits_for_the_layer(capsys: pytest.CaptureFixture[str]) -> None:
    """trioweb-layer is served by ``trioweb run``; without the layer it is left out, saying so."""
    args = run.parse_args(["--targets", "raw,trioweb-layer,quart-asyncio", "--no-docs"])
    argv = run.server_argv("trioweb-layer", 9999, "python")
    assert argv[:4] == ["python", "-m", "trioweb", "run"]
    assert run.server_argv("quart-asyncio", 9999, "python")[3:5] == ["-k", "asyncio"]
    if run.layer_available():
        assert args.targets == ["raw", "trioweb-layer", "quart-asyncio"]
    else:
        assert args.targets == ["raw", "quart-asyncio"]
        assert "skipping trioweb-layer" in capsys.readouterr().err


def test_conformance_serves_the_echo_on_either_server() -> None:
    """bench.conformance serves trioweb's echo on stock Hypercorn or with ``trioweb run``."""
    stock = conformance.server_argv("stock", 9240, "python")
    assert stock[:5] == ["python", "-m", "hypercorn", "-k", "trio"]
    assert stock[-1] == conformance.APP
    assert conformance.server_argv("layer", 9240, "python")[:4] == [
        "python",
        "-m",
        "trioweb",
        "run",
    ]
    if not conformance.layer_available():
        assert conformance.main(["--server", "layer"]) == 2


def test_the_redis_fanout_serves_trioweb_from_two_workers() -> None:
    """``fanout-redis-N`` runs only the targets that serve the trioweb app (its hub is the one
    with a Redis backend); the memory fan-out runs every target."""
    by_name = {s.name: s for s in run.scenarios(quick=False)}
    redis, memory = by_name["fanout-redis-1000"], by_name["fanout-1000"]
    assert redis.redis
    assert not memory.redis
    assert [t for t in run.TARGETS if redis.serves(t)] == ["trioweb", "trioweb-layer"]
    assert all(memory.serves(t) for t in run.TARGETS)
    assert redis.latency == ("delivery_p50_us", "delivery_p99_us")


def test_a_partial_run_merges_into_the_results() -> None:
    """``bench.report --merge``: the later run's rows replace those of its targets; the other
    targets' rows of a merged scenario stay, marked as from the earlier run."""
    from bench import report

    def entry(value: float) -> dict[str, object]:
        return {"ok": 1, "failed": 0, "median": {"msgs_per_s": value}, "ratio": {}, "errors": []}

    old = {
        "settings": {"targets": ["raw", "trioweb", "starlette"], "scenarios": {"echo-1": "a"}},
        "summary": {"echo-1": {t: entry(1.0) for t in ("raw", "trioweb", "starlette")}},
        "runs": {"echo-1": {t: [{"msgs_per_s": 1.0}] for t in ("raw", "trioweb", "starlette")}},
    }
    new = {
        "settings": {"targets": ["raw", "trioweb"], "scenarios": {"echo-1": "b"}, "repeats": 1},
        "summary": {"echo-1": {t: entry(2.0) for t in ("raw", "trioweb")}},
        "runs": {"echo-1": {t: [{"msgs_per_s": 2.0}] for t in ("raw", "trioweb")}},
        "environment": {},
        "duration_s": 1.0,
    }
    merged = report.merge(old, new)
    summary = merged["summary"]["echo-1"]
    assert [summary[t]["median"]["msgs_per_s"] for t in summary] == [2.0, 2.0, 1.0]
    assert [t for t in summary if summary[t].get("earlier")] == ["starlette"]
    assert merged["settings"]["scenarios"]["echo-1"] == "b"
    assert merged["merged"][0]["scenarios"] == ["echo-1"]
    (echo,) = [s for s in run.scenarios(quick=False) if s.name == "echo-1"]
    targets = [row[1] for row in report.rows([echo], merged["summary"])]
    assert targets == ["raw", "trioweb", "starlette (earlier run)"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install -y wrk)")
def test_an_http_scenario_measures_requests_with_wrk(tmp_path: Path) -> None:
    """``http-form``: wrk posts the form to the raw app; the result has the request rate,
    wrk's latency percentiles, and the server's and the client's CPU."""
    out = tmp_path / "results"
    command = [
        *(sys.executable, "-m", "bench.run", "--quick", "--targets", "raw"),
        *("--scenarios", "http-form", "--repeats", "1", "--duration", "1"),
        *("--out", str(out), "--no-docs"),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr

    data = json.loads((out / "results.json").read_text())
    (form,) = data["runs"]["http-form"]["raw"]
    assert "error" not in form, form
    assert form["requests"] > 0
    assert form["errors"] == 0
    assert form["latency_p99_us"] >= form["latency_p50_us"] > 0
    assert {"requests_per_s", "client_cpu_s", "client_cpu_pct"} <= set(form)
    if Path(f"/proc/{os.getpid()}/stat").exists():
        assert form["server_us_per_op"] > 0
    assert "req/s" in (out / "results.md").read_text()


def test_without_wrk_the_http_scenarios_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``wrk`` and no way to install it (not root): an error with the command to run."""
    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"apt-get install -y wrk"):
        run.ensure_wrk()


def test_perrequest_measures_raw_and_trioweb_on_both_servers(tmp_path: Path) -> None:
    """``bench.perrequest``: each target through stock Hypercorn's and the layer's connection
    code, in process; every response was checked, and the report has the own cost over raw."""
    out = tmp_path / "perrequest.json"
    command = [
        *(sys.executable, "-m", "bench.perrequest", "--targets", "raw,trioweb"),
        *("-n", "300", "--rounds", "2", "--warmup", "20", "--repeats", "1", "--out", str(out)),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr

    data = json.loads(out.read_text())
    assert data["errors"] == []
    scenarios = ["plain", "json", "form", "stream"]
    assert data["settings"]["gc_threshold"] == [20_000, 10, 10]
    assert set(data["client_us"]) == set(scenarios)
    for target in ("trioweb", "raw"):
        (figures,) = data["runs"][target]
        for server in ("stock", "layer"):
            for scenario in scenarios:
                result = figures[server][scenario]
                assert result["checked"] == 20 + 300  # the warm-up's too
                assert len(result["rounds"]) == 2
                assert min(result["rounds"]) > 0
    plain = data["summary"]["plain"]["layer"]
    assert set(plain["raw"]) == {"us"}
    assert plain["raw"]["us"]["median"] == round(min(figures["layer"]["plain"]["rounds"]), 2)
    trioweb, raw = data["runs"]["trioweb"][0]["layer"]["plain"], figures["layer"]["plain"]
    ratios = [t / r for t, r in zip(trioweb["rounds"], raw["rounds"], strict=True)]
    own = (sum(ratios) / 2 - 1) * min(raw["rounds"])  # the median of two ratios
    assert plain["trioweb"]["own_us"]["median"] == pytest.approx(own, abs=0.01)
    table = out.with_suffix(".md").read_text()
    assert "| plain | layer | trioweb |" in table
    assert "The client alone (null server)" in table


async def test_perrequest_catches_a_wrong_response() -> None:
    """A response with the wrong body or status fails the run instead of being counted."""
    from bench import perrequest

    async with perrequest.serving("null", None, "plain") as served:
        client = served.connect()
        status, body = await client.exchange(perrequest.request_bytes("json"))
        client.close()
    assert (status, body) == (200, b"ok")
    with pytest.raises(perrequest.BadResponse, match="unexpected body"):
        perrequest.Checker("json")(status, body)
    with pytest.raises(perrequest.BadResponse, match="status 500"):
        perrequest.Checker("plain")(500, b"ok")
    check = perrequest.Checker("json")
    check(200, b'{"hello":"alice"}')  # spacing is the framework's business
    with pytest.raises(perrequest.BadResponse):
        check(200, b'{"hello": "alice"}')  # but every response is the same
    assert check.checked == 1


async def test_perrequest_serves_through_the_layer_and_puts_its_read_back() -> None:
    """In process through the layer: the chunked stream arrives whole, a connection the server
    closes (``Connection: close``) is replaced as wrk does, and the layer's read function is
    restored afterwards."""
    from bench import perrequest
    from trioweb._layer import _connection

    read = _connection._receive
    figures = await perrequest.measure("raw", "layer", ["stream"], requests=30, rounds=1, warmup=0)
    assert figures["stream"]["checked"] == 30
    assert figures["stream"]["connections"] == 1
    async with perrequest.serving("layer", perrequest.APPS["raw"], "plain") as served:
        client = served.connect()
        closing = b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert await client.exchange(closing) == (200, b"ok")
        assert await client.exchange(perrequest.request_bytes("plain")) == (200, b"ok")
        assert client.connections == 2
        client.close()
    assert _connection._receive is read


async def test_perrequest_client_notices_a_server_that_hangs_up() -> None:
    """A server that closes the connection without answering fails the exchange."""
    from bench import perrequest

    async def hang_up(stream: perrequest.ServerStream) -> None:
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        client = perrequest.Server(nursery, hang_up).connect()
        with pytest.raises(ConnectionError, match="closed the connection"):
            await client.exchange(perrequest.request_bytes("plain"))


def test_breakdown_times_each_step_of_the_http_path() -> None:
    """``bench.breakdown``: a row per step of trioweb's HTTP path, the whole calls, and the sum
    of the steps against trioweb's whole call."""
    command = [sys.executable, "-m", "bench.breakdown", "-n", "50", "--rounds", "1", "--no-pin"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in finished.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| step")
    }
    from bench import breakdown

    for name in [*breakdown.STEPS, "trioweb: app(scope, receive, send)", "sum of the steps"]:
        name = "… " + name.strip() if name.startswith(" ") else name  # the table's "part of" rows
        float(rows[name])  # a number, not "n/a": raises ValueError otherwise
    assert "raw app: app(scope, receive, send)" in rows


def test_perrequest_goes_on_without_a_worker_that_fails() -> None:
    """A worker that dies is reported with its stderr and leaves the repeat; the others go on."""
    from bench import perrequest

    argv = ["--scenarios", "plain", "-n", "20", "--rounds", "2", "--warmup", "0", "--no-pin"]
    args = perrequest.parse_args(argv)
    figures, errors = perrequest.run_repeat(["raw", "no-such-target"], ["layer"], args)
    (error,) = errors
    assert error["target"] == "no-such-target"
    assert "it exited" in error["error"]
    assert "KeyError" in error["error"]  # the worker's stderr
    assert figures["no-such-target"] == {}
    assert figures["raw"]["layer"]["plain"]["checked"] == 20


@pytest.mark.deadline(30)  # virtual seconds (autojump_clock)
@pytest.mark.parametrize("server", ["stock", "layer"])
async def test_perrequest_connections_wait_for_their_turn(
    server: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A connection idle while the other workers take their turns (longer than Hypercorn's
    default keep-alive timeout of 5 s) is still open for the next round."""
    from bench import perrequest

    async with perrequest.session("raw", server, "plain", warmup=1) as measured:
        await trio.sleep(10)
        await measured.run(1)
        assert measured.totals() == {"checked": 2, "connections": 1}
