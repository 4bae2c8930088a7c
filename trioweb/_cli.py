"""The ``trioweb`` command: ``trioweb run --app module:app``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ._errors import LifespanError
from ._serving import hypercorn_config, run
from ._types import ASGIApp


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trioweb", description="Run trioweb apps.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="serve an app with Hypercorn's trio worker")
    run_cmd.add_argument(
        "--app",
        default=os.environ.get("TRIOWEB_APP"),
        help="module:attribute of the app (default: $TRIOWEB_APP)",
    )
    run_cmd.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    run_cmd.add_argument("--port", type=int, default=5000, help="port to bind (5000; 0: any)")
    run_cmd.add_argument(
        "--workers", type=int, default=1, help="worker processes (1: serve in this process)"
    )
    run_cmd.add_argument("--reload", action="store_true", help="restart when a source file changes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trioweb`` command; returns the exit status.

    0 once the server stopped on Ctrl+C or SIGTERM; 1, with one line on stderr, if the app's
    ``before_serving``/``after_serving`` failed or the address cannot be bound; 2 for a usage
    error. An app that cannot be imported exits with a message (``SystemExit``). With
    ``--workers`` or ``--reload`` the status is Hypercorn's process supervisor's.
    """
    args = _parser().parse_args(argv)
    if not args.app:
        print("trioweb: say which app to run: --app module:app or TRIOWEB_APP", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("trioweb: --workers must be at least 1", file=sys.stderr)
        return 2
    bind = hypercorn_config(args.host, args.port).bind[0]
    app = load_app(args.app)  # fails here, with a clear message, rather than in every worker
    try:
        if args.workers == 1 and not args.reload:
            run(app, host=args.host, port=args.port)
            return 0
        return _run_workers(args.app, args.host, args.port, args.workers, args.reload)
    except LifespanError as error:
        function = "before_serving" if error.phase == "startup" else "after_serving"
        print(f"trioweb: {function} failed: {_last_line(error.message)}", file=sys.stderr)
    except OSError as error:
        print(f"trioweb: cannot serve on {bind}: {error.strerror or error}", file=sys.stderr)
    return 1


def _last_line(text: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no message)"


def _run_workers(spec: str, host: str, port: int, workers: int, reload: bool) -> int:
    from hypercorn.run import run as hypercorn_run

    config = hypercorn_config(host, port)
    config.application_path = spec
    config.worker_class = "trio"
    config.workers = workers
    config.use_reloader = reload
    where = f"http://{config.bind[0]}" if port else f"a free port of {host}"
    print(
        f"trioweb: serving {spec} on {where} with {workers} worker(s) (Ctrl+C to quit)",
        file=sys.stderr,
        flush=True,
    )
    return hypercorn_run(config)
