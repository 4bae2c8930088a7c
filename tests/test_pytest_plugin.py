"""The pytest plugin trioweb ships: ``client`` and ``live_server`` built on a project's ``app``,
and its message when pytest-trio would not run a test (checked on projects run by pytester)."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected

from trioweb import TrioWeb, websocket
from trioweb.testing import TestClient
from trioweb.testing.pytest_plugin import LiveServer

pytest_plugins = ["pytester"]

served: list[str] = []


@pytest.fixture
def app() -> TrioWeb:
    app = TrioWeb(__name__)

    @app.before_serving
    async def started() -> None:
        served.append("started")

    @app.after_serving
    async def stopped() -> None:
        served.append("stopped")

    @app.route("/")
    async def index() -> str:
        return "hello"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept(subprotocol="v1" if websocket.requested_subprotocols else None)
        await websocket.send(await websocket.receive())

    @app.websocket("/private")
    async def private() -> tuple[str, int]:
        return "keep out", 403

    return app


async def test_client_fixture_runs_the_lifespan(client: TestClient) -> None:
    """The client fixture is a test client whose app has started serving."""
    assert served[-1] == "started"
    assert await (await client.get("/")).get_data() == b"hello"
    async with client.websocket("/ws") as conn:
        await conn.send("echo")
        assert await conn.receive() == "echo"


async def test_live_server_serves_http_and_websockets(live_server: LiveServer) -> None:
    """live_server is real Hypercorn on 127.0.0.1 with a working trio-websocket helper."""
    assert live_server.url.startswith("http://127.0.0.1:")
    assert live_server.ws_url == "ws" + live_server.url.removeprefix("http")
    async with httpx.AsyncClient() as http:
        assert (await http.get(live_server.url + "/")).text == "hello"
    async with live_server.websocket("/ws", subprotocols=["v1"]) as conn:
        assert conn.subprotocol == "v1"
        await conn.send_message(b"\x00bytes")
        assert await conn.get_message() == b"\x00bytes"
    with pytest.raises(ConnectionRejected) as rejected:
        async with live_server.websocket("/private"):
            pass  # pragma: no cover
    assert (rejected.value.status_code, rejected.value.body) == (403, b"keep out")


async def test_live_server_shut_down_cleanly_after_the_previous_test() -> None:
    """after_serving ran when the previous test's live server stopped."""
    assert served[-2:] == ["started", "stopped"]
    await trio.lowlevel.checkpoint()


# The plugin tells the user when pytest-trio will not run a test ---------------------------------

CONFTEST = """
import pytest
from trioweb import TrioWeb

@pytest.fixture
def app():
    app = TrioWeb("project")

    @app.get("/")
    async def index():
        return "hello"

    return app
"""

TESTS = """
import pytest

async def test_uses_client(client):
    assert await (await client.get("/")).get_data() == b"hello"

async def test_uses_live_server(live_server):
    assert live_server.url.startswith("http://127.0.0.1:")

async def test_async_without_fixtures():
    pass

@pytest.mark.trio
async def test_marked(client):
    assert (await client.get("/")).status_code == 200

def test_sync_without_fixtures():
    pass
"""


def _run(pytester: pytest.Pytester, ini: str, *args: str) -> pytest.RunResult:
    pytester.makeini(ini)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_project=TESTS)
    return pytester.runpytest(*args)


def test_trio_mode_off_fails_async_tests_with_the_lines_to_add(pytester: pytest.Pytester) -> None:
    """Without trio mode, async tests that pytest-trio would not run fail at setup with a message
    that shows the configuration lines; a trio-marked test and a sync test still pass."""
    result = _run(pytester, "[pytest]\n")
    result.assert_outcomes(passed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_uses_client uses trioweb's client fixture, but pytest-trio's trio mode is off*",
            "    [tool.pytest.ini_options]",
            "    trio_mode = true",
            "or mark the test with @pytest.mark.trio.",
            "*test_uses_live_server uses trioweb's live_server fixture, but*",
            "*test_async_without_fixtures is an async def test, but pytest-trio's trio mode*",
        ]
    )
    result.stdout.no_fnmatch_line("*not natively supported*")


def test_trio_mode_on_runs_the_projects_tests(pytester: pytest.Pytester) -> None:
    """With trio_mode = true, the same project passes."""
    _run(pytester, "[pytest]\ntrio_mode = true\n").assert_outcomes(passed=5)


@pytest.mark.parametrize(
    ("ini", "hint"), [("trio_mode = true", False), ("trio_mode = false", True)]
)
def test_a_sync_test_using_the_client_is_told_to_be_async(
    pytester: pytest.Pytester, ini: str, hint: bool
) -> None:
    """A sync test that asks for an async fixture is told to become async def (and to turn
    trio mode on, when it is off)."""
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_sync(client):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_sync uses trioweb's client fixture, which is async: make the test an async def*"]
    )
    assert ("    trio_mode = true" in result.stdout.lines) is hint


def test_without_pytest_trio_the_message_says_to_install_it(pytester: pytest.Pytester) -> None:
    """With pytest-trio missing, the message says to install it and to turn trio mode on."""
    result = _run(pytester, "[pytest]\n", "-p", "no:trio", "-k", "client")
    result.assert_outcomes(errors=1, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "*test_uses_client needs pytest-trio to run, which is not installed: "
            "pip install pytest-trio*",
            "    trio_mode = true",
        ]
    )


def test_other_async_plugins_and_other_items_are_left_alone(pytester: pytest.Pytester) -> None:
    """Async tests marked for asyncio or anyio, every async test under pytest-asyncio's auto
    mode, and items that are not test functions (doctests) get no message from trioweb."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makeconftest(
        "def pytest_addoption(parser):\n    parser.addini('asyncio_mode', 'pytest-asyncio')\n"
    )
    pytester.makepyfile(
        test_marked="""
import pytest

@pytest.mark.anyio
async def test_anyio():
    pass
""",
        test_auto='"""\n>>> 1 + 1\n2\n"""\n\nasync def test_auto():\n    pass\n',
    )
    result = pytester.runpytest("--doctest-modules", "-p", "no:cacheprovider")
    result.stdout.no_fnmatch_line("*trio_mode*")
    # pytest's own complaint for the unclaimed test; the doctest and anyio's runs pass
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])
    assert result.parseoutcomes()["failed"] == 1
