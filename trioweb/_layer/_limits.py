"""What the connection layer enforces, per app: limits and timeouts read from ``app.config``.

The layer serves any ASGI app; for a trioweb app (anything with a ``config`` mapping, looked up
through wrappers that keep the wrapped app as ``.app``) it reads the ``WEBSOCKET_*`` keys, and
otherwise uses the defaults below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from hypercorn.config import Config as HypercornConfig

from .._config import DEFAULTS as CONFIG_DEFAULTS

#: The keys the layer reads, with their defaults: trioweb's config defaults (trioweb/_config.py
#: is their one source; the layer sits above it).
DEFAULTS: dict[str, Any] = {
    key: CONFIG_DEFAULTS[key]
    for key in (
        "WEBSOCKET_MAX_MESSAGE_SIZE",
        "WEBSOCKET_SEND_TIMEOUT",
        "WEBSOCKET_PING_INTERVAL",
        "WEBSOCKET_PING_TIMEOUT",
        "WEBSOCKET_COMPRESSION",
    )
}


#: Hypercorn's default ``websocket_max_message_size`` (16 MiB): left as is, it says nothing.
_HYPERCORN_DEFAULT_SIZE = HypercornConfig.websocket_max_message_size


@attrs.frozen
class Limits:
    """The layer's settings for one app."""

    max_message_size: int = DEFAULTS["WEBSOCKET_MAX_MESSAGE_SIZE"]
    send_timeout: float | None = DEFAULTS["WEBSOCKET_SEND_TIMEOUT"]
    ping_interval: float | None = DEFAULTS["WEBSOCKET_PING_INTERVAL"]
    ping_timeout: float | None = DEFAULTS["WEBSOCKET_PING_TIMEOUT"]
    compression: bool = DEFAULTS["WEBSOCKET_COMPRESSION"]

    @classmethod
    def of(cls, app: Any, server_config: Any = None) -> Limits:
        """The limits ``app``'s config sets (defaults for what it does not set).

        Hypercorn's own ``websocket_max_message_size`` (``server_config``), when it is set away
        from Hypercorn's default (``--websocket-max-message-size``, a config file), overrides
        ``WEBSOCKET_MAX_MESSAGE_SIZE``: the one setting both have.
        """
        config = _config_of(app)
        values = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
        size = getattr(server_config, "websocket_max_message_size", _HYPERCORN_DEFAULT_SIZE)
        if size != _HYPERCORN_DEFAULT_SIZE:
            values["WEBSOCKET_MAX_MESSAGE_SIZE"] = size
        return cls(
            max_message_size=int(values["WEBSOCKET_MAX_MESSAGE_SIZE"]),
            send_timeout=values["WEBSOCKET_SEND_TIMEOUT"],
            ping_interval=values["WEBSOCKET_PING_INTERVAL"],
            ping_timeout=values["WEBSOCKET_PING_TIMEOUT"],
            compression=bool(values["WEBSOCKET_COMPRESSION"]),
        )


def _config_of(app: Any) -> Mapping[str, Any]:
    seen = 0
    while app is not None and seen < 10:
        config = getattr(app, "config", None)
        if isinstance(config, Mapping):
            return config
        app = getattr(app, "app", None)
        seen += 1
    return {}
