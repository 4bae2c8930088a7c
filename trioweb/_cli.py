"""The ``trioweb`` command: ``trioweb run --app module:app``.

``trioweb run`` is for development and simple deployments, and feels like ``quart run`` with
``hypercorn``'s settings: an access log on stderr (``--no-access-log`` turns it off), ``--debug``,
Hypercorn's config file (``--config``) with the common settings as flags, which win over the
file. One worker serves in the command's own process (:func:`trioweb._serving.run`); with
``--workers N`` or ``--reload``, :mod:`trioweb._supervisor` runs worker processes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from ._app import TrioWeb
from ._errors import LifespanError
from ._serving import hypercorn_config, run, serve_in_process
from ._supervisor import supervise
from ._types import ASGIApp

#: The flags that set a Hypercorn setting: flag's ``dest`` -> Hypercorn's name.
SETTINGS = {
    "graceful_timeout": "graceful_timeout",
    "shutdown_timeout": "shutdown_timeout",
    "keep_alive": "keep_alive_timeout",
    "websocket_max_message_size": "websocket_max_message_size",
    "certfile": "certfile",
    "keyfile": "keyfile",
}


def load_app(spec: str) -> ASGIApp:
    """Import ``module:attribute`` (``module`` alone means ``module:app``) from the current
    directory or ``sys.path``. Raises ``SystemExit`` with a message if it cannot."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and (module_name + ".").startswith(error.name + "."):
            raise SystemExit(f"trioweb: cannot import {module_name!r} ({error})") from None
        raise
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f"trioweb: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(app):
        raise SystemExit(f"trioweb: {spec!r} is not an ASGI app")
    return app  # type: ignore[no-any-return]


