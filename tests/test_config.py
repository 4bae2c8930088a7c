"""`app.config`: defaults, `from_mapping`, `from_prefixed_env`, and the properties backed by it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from trioweb import Config, TrioWeb, request


async def test_defaults() -> None:
    """A new app's config holds trioweb's defaults."""
    config = TrioWeb(__name__).config
    assert isinstance(config, Config)
    assert config["DEBUG"] is False
    assert config["TESTING"] is False
    assert config["SECRET_KEY"] is None
    assert config["SERVER_NAME"] is None
    assert config["APPLICATION_ROOT"] == "/"
    assert config["PREFERRED_URL_SCHEME"] == "http"
    assert config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert config["MAX_FORM_MEMORY_SIZE"] == 500_000
    assert config["MAX_FORM_PARTS"] == 1_000
    assert config["DISCONNECT_LISTENER_DELAY"] == 0.1
    assert config["SEND_FILE_MAX_AGE_DEFAULT"] is None
    assert config["TEMPLATES_AUTO_RELOAD"] is None


async def test_apps_do_not_share_config() -> None:
    """Changing one app's config leaves another's (and the defaults) alone."""
    first, second = TrioWeb("first"), TrioWeb("second")
    first.config["DEBUG"] = True
    assert second.config["DEBUG"] is False
    assert TrioWeb("third").config["DEBUG"] is False


async def test_config_with_explicit_defaults() -> None:
    """`Config(defaults)` starts from the given mapping instead of trioweb's."""
    assert Config({"ONLY": 1}) == {"ONLY": 1}
    assert repr(Config({"A": 1})) == "<Config {'A': 1}>"


async def test_from_mapping_takes_upper_case_keys_only() -> None:
    """`from_mapping` loads a mapping and keyword arguments, ignoring keys not in upper case."""
    config = Config({})
    assert config.from_mapping({"SECRET_KEY": "s", "lower": 1, "Mixed": 2}, DEBUG=True, other=3)
    assert config == {"SECRET_KEY": "s", "DEBUG": True}
    assert config.from_mapping()
    assert config == {"SECRET_KEY": "s", "DEBUG": True}


async def test_from_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`from_prefixed_env` loads `TRIOWEB_*` variables, JSON-decoded when they parse (ints,
    booleans, null, lists) and kept as strings otherwise; other prefixes are ignored."""
    monkeypatch.setenv("TRIOWEB_MAX_CONTENT_LENGTH", "1024")
    monkeypatch.setenv("TRIOWEB_DEBUG", "true")
    monkeypatch.setenv("TRIOWEB_SERVER_NAME", "example.com")
    monkeypatch.setenv("TRIOWEB_SECRET_KEY", "null")
    monkeypatch.setenv("TRIOWEB_HOSTS", '["a", "b"]')
    monkeypatch.setenv("OTHER_DEBUG", "true")
    monkeypatch.setenv("TRIOWEBX_DEBUG", "false")
    config = Config()
    assert config.from_prefixed_env()
    assert config["MAX_CONTENT_LENGTH"] == 1024
    assert config["DEBUG"] is True
    assert config["SERVER_NAME"] == "example.com"
    assert config["SECRET_KEY"] is None
    assert config["HOSTS"] == ["a", "b"]
    assert "OTHER_DEBUG" not in config


async def test_from_prefixed_env_nests_on_double_underscore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`{prefix}_A__B` sets `config["A"]["B"]`, creating dicts as needed and keeping what is
    already there."""
    monkeypatch.setenv("MYAPP_DB__HOST", "db.local")
    monkeypatch.setenv("MYAPP_DB__PORT", "5432")
    monkeypatch.setenv("MYAPP_CACHE__REDIS__URL", "redis://r")
    config = Config({"DB": {"NAME": "app"}})
    config.from_prefixed_env("MYAPP")
    assert config == {
        "DB": {"NAME": "app", "HOST": "db.local", "PORT": 5432},
        "CACHE": {"REDIS": {"URL": "redis://r"}},
    }


async def test_from_prefixed_env_with_custom_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """`loads=` replaces the JSON decoding; a value it cannot parse stays a string."""
    monkeypatch.setenv("TW_RATIO", "0.5")
    monkeypatch.setenv("TW_NAME", "abc")
    config = Config({})
    config.from_prefixed_env("TW", loads=float)
    assert config == {"RATIO": 0.5, "NAME": "abc"}


async def test_debug_and_testing_properties() -> None:
    """`app.debug` and `app.testing` read and write the config keys."""
    app = TrioWeb(__name__)
    assert (app.debug, app.testing) == (False, False)
    app.debug = True
    app.testing = True
    assert (app.config["DEBUG"], app.config["TESTING"]) == (True, True)
    app.config["DEBUG"] = 0
    assert app.debug is False


async def test_config_is_read_per_request() -> None:
    """A config change made while serving applies to the next request."""
    app = TrioWeb(__name__)

    @app.route("/", methods=["POST"])
    async def index() -> str:
        return str(len(await request.get_data()))

    async with app.test_client() as client:
        assert (await client.post("/", data=b"x" * 10)).status_code == 200
        app.config["MAX_CONTENT_LENGTH"] = 5
        assert (await client.post("/", data=b"x" * 10)).status_code == 413


async def test_repr_of_app() -> None:
    """An app's repr names its import name."""
    assert repr(TrioWeb("myproject")) == "<TrioWeb 'myproject'>"


# Loading from objects and files -----------------------------------------------------------------


class _Settings:
    DEBUG = True
    SECRET_KEY = "from class"
    lower_case = "ignored"


