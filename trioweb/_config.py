"""``app.config``: a dict with defaults and Flask's loading helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, final

DEFAULTS: dict[str, Any] = {
    "DEBUG": False,
    "TESTING": False,
    "SECRET_KEY": None,
    "SERVER_NAME": None,
    "APPLICATION_ROOT": "/",
    "PREFERRED_URL_SCHEME": "http",
    # Request bodies: 16 MiB in all, 500 kB per non-file multipart field, 1,000 parts.
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 500_000,
    "MAX_FORM_PARTS": 1_000,
    # Seconds a view, or a websocket handler outside receive(), runs before the disconnect
    # listener reads on its behalf.
    "DISCONNECT_LISTENER_DELAY": 0.1,
    # Seconds the ending of a connection (after_websocket and teardown hooks) may take; it runs
    # shielded, so a server that cancels the connection still gets it.
    "TEARDOWN_TIMEOUT": 5.0,
    "SEND_FILE_MAX_AGE_DEFAULT": None,
    "TEMPLATES_AUTO_RELOAD": None,
}


@final
class Config(dict[str, Any]):
    """The app's settings; a ``dict`` whose keys are upper-case names.

    Starts from trioweb's defaults (``DEBUG``, ``TESTING``, ``MAX_CONTENT_LENGTH`` = 16 MiB, ...).
    """

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        super().__init__(DEFAULTS if defaults is None else defaults)

    def from_mapping(self, mapping: Mapping[str, Any] | None = None, **kwargs: Any) -> bool:
        """Update from a mapping and keyword arguments; keys not in upper case are ignored."""
        items = dict(mapping or {}, **kwargs)
        self.update({key: value for key, value in items.items() if key.isupper()})
        return True

    def from_prefixed_env(self, prefix: str = "TRIOWEB", *, loads: Any = json.loads) -> bool:
        """Load ``{prefix}_NAME`` environment variables into ``config["NAME"]``.

        Values are parsed with ``loads`` (JSON, so ``5``, ``true`` and ``null`` become ``int``,
        ``bool`` and ``None``) and kept as strings when that fails. ``{prefix}_A__B`` sets
        ``config["A"]["B"]``, creating the dict if needed.
        """
        start = f"{prefix}_"
        for name in sorted(os.environ):
            if not name.startswith(start):
                continue
            raw = os.environ[name]
            try:
                value = loads(raw)
            except ValueError:
                value = raw
            key = name.removeprefix(start)
            if "__" not in key:
                self[key] = value
                continue
            current: dict[str, Any] = self
            *parents, tail = key.split("__")
            for parent in parents:
                current = current.setdefault(parent, {})
            current[tail] = value
        return True

    def __repr__(self) -> str:
        return f"<Config {dict.__repr__(self)}>"
