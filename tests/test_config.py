"""`app.config`: defaults, `from_mapping`, `from_prefixed_env`, and the properties backed by it."""

from __future__ import annotations

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
