"""The examples the docs include (docs/examples/*.py) do what the docs say they do.

Each example is loaded from its file under its own name (``notes``, ``routing``, ...), the way a
reader would import it, and exercised through ``app.test_client()``; the cancellation example is
driven by hand (the ``asgi_peer`` fixture) because it needs a client that leaves. The websocket
examples (``ws_*``) go through the test client's websockets, and some through real Hypercorn
(the pytest plugin's ``live_server`` with trio-websocket). Behaviour that the websocket guide
states in prose only is checked here too, on apps built inline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from _docs import DOCS, EXAMPLES, load_example

import trioweb
import trioweb.testing
from trioweb import TrioWeb
from trioweb._config import DEFAULTS
from trioweb.testing.pytest_plugin import LiveServer

notes = load_example("notes")
testing_example = load_example("testing_example")
routing = load_example("routing")
bodies = load_example("bodies")
responses = load_example("responses")
hooks = load_example("hooks")
errors = load_example("errors")
blueprints = load_example("blueprints")
pages = load_example("pages")
lifespan = load_example("lifespan")
serving = load_example("serving")
cancellation = load_example("cancellation")
ws_handshake = load_example("ws_handshake")
ws_auth = load_example("ws_auth")
ws_messages = load_example("ws_messages")
ws_ticker = load_example("ws_ticker")
ws_cleanup = load_example("ws_cleanup")
ws_closing = load_example("ws_closing")
ws_heartbeat = load_example("ws_heartbeat")
ws_routes = load_example("ws_routes")
ws_testing_example = load_example("ws_testing_example")  # imports the ws_* apps it tests

EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))

#: The tutorial's test client fixture, used by the wrappers of testing_example's tests below.
client = testing_example.client


# The docs themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
async def test_example_is_loaded_and_has_an_app(name: str) -> None:
    """Every docs/examples/*.py is loaded by this module and has a TrioWeb ``app``."""
    assert name in globals(), f"tests/test_docs_examples.py does not exercise {name}.py"
    app = load_example(name).app
    if not isinstance(app, TrioWeb):  # a test module's ``app`` fixture, for the pytest plugin
        app = app.__wrapped__()
    assert isinstance(app, TrioWeb)


@pytest.mark.parametrize("name", [*EXAMPLE_NAMES, "templates/hello.html"])
async def test_example_is_included_in_the_docs(name: str) -> None:
    """Every example file is shown somewhere in the docs with literalinclude."""
    filename = name if "." in name else f"{name}.py"
    sources = "\n".join(path.read_text() for path in DOCS.rglob("*.rst"))
    assert re.search(rf"literalinclude:: [./]*examples/{re.escape(filename)}\b", sources)


async def test_configuration_table_lists_every_key_with_its_default() -> None:
    """The reference's configuration table has a row for each key of Config, with its default."""
    reference = (DOCS / "reference.rst").read_text()
    rows = dict(re.findall(r"^   \* - ``(\w+)``\n     - ``(.+?)``$", reference, re.MULTILINE))
    assert set(rows) == set(DEFAULTS)
    for key, default in DEFAULTS.items():
        assert eval(rows[key]) == default, key


async def test_reference_documents_the_public_api() -> None:
    """Every public name of trioweb and trioweb.testing, and the pytest plugin's LiveServer, has
    an entry in the reference."""
    reference = (DOCS / "reference.rst").read_text()
    pattern = r"^\.\. (?:autoclass|autofunction|autoexception|data):: (\w+)$"
    documented = set(re.findall(pattern, reference, re.MULTILINE))
    public = set(trioweb.__all__) | set(trioweb.testing.__all__) | {LiveServer.__name__}
    assert documented == public


# Tutorial and testing how-to (the tests of testing_example.py) -----------------------------------


@pytest.mark.parametrize(
    "test",
    [
        testing_example.test_index_says_hello,
        testing_example.test_added_note_can_be_read_back,
        testing_example.test_note_without_text_is_rejected,
        testing_example.test_unknown_note_is_not_found,
        testing_example.test_requests_run_concurrently,
    ],
    ids=lambda test: test.__name__,
)
async def test_testing_example_with_client(test: Callable[..., Any], client: Any) -> None:
    """The testing how-to's tests that use the client fixture pass."""
    with trio.fail_after(5):
        await test(client)


async def test_testing_example_background_task() -> None:
    """The testing how-to's background task test passes."""
    with trio.fail_after(5):
        await testing_example.test_background_task_runs()


async def test_testing_example_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """The testing how-to's autojump_clock test passes."""
    with trio.fail_after(5):
        await testing_example.test_slow_view_on_a_virtual_clock(autojump_clock)


async def test_testing_example_failing_startup() -> None:
    """The testing how-to's failing-startup test passes."""
    with trio.fail_after(5):
        await testing_example.test_failing_startup_is_reported()


# How-to: websockets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "test",
    [
        ws_testing_example.test_inbox_greets_the_user,
        ws_testing_example.test_inbox_takes_a_token_in_the_query_string,
        ws_testing_example.test_inbox_without_a_token_is_refused,
    ],
    ids=lambda test: test.__name__,
)
async def test_ws_testing_example_with_client(test: Callable[..., Any]) -> None:
    """The websocket testing how-to's tests that use the plugin's client fixture pass."""
    async with ws_auth.app.test_client() as plugin_client:
        await test(plugin_client)


@pytest.mark.parametrize(
    "test",
    [
        ws_testing_example.test_text_is_refused_with_close_1003,
        ws_testing_example.test_leaving_runs_the_handlers_cleanup,
        ws_testing_example.test_handler_errors_fail_the_test,
    ],
    ids=lambda test: test.__name__,
)
async def test_ws_testing_example_own_client(test: Callable[..., Any]) -> None:
    """The websocket testing how-to's tests that open their own client pass."""
    await test()


async def test_ws_testing_example_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    """The websocket testing how-to's ticker test passes."""
    await ws_testing_example.test_ticker_on_a_virtual_clock(autojump_clock)


@pytest.mark.parametrize("app", [ws_auth.app], ids=["ws_auth"])
async def test_ws_testing_example_live_server(live_server: LiveServer) -> None:
    """The websocket testing how-to's live_server test passes against real Hypercorn."""
    assert live_server.ws_url == "ws" + live_server.url.removeprefix("http")
    await ws_testing_example.test_inbox_over_a_real_connection(live_server)
