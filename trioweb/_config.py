"""``app.config``: a dict with defaults and Flask's loading helpers.

Every loader keeps only upper-case keys (``from_object``, ``from_pyfile``, ``from_mapping``) or
names (``from_prefixed_env``), so a settings module can have lower-case helpers and imports.
The ``trioweb`` command's own environment variables (:data:`CLI_VARIABLES`) name what to run,
not how the app behaves, so ``from_prefixed_env`` leaves them out.
"""

from __future__ import annotations

import errno
import json
import os
import types
from collections.abc import Callable, Mapping
from typing import IO, Any, final

from werkzeug.utils import import_string

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
    # The signed-cookie session (trioweb._sessions).
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": None,
    "SESSION_REFRESH_EACH_REQUEST": True,
    # 31 days, in seconds (a timedelta works too).
    "PERMANENT_SESSION_LIFETIME": 31 * 24 * 3600,
    # JSON from clients (request.get_json, websocket.receive_json): how deep arrays and objects
    # may nest (None: as deep as Python's recursion limit lets the parser go); deeper is
    # InvalidPayload (400; 1007 on a websocket).
    "JSON_MAX_DEPTH": 128,
    # Whether NaN and Infinity are sent (jsonify, dict return values, send_json) and accepted
    # (get_json, receive_json), as Python's json module does; False: ValueError / InvalidPayload.
    "JSON_ALLOW_NAN": True,
    # What trioweb's connection layer (trioweb/_layer/_limits.py) enforces on websockets.
    # Bytes a message may have (after decompression); 1009 beyond it.
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1024 * 1024,
    # Seconds a send may wait for a client that stopped reading; then the connection closes.
    "WEBSOCKET_SEND_TIMEOUT": 10.0,
    # Seconds between pings to a quiet peer; None: no pings.
    "WEBSOCKET_PING_INTERVAL": 20.0,
    # Seconds a ping may wait for its pong before the peer counts as dead.
    "WEBSOCKET_PING_TIMEOUT": 20.0,
    # Whether to accept permessage-deflate.
    "WEBSOCKET_COMPRESSION": True,
    # While the app serves (its lifespan), Python's garbage collector runs its youngest
    # generation after this many new objects at the earliest (raised, never lowered; None: left
    # alone). Python's 700 makes a fan-out to 10,000 forwarding tasks spend ~40% of the CPU
    # collecting (trioweb/_gc.py).
    "GC_THRESHOLD": 20_000,
    # What trioweb's pipeline enforces on websocket handshakes and connections (trioweb/_guard.py,
    # trioweb/_origins.py; docs/howto/security.rst).
    # Origins besides the app's own whose pages may open websockets: exact ("https://a.example"),
    # wildcard ("https://*.example.com"), "null" or "*"; empty: the app's own origin only. A
    # foreign Origin gets 403; a handshake without one (not a browser) is let through.
    "WEBSOCKET_ALLOWED_ORIGINS": (),
    # Websockets one worker (one app instance) holds open at most; beyond it a handshake gets
    # 503 with Retry-After. Generous: the bench's hold (10,000 idle plus 500 busy websockets on
    # one worker) fits with room to spare; 20,000 idle websockets take about 470 MiB (~24 KiB
    # each) and as many file descriptors. None: no limit.
    "WEBSOCKET_MAX_CONNECTIONS": 20_000,
    # Seconds without a message from the client after which a websocket is closed (1001,
    # "idle for N s"); None: never.
    "WEBSOCKET_IDLE_TIMEOUT": None,
}

#: Environment variables the ``trioweb`` command reads for itself: ``TRIOWEB_APP`` (which app to
#: run) and the ``TRIOWEB_RUN_`` prefix, kept for options of ``trioweb run``. They never land in
#: ``config`` through :meth:`Config.from_prefixed_env`.
CLI_VARIABLES = ("TRIOWEB_APP",)
CLI_PREFIXES = ("TRIOWEB_RUN_",)


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

    def from_object(self, obj: object | str) -> None:
        """Update from the upper-case attributes of ``obj``: a module, a class or any object,
        or an import string (``"myapp.settings"``, ``"myapp.settings:Production"``) naming one.

        Raises ``ImportError`` (werkzeug's ``ImportStringError``) when the string cannot be
        imported.
        """
        if isinstance(obj, str):
            obj = import_string(obj)
        for key in dir(obj):
            if key.isupper():
                self[key] = getattr(obj, key)

    def from_pyfile(self, filename: str | os.PathLike[str], silent: bool = False) -> bool:
        """Run the Python file ``filename`` and load its upper-case names (blocks: it reads a
        file, so call it at startup, not in a view).

        A relative name is relative to the current directory. Returns ``False`` if the file does
        not exist (or is a directory) and ``silent`` is true; otherwise raises ``OSError`` with
        the file name. Errors in the file itself propagate.
        """
        filename = os.fspath(filename)
        module = types.ModuleType("config")
        module.__file__ = filename
        try:
            with open(filename, "rb") as file:
                code = compile(file.read(), filename, "exec")
        except OSError as error:
            if silent and error.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            error.strerror = f"Unable to load configuration file ({error.strerror})"
            raise
        exec(code, module.__dict__)
        self.from_object(module)
        return True

    def from_file(
        self,
        filename: str | os.PathLike[str],
        load: Callable[[IO[Any]], Mapping[str, Any]],
        silent: bool = False,
        text: bool = True,
    ) -> bool:
        """Load a mapping from ``filename`` with ``load`` (``json.load``, ``tomllib.load`` with
        ``text=False``) and update from its upper-case keys (blocks: it reads a file).

        Returns ``False`` if the file does not exist and ``silent`` is true; otherwise raises
        ``OSError`` with the file name. Errors of ``load`` propagate.
        """
        filename = os.fspath(filename)
        try:
            with open(filename, "r" if text else "rb") as file:
                mapping = load(file)
        except OSError as error:
            if silent and error.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            error.strerror = f"Unable to load configuration file ({error.strerror})"
            raise
        return self.from_mapping(mapping)

    def from_prefixed_env(self, prefix: str = "TRIOWEB", *, loads: Any = json.loads) -> bool:
        """Load ``{prefix}_NAME`` environment variables into ``config["NAME"]``.

        Values are parsed with ``loads`` (JSON, so ``5``, ``true`` and ``null`` become ``int``,
        ``bool`` and ``None``) and kept as strings when that fails. ``{prefix}_A__B`` sets
        ``config["A"]["B"]``, creating the dict if needed. The ``trioweb`` command's own
        variables (``TRIOWEB_APP``, ``TRIOWEB_RUN_*``) are skipped.
        """
        start = f"{prefix}_"
        for name in sorted(os.environ):
            if not name.startswith(start) or _is_cli_variable(name):
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


def _is_cli_variable(name: str) -> bool:
    return name in CLI_VARIABLES or name.startswith(CLI_PREFIXES)
