"""The connection layer's limits: read from the app's config, through wrappers, or defaults."""

from __future__ import annotations

from typing import Any

import attrs

from trioweb import TrioWeb
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


async def test_the_protocol_module_is_hypercorns_until_the_fixes_land() -> None:
    """The placeholder protocol module re-exports Hypercorn's ProtocolWrapper."""
    from hypercorn.protocol import ProtocolWrapper

    from trioweb._layer import _protocol

    assert _protocol.ProtocolWrapper is ProtocolWrapper