def load_config(path: str) -> HypercornConfig:
    """Hypercorn's config from ``path``, read as ``hypercorn --config`` reads it: a TOML file, or
    ``file:path.py`` (a Python file), or ``python:module`` (a module's attributes). Raises
    ``SystemExit`` with a message if it cannot."""
    try:
        if path.startswith("python:"):
            return HypercornConfig.from_object(path.removeprefix("python:"))
        if path.startswith("file:"):
            return HypercornConfig.from_pyfile(path.removeprefix("file:"))
        return HypercornConfig.from_toml(path)
    except Exception as error:
        raise SystemExit(f"trioweb: cannot read --config {path}: {error}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trioweb", description="Run trioweb apps.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser(
        "run",
        help="serve an app with Hypercorn's trio worker",
        description="Serve an app with Hypercorn's trio worker until Ctrl+C or SIGTERM. The"
        " shutdown is graceful and ends within graceful-timeout + shutdown-timeout + 1 seconds"
        " (14 by default): tasks still running then are named on stderr, and the command exits"
        " with status 1. A second Ctrl+C ends it at once.",
    )
    run_cmd.add_argument(
        "--app",
        default=os.environ.get("TRIOWEB_APP"),
        help="module:attribute of the app (default: $TRIOWEB_APP)",
    )
    run_cmd.add_argument("--host", help="address to bind (127.0.0.1)")
    run_cmd.add_argument("--port", type=int, help="port to bind (5000; 0: any)")
    run_cmd.add_argument("--workers", type=int, help="worker processes (1: serve in this process)")
    run_cmd.add_argument("--reload", action="store_true", help="restart when a source file changes")
    run_cmd.add_argument(
        "--debug",
        action="store_true",
        help="set the app's DEBUG: tracebacks in 500 responses, templates reloaded when they"
        " change (code is reloaded only with --reload)",
    )
    run_cmd.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log each request and websocket to stderr",
    )
    run_cmd.add_argument(
        "--stock-hypercorn",
        dest="layer",
        action="store_false",
        help="serve with stock Hypercorn's trio worker instead of trioweb's connection layer"
        " (for comparison: without the layer's protections)",
    )
    run_cmd.add_argument(
        "--config",
        metavar="FILE",
        help="Hypercorn's config: a TOML file, file:path.py or python:module; the flags win",
    )
    hypercorn = run_cmd.add_argument_group("Hypercorn's settings (default: --config's, else these)")
    hypercorn.add_argument(
        "--graceful-timeout",
        type=float,
        metavar="SECONDS",
        help="how long open connections may finish at shutdown (3)",
    )
    hypercorn.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="SECONDS",
        help="how long after_serving may take at shutdown (10)",
    )
    hypercorn.add_argument(
        "--keep-alive",
        type=float,
        metavar="SECONDS",
        help="how long an idle HTTP connection stays open (5)",
    )
    hypercorn.add_argument(
        "--websocket-max-message-size",
        type=int,
        metavar="BYTES",
        help="the largest websocket message accepted, in bytes (overrides the app's"
        " WEBSOCKET_MAX_MESSAGE_SIZE, 1 MiB)",
    )
    hypercorn.add_argument("--certfile", help="TLS certificate (with --keyfile: https)")
    hypercorn.add_argument("--keyfile", help="TLS private key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trioweb`` command; returns the exit status.

    0 once the server stopped on Ctrl+C or SIGTERM; 1, with one line on stderr, if the app's
    ``before_serving``/``after_serving`` failed, the address cannot be bound, a worker failed
    or the shutdown had to be cut short; 2 for a usage error. An app or config file that cannot
    be loaded exits with a message (``SystemExit``).
    """
    args = _parser().parse_args(argv)
    if not args.app:
        print("trioweb: say which app to run: --app module:app or TRIOWEB_APP", file=sys.stderr)
        return 2
    file_config = None if args.config is None else load_config(args.config)
    given = {name: getattr(args, dest) for dest, name in SETTINGS.items()}
    settings = {name: value for name, value in given.items() if value is not None}
    config = hypercorn_config(args.host, args.port, file_config, **settings)
    workers = args.workers if args.workers is not None else vars(config).get("workers", 1)
    if workers < 1:
        print("trioweb: --workers must be at least 1", file=sys.stderr)
        return 2
    config.workers = 1
    app = load_app(args.app)  # fails here, with a clear message, rather than in every worker
    if args.debug and not _set_debug(app, args.app):
        return 2
    try:
        if workers == 1 and not args.reload:
            run(app, config=config, access_log=args.access_log, layer=args.layer)
            return 0
        worker_args = (args.app, args.debug, config, args.access_log, args.layer)
        return supervise(_worker, worker_args, config, workers=workers, reload=args.reload)
    except (LifespanError, OSError) as error:
        print(_failure(error, config), file=sys.stderr)
    return 1


def _set_debug(app: Any, spec: str) -> bool:
    if not isinstance(app, TrioWeb):
        print(
            f"trioweb: --debug sets DEBUG on a TrioWeb app, and {spec} is not one (set DEBUG"
            " in its config instead)",
            file=sys.stderr,
        )
        return False
    app.debug = True
    return True


def _failure(error: LifespanError | OSError, config: HypercornConfig) -> str:
    """The one line that says why serving failed."""
    if isinstance(error, LifespanError):
        function = "before_serving" if error.phase == "startup" else "after_serving"
        return f"trioweb: {function} failed: {_last_line(error.message)}"
    return f"trioweb: cannot serve on {config.bind[0]}: {error.strerror or error}"


def _last_line(text: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no message)"


def _worker(
    spec: str,
    debug: bool,
    config: HypercornConfig,
    access_log: bool,
    layer: bool,
    sockets: Sockets,
    ready: Connection,
) -> None:
    """A worker process of :func:`trioweb._supervisor.supervise`: serves ``spec`` on
    ``sockets`` until SIGTERM, reports its URL on ``ready``; exits 1 with a line if it fails."""
    app = load_app(spec)
    if debug:
        _set_debug(app, spec)
    try:
        serve_in_process(
            app,
            config,
            access_log=access_log,
            announce=ready.send,
            sockets=sockets,
            signals=(signal.SIGTERM,),
            layer=layer,
        )
    except (LifespanError, OSError) as error:
        print(_failure(error, config), file=sys.stderr, flush=True)
        sys.exit(1)
