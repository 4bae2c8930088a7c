"""The connection layer's limits: read from the app's config, through wrappers, or defaults."""

from __future__ import annotations

from typing import Any

import attrs

from trioweb import TrioWeb
from trioweb._config import DEFAULTS as CONFIG_DEFAULTS
from trioweb._layer._limits import DEFAULTS, Limits


async def test_limits_come_from_the_apps_config() -> None:
    """A trioweb app's WEBSOCKET_* keys set the limits; the others keep their defaults."""
    app = TrioWeb(__name__)
    app.config.update(WEBSOCKET_MAX_MESSAGE_SIZE=10, WEBSOCKET_COMPRESSION=False)
    assert Limits.of(app) == attrs.evolve(Limits(), max_message_size=10, compression=False)


async def test_limits_are_found_through_wrappers() -> None:
    """Middleware that keeps the wrapped app as ``.app`` (Hypercorn's ProxyFix) is looked
    through."""
    app = TrioWeb(__name__)
    app.config["WEBSOCKET_SEND_TIMEOUT"] = 1.5

    class Wrapper:
        def __init__(self, app: Any) -> None:
            self.app = app

    assert Limits.of(Wrapper(Wrapper(app))).send_timeout == 1.5


async def test_an_app_without_config_gets_the_defaults() -> None:
    """A plain ASGI callable gets the defaults."""

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        pass  # pragma: no cover

    assert Limits.of(raw) == Limits()
    assert Limits().max_message_size == DEFAULTS["WEBSOCKET_MAX_MESSAGE_SIZE"]


async def test_a_loop_of_wrappers_gets_the_defaults() -> None:
    """Wrappers are looked through a bounded number of times (a wrapper that is its own
    ``.app`` does not hang the lookup)."""

    class Loop:
        def __init__(self) -> None:
            self.app = self

    assert Limits.of(Loop()) == Limits()


def test_the_defaults_are_every_apps_config_defaults() -> None:
    """One source: trioweb's config defaults include the layer's."""
    assert {key: CONFIG_DEFAULTS[key] for key in DEFAULTS} == DEFAULTS
    assert Limits.of(TrioWeb(__name__)) == Limits()


async def test_hypercorns_message_size_overrides_the_apps_when_set() -> None:
    """Hypercorn's websocket_max_message_size (the CLI flag, a config file) wins over the app's
    WEBSOCKET_MAX_MESSAGE_SIZE when it is set; left at Hypercorn's default it says nothing."""
    from hypercorn.config import Config as HypercornConfig

    app = TrioWeb(__name__)
    app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] = 100
    assert Limits.of(app, HypercornConfig()).max_message_size == 100
    config = HypercornConfig()
    config.websocket_max_message_size = 2048
    assert Limits.of(app, config).max_message_size == 2048
