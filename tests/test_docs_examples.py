"""The docs' examples load, run and are shown in the docs; the reference misses no public name.

``docs/examples`` is laid out as a user's project: the apps the guides build (``notes.py``,
``routing.py``, ``ws_*.py``, ...), the pytest configuration the docs give (``pyproject.toml``) and
the tests the tutorial and the testing how-to show (``tests/``). Each app is loaded here the way a
reader imports it; what it does is tested in the module of the behaviour it shows
(``test_routing.py`` for routing.py, ...), through ``_docs.load_example``. The project's tests run
as a user runs them: each on its own, in a copy of the layout in a temporary folder (pytester, in
this process, so that they count for coverage), and all of them in a pytest subprocess.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from _docs import DOCS, EXAMPLES, load_example

import trioweb
import trioweb.broadcast
import trioweb.testing
from trioweb import TrioWeb
from trioweb._config import DEFAULTS
from trioweb.testing.pytest_plugin import LiveServer

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent

#: The apps of the guides: docs/examples/*.py.
APPS = sorted(path.stem for path in EXAMPLES.glob("*.py"))

#: The tests the docs show, as pytest node ids relative to docs/examples.
PROJECT_TESTS = [
    f"tests/{path.name}::{node.name}"
    for path in sorted((EXAMPLES / "tests").glob("test_*.py"))
    for node in ast.parse(path.read_text()).body
    if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name.startswith("test_")
]

#: Every file of docs/examples a reader copies: the apps, their tests and pytest configuration,
#: and the template.
SHOWN = sorted(
    str(path.relative_to(EXAMPLES))
    for pattern in ("**/*.py", "pyproject.toml", "templates/*.html")
    for path in EXAMPLES.glob(pattern)
    if "__pycache__" not in path.parts
)


@pytest.mark.parametrize("name", APPS)
def test_example_has_an_app_whose_behaviour_is_tested(name: str) -> None:
    """Every docs/examples/*.py has a TrioWeb ``app``, and some test module loads it."""
    assert isinstance(load_example(name).app, TrioWeb)
    loaders = [
        path.name
        for path in TESTS.glob("test_*.py")
        if f'load_example("{name}")' in path.read_text()
    ]
    assert loaders, f"no test module loads docs/examples/{name}.py with load_example"


@pytest.mark.parametrize("filename", SHOWN)
def test_example_is_included_in_the_docs(filename: str) -> None:
    """Every example file is shown somewhere in the docs with literalinclude."""
    sources = "\n".join(path.read_text() for path in DOCS.rglob("*.rst"))
    assert re.search(rf"literalinclude:: [./]*examples/{re.escape(filename)}\s", sources)


def _copy_project(pytester: pytest.Pytester) -> None:
    """Copy docs/examples, the documented project layout, into pytester's folder."""
    shutil.copytree(
        EXAMPLES,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
    )


@pytest.mark.parametrize("node_id", PROJECT_TESTS)
def test_documented_test_passes_in_the_documented_layout(
    pytester: pytest.Pytester, node_id: str
) -> None:
    """Each test the docs show passes on its own, run by pytest with the documented
    configuration in a copy of the documented layout."""
    _copy_project(pytester)
    pytester.runpytest(node_id).assert_outcomes(passed=1)


def test_documented_layout_runs_green_in_a_subprocess(pytester: pytest.Pytester) -> None:
    """``pytest`` in a fresh process, in a copy of docs/examples, passes every test: the
    pyproject.toml, conftest.py and tests are all a project needs."""
    _copy_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(PROJECT_TESTS))


def test_configuration_table_lists_every_key_with_its_default() -> None:
    """The reference's configuration table has a row for each key of Config, with its default."""
    reference = (DOCS / "reference.rst").read_text()
    rows = dict(re.findall(r"^   \* - ``(\w+)``\n     - ``(.+?)``$", reference, re.MULTILINE))
    assert set(rows) == set(DEFAULTS)
    for key, default in DEFAULTS.items():
        assert eval(rows[key]) == default, key


def test_reference_documents_the_public_api() -> None:
    """Every public name of trioweb, trioweb.testing and trioweb.broadcast, and the pytest
    plugin's LiveServer, has an entry in the reference."""
    reference = (DOCS / "reference.rst").read_text()
    pattern = r"^\.\. (?:autoclass|autofunction|autoexception|data):: (\w+)$"
    documented = set(re.findall(pattern, reference, re.MULTILINE))
    public = (
        set(trioweb.__all__)
        | set(trioweb.testing.__all__)
        | set(trioweb.broadcast.__all__)
        | {LiveServer.__name__}
    )
    assert documented == public


def _literalincludes() -> list[tuple[str, str, list[str]]]:
    """Every literalinclude of the docs: the page, the included path, its option lines."""
    found = []
    for page in sorted(DOCS.rglob("*.rst")):
        lines = page.read_text().splitlines()
        for index, line in enumerate(lines):
            directive = re.match(r"(\s*)\.\. literalinclude:: (\S+)$", line)
            if directive is None:
                continue
            indent = len(directive.group(1)) + 3
            options = []
            for option in lines[index + 1 :]:
                if not option.startswith(" " * indent + ":"):
                    break
                options.append(option.strip())
            found.append((page.name, directive.group(2), options))
    return found


def test_tests_and_configuration_are_shown_whole() -> None:
    """The docs show a test module, conftest.py or pyproject.toml of the examples as a whole
    file, imports included, never a piece of one: a reader can copy it and run it."""
    pieces = [
        (page, path, options)
        for page, path, options in _literalincludes()
        if re.search(r"examples/(tests/|pyproject\.toml)", path)
        and any(not option.startswith(":language:") for option in options)
    ]
    assert pieces == []
    assert len([path for _, path, _ in _literalincludes() if "examples/tests/" in path]) >= 10


#: Quart's public names (``quart.__all__``, Quart 0.20) and its configuration keys (Flask's and
#: Quart's defaults), each of which the "Coming from Quart" page accounts for.
QUART_NAMES = [
    "Quart",
    "Blueprint",
    "Config",
    "Request",
    "Response",
    "Websocket",
    "current_app",
    "g",
    "request",
    "session",
    "websocket",
    "has_app_context",
    "has_request_context",
    "has_websocket_context",
    "copy_current_app_context",
    "copy_current_request_context",
    "copy_current_websocket_context",
    "after_this_request",
    "abort",
    "flash",
    "get_flashed_messages",
    "jsonify",
    "make_response",
    "redirect",
    "url_for",
    "send_file",
    "send_from_directory",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
    "stream_with_context",
    "get_template_attribute",
    "make_push_promise",
    "escape",
    "Markup",
    "ResponseReturnValue",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "got_request_exception",
    "websocket_started",
    "websocket_finished",
    "websocket_tearing_down",
    "got_websocket_exception",
    "template_rendered",
    "before_render_template",
    "message_flashed",
    "appcontext_pushed",
    "appcontext_popped",
    "appcontext_tearing_down",
    "signals_available",
]
QUART_CONFIG = [
    "APPLICATION_ROOT",
    "BACKGROUND_TASK_SHUTDOWN_TIMEOUT",
    "BODY_TIMEOUT",
    "DEBUG",
    "ENV",
    "EXPLAIN_TEMPLATE_LOADING",
    "MAX_CONTENT_LENGTH",
    "MAX_COOKIE_SIZE",
    "MAX_FORM_MEMORY_SIZE",
    "MAX_FORM_PARTS",
    "PERMANENT_SESSION_LIFETIME",
    "PREFER_SECURE_URLS",
    "PREFERRED_URL_SCHEME",
    "PRESERVE_CONTEXT_ON_EXCEPTION",
    "PROPAGATE_EXCEPTIONS",
    "PROVIDE_AUTOMATIC_OPTIONS",
    "RESPONSE_TIMEOUT",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SEND_FILE_MAX_AGE_DEFAULT",
    "SERVER_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_PARTITIONED",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_SECURE",
    "SESSION_REFRESH_EACH_REQUEST",
    "TEMPLATES_AUTO_RELOAD",
    "TESTING",
    "TRAP_BAD_REQUEST_ERRORS",
    "TRAP_HTTP_EXCEPTIONS",
    "TRUSTED_HOSTS",
    "USE_X_SENDFILE",
]


@pytest.mark.parametrize("name", QUART_NAMES + QUART_CONFIG)
def test_coming_from_quart_accounts_for_every_quart_name(name: str) -> None:
    """Each public name and configuration key of Quart has a row on the Quart page."""
    page = (DOCS / "howto" / "from_quart.rst").read_text()
    pattern = "SESSION_COOKIE_" if name.startswith("SESSION_COOKIE_") else name
    assert f"``{pattern}" in page, f"docs/howto/from_quart.rst does not mention {name}"


def test_coming_from_quart_mentions_every_trioweb_name() -> None:
    """Every public name of trioweb is on the Quart page, as an equivalent or as trioweb's own."""
    page = (DOCS / "howto" / "from_quart.rst").read_text()
    assert [name for name in trioweb.__all__ if f"``{name}``" not in page] == []