async def test_from_object_takes_upper_case_attributes() -> None:
    """`from_object` loads the upper-case attributes of a class, an instance or a module, and
    nothing else."""
    config = Config({})
    config.from_object(_Settings)
    assert config == {"DEBUG": True, "SECRET_KEY": "from class"}
    config = Config({})
    config.from_object(_Settings())
    assert config == {"DEBUG": True, "SECRET_KEY": "from class"}


@pytest.mark.parametrize("name", ["test_config._Settings", "test_config:_Settings"])
async def test_from_object_with_an_import_string(name: str) -> None:
    """`from_object("module.Name")` (or `module:Name`) imports the object first."""
    config = Config({})
    config.from_object(name)
    assert config["SECRET_KEY"] == "from class"


async def test_from_object_with_a_bad_import_string_is_import_error() -> None:
    """A string that does not import raises ImportError naming it."""
    with pytest.raises(ImportError, match="no_such_settings_module"):
        Config({}).from_object("no_such_settings_module.Settings")


async def test_from_pyfile(tmp_path: Path) -> None:
    """`from_pyfile` runs a Python file and keeps its upper-case names (the file can compute
    them and import modules)."""
    path = tmp_path / "settings.py"
    path.write_text("import os\nSECRET_KEY = 'k' * 3\nPORT = 1 + 1\nhelper = 5\n")
    config = Config({})
    assert config.from_pyfile(path) is True
    assert config == {"SECRET_KEY": "kkk", "PORT": 2}


async def test_from_pyfile_missing(tmp_path: Path) -> None:
    """A missing file raises OSError naming it, or returns False with `silent=True`; errors in
    the file itself always propagate."""
    config = Config({})
    missing = tmp_path / "missing.py"
    with pytest.raises(OSError, match="Unable to load configuration file") as info:
        config.from_pyfile(missing)
    assert info.value.filename == str(missing)
    assert config.from_pyfile(missing, silent=True) is False
    assert config.from_pyfile(tmp_path, silent=True) is False  # a directory
    broken = tmp_path / "broken.py"
    broken.write_text("SECRET_KEY = undefined_name\n")
    with pytest.raises(NameError):
        config.from_pyfile(broken, silent=True)
    assert config == {}


async def test_from_pyfile_unreadable_is_an_error_even_when_silent(tmp_path: Path) -> None:
    """`silent` covers a file that is missing (a path through a file too), not another OSError
    (here a name too long)."""
    config = Config({})
    file = tmp_path / "file"
    file.write_text("")
    assert config.from_pyfile(file / "inside.py", silent=True) is False
    with pytest.raises(OSError, match="Unable to load configuration file"):
        config.from_pyfile(tmp_path / ("x" * 5000), silent=True)
    with pytest.raises(OSError, match="Unable to load configuration file"):
        config.from_file(tmp_path / ("x" * 5000), load=json.load, silent=True)


async def test_from_file_with_json_and_toml(tmp_path: Path) -> None:
    """`from_file` loads a mapping with the given `load` function (text mode by default, binary
    with `text=False` for tomllib) and keeps its upper-case keys."""
    json_file = tmp_path / "config.json"
    json_file.write_text('{"SECRET_KEY": "json", "lower": 1}')
    toml_file = tmp_path / "config.toml"
    toml_file.write_text('DEBUG = true\nSERVER_NAME = "example.com"\n')
    config = Config({})
    assert config.from_file(json_file, load=json.load) is True
    assert config.from_file(toml_file, load=tomllib.load, text=False) is True
    assert config == {"SECRET_KEY": "json", "DEBUG": True, "SERVER_NAME": "example.com"}


async def test_from_file_missing(tmp_path: Path) -> None:
    """A missing file raises OSError, or returns False with `silent=True`; a malformed file
    raises the loader's error."""
    config = Config({})
    with pytest.raises(FileNotFoundError, match="Unable to load configuration file"):
        config.from_file(tmp_path / "none.json", load=json.load)
    assert config.from_file(tmp_path / "none.json", load=json.load, silent=True) is False
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(json.JSONDecodeError):
        config.from_file(bad, load=json.load, silent=True)


@pytest.mark.parametrize("name", ["TRIOWEB_APP", "TRIOWEB_RUN_PORT", "TRIOWEB_RUN_HOST"])
async def test_from_prefixed_env_skips_the_commands_own_variables(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The `trioweb` command's variables (TRIOWEB_APP names the app to run; TRIOWEB_RUN_* are
    kept for its options) never land in config; other TRIOWEB_* variables still do."""
    monkeypatch.setenv(name, "module:app")
    monkeypatch.setenv("TRIOWEB_APPLICATION_ROOT", "/app")
    config = Config({})
    config.from_prefixed_env()
    assert config == {"APPLICATION_ROOT": "/app"}


async def test_another_prefix_keeps_its_app_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the command's own names are skipped: MYAPP_APP is an ordinary key under prefix
    MYAPP."""
    monkeypatch.setenv("MYAPP_APP", "x")
    config = Config({})
    config.from_prefixed_env("MYAPP")
    assert config == {"APP": "x"}


async def test_session_defaults_and_secret_key_property() -> None:
    """The session keys have Flask's defaults (the lifetime in seconds: 31 days), and
    `app.secret_key` reads and writes SECRET_KEY."""
    app = TrioWeb(__name__)
    assert app.config["SESSION_COOKIE_NAME"] == "session"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["PERMANENT_SESSION_LIFETIME"] == 31 * 24 * 3600
    assert app.secret_key is None
    app.secret_key = "s"
    assert app.config["SECRET_KEY"] == "s"
