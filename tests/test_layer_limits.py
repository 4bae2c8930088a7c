"""The connection layer's limits (trioweb._layer._limits): read from the app's config."""

from __future__ import annotations

from typing import Any

from trioweb import TrioWeb
from trioweb._config import DEFAULTS as CONFIG_DEFAULTS
from trioweb._layer._limits import DEFAULTS, Limits


def test_the_defaults_are_the_apps_config_defaults() -> None:
    """One source: the layer's defaults are in every app's config."""
    assert {key: CONFIG_DEFAULTS[key] for key in DEFAULTS} == DEFAULTS
    assert Limits.of(TrioWeb(__name__)) == Limits()
    assert Limits().max_message_size == 1024 * 1024


def test_an_apps_config_sets_them_through_wrappers() -> None:
    """An app's ``WEBSOCKET_*`` keys, found through middleware that keeps the app as ``.app``;
    other keys are left alone."""
    app = TrioWeb(__name__)
    app.config.update(
        WEBSOCKET_MAX_MESSAGE_SIZE="4096",
        WEBSOCKET_SEND_TIMEOUT=None,
        WEBSOCKET_PING_INTERVAL=5,
        WEBSOCKET_PING_TIMEOUT=2,
        WEBSOCKET_COMPRESSION=0,
    )

    class Middleware:
        def __init__(self, app: Any) -> None:
            self.app = app

    assert Limits.of(Middleware(Middleware(app))) == Limits(
        max_message_size=4096,
        send_timeout=None,
        ping_interval=5,
        ping_timeout=2,
        compression=False,
    )


def test_an_app_without_config_gets_the_defaults() -> None:
    """A plain ASGI callable, or a chain of wrappers without a config: the defaults."""

    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    class Loop:
        def __init__(self) -> None:
            self.app = self

    assert Limits.of(app) == Limits()
    assert Limits.of(Loop()) == Limits()
