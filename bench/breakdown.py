"""Where trioweb's per-request CPU goes: each step of its HTTP path for ``GET /plain``, timed alone
in a loop inside ``trio.run``, beside the whole ASGI call and the raw app's and Starlette's.

``python -m bench.breakdown [-n 5000] [--rounds 20] [--core 0]``

Method: the bench's trioweb app (``bench/apps/trioweb_app.py``) is started with its lifespan
(Hypercorn's ``Lifespan``, as a server would, so the app's disconnect listener and nursery run),
then each step of :data:`STEPS` is called ``-n`` times per round, the steps taking turns round
by round, and a step's figure is its best round's CPU time (``time.process_time()``) per call,
minus the loop's own cost. The sends go to a no-op ``send``, whose own cost is taken out of the
rows that call it. The steps follow ``trioweb/_asgi.py``'s ``handle_http`` for a view that
cannot suspend (``return "ok"``); the handler scope and the disconnect watch, which a view that
could wait gets besides, are timed below them, outside the sum. The sum of the steps against the
whole call shows what the table leaves out (the glue between them).

The steps are trioweb's private functions, which change as its HTTP path is worked on: all the
coupling is the table of lambdas just below; adjust a row when a function moves.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

# The steps, in the order trioweb's HTTP path runs them: name -> step(c), where ``c`` is a
# :class:`Context` (the app, the scope, a request and response made by the earlier rows, the
# listener); a step that returns an awaitable is awaited. "of which" rows are part of the row
# above them, not added to the sum.
STEPS: dict[str, Callable[[Context], Any]] = {
    "Request()": lambda c: c.trioweb.Request(
        c.scope,
        c.receive,
        max_content_length=c.app.config["MAX_CONTENT_LENGTH"],
        max_form_memory_size=c.app.config["MAX_FORM_MEMORY_SIZE"],
        max_form_parts=c.app.config["MAX_FORM_PARTS"],
    ),
    "routing (app.match_request)": lambda c: c.app.match_request(c.request),
    "context vars (bind_app, bind_request)": lambda c: (
        c.trioweb.bind_app(c.app),
        c.trioweb.bind_request(c.request),
    ),
    "can the dispatch wait? (_pipeline.cannot_suspend)": lambda c: c.trioweb.cannot_suspend(
        c.app, c.request
    ),
    "dispatch (_pipeline.dispatch_request)": lambda c: c.trioweb.dispatch_request(c.app, c.request),
    "  of which app.make_response('ok')": lambda c: c.app.make_response("ok"),
    "response sending (Response.send)": lambda c: c.response.send(c.send),
    "ending (_pipeline.end_request)": lambda c: c.trioweb.end_request(
        c.app, c.request, c.trioweb.Outcome()
    ),
    # Only for a request whose dispatch could wait (a view with an await, a streamed body): not
    # in GET /plain's path, so not in the sum.
    "  (a view that could wait: handler cancel scope)": lambda c: _enter_and_exit(
        trio.CancelScope()
    ),
    "  (a view that could wait: disconnect watch)": lambda c: _watch_and_unwatch(c),
}
#: The whole calls: trioweb's, the raw app's and Starlette's (when installed).
WHOLE: dict[str, Callable[[Context], Any]] = {
    "trioweb: app(scope, receive, send)": lambda c: c.app(dict(c.scope), c.receive, c.send),
    "raw app: app(scope, receive, send)": lambda c: c.raw(dict(c.scope), c.receive, c.send),
    "Starlette: app(scope, receive, send)": lambda c: c.starlette(dict(c.scope), c.receive, c.send),
}
LOOP = "(the loop itself, taken out of every row)"
SEND = "(the no-op send, taken out of the rows that send)"
#: Where trioweb's steps live (module, names): the other half of the coupling.
TRIOWEB = {
    "trioweb._request": ("Request",),
    "trioweb._ctx": ("bind_app", "bind_request"),
    "trioweb._listener": ("HttpWatch",),
    "trioweb._pipeline": ("cannot_suspend", "dispatch_request", "end_request", "Outcome"),
}


def _enter_and_exit(scope: trio.CancelScope) -> None:
    with scope:
        pass


def _watch_and_unwatch(c: Context) -> None:
    watch = c.trioweb.HttpWatch(c.request.body, c.receive, trio.CancelScope())
    c.listener.watch_http(watch)
    c.listener.unwatch_http(watch)


class Context:
    """What the steps use; ``request`` and ``response`` are made by running the table's rows."""

    def __init__(self, app: Any, raw: Any, starlette: Any) -> None:
        self.app = app
        self.raw = raw
        self.starlette = starlette
        self.trioweb = _Names()
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/plain",
            "raw_path": b"/plain",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "extensions": {},
            "state": {},
        }
        self.sent: list[dict[str, Any]] = []
        self.request: Any = None
        self.response: Any = None
        self.listener: Any = None

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        pass

    async def recording_send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


class _Names:
    """trioweb's private names of :data:`TRIOWEB`, as attributes."""

    def __init__(self) -> None:
        for module, names in TRIOWEB.items():
            imported = importlib.import_module(module)
            for name in names:
                setattr(self, name, getattr(imported, name))

    def __getattr__(self, name: str) -> Any:  # for mypy: the attributes are set above
        raise AttributeError(name)


async def _best_rounds(
    steps: dict[str, Callable[[Context], Any]], c: Context, calls: int, rounds: int
) -> dict[str, float]:
    """Each step's best round, in CPU µs per call. The steps take turns round by round, so that
    a slow spell of a shared machine hits them alike."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            gc.collect()
            started = time.process_time()
            for _ in range(calls):
                result = step(c)
                if inspect.isawaitable(result):
                    await result
            best[name] = min(best[name], (time.process_time() - started) / calls * 1e6)
    return best


async def _sends_per_call(name: str, step: Callable[[Context], Any], c: Context) -> int:
    """How many times one call of ``step`` calls ``send``. Raises ``RuntimeError`` if a step
    that sends a response sent anything but a 200 with the body ``ok``."""
    c.sent = []
    send, c.send = c.send, c.recording_send  # type: ignore[method-assign]
    try:
        result = step(c)
        if inspect.isawaitable(result):
            await result
    finally:
        c.send = send  # type: ignore[method-assign]
    if c.sent:
        status = c.sent[0].get("status")
        body = b"".join(m.get("body", b"") for m in c.sent[1:])
        if status != 200 or body != b"ok":
            raise RuntimeError(f"{name}: answered {status} {body!r}, expected 200 b'ok'")
    return len(c.sent)


async def measure(calls: int, rounds: int) -> list[tuple[str, float | None]]:
    """Rows of (step, µs per call or ``None`` when it cannot run here)."""
    from hypercorn.config import Config
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.utils import wrap_app

    from .apps.raw import app as raw
    from .apps.trioweb_app import app

    try:
        from .apps.starlette_app import app as starlette
    except ImportError:
        starlette = None
    c = Context(app, raw, starlette)
    config = Config()
    rows: list[tuple[str, float | None]] = []
    async with trio.open_nursery() as nursery:
        lifespan = Lifespan(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, {})
        await nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        c.listener = app._disconnect_listener
        c.request = STEPS["Request()"](c)
        for name in ("routing (app.match_request)", "context vars (bind_app, bind_request)"):
            STEPS[name](c)
        c.response = (await STEPS["dispatch (_pipeline.dispatch_request)"](c)).response
        steps: dict[str, Callable[[Context], Any]] = {
            LOOP: lambda c: None,
            SEND: lambda c: c.send({}),
        }
        sends: dict[str, int] = {}
        for name, step in {**STEPS, **WHOLE}.items():
            if name.startswith("Starlette") and starlette is None:
                continue
            sends[name] = await _sends_per_call(name, step, c)
            steps[name] = step
        best = await _best_rounds(steps, c, calls, rounds)
        loop, send = best[LOOP], best[SEND] - best[LOOP]
        rows.append((LOOP, loop))
        for name in {**STEPS, **WHOLE}:
            if name in sends:
                rows.append((name, best[name] - loop - sends[name] * send))
            else:
                rows.append((f"{name} (Starlette is not installed)", None))
        await lifespan.wait_for_shutdown()
        nursery.cancel_scope.cancel()
    return rows


def table(rows: Sequence[tuple[str, float | None]]) -> str:
    """The markdown table, with the sum of the steps against trioweb's whole call."""
    figures = dict(rows)
    whole = figures.get("trioweb: app(scope, receive, send)")
    steps = [f for n, f in rows if n in STEPS and not n.startswith(" ") and f is not None]
    lines = ["| step (GET /plain) | CPU µs per call | share of trioweb's call |", "|---|---|---|"]
    for name, figure in rows:
        counted = name in STEPS and not name.startswith("  (")
        share = f"{figure / whole:.0%}" if whole and figure is not None and counted else ""
        value = "n/a" if figure is None else f"{figure:.2f}"
        lines.append(
            f"| {name.strip() if not name.startswith(' ') else '… ' + name.strip()} |"
            f" {value} | {share} |"
        )
    if whole:
        total = sum(steps)
        lines.append(f"| sum of the steps | {total:.2f} | {total / whole:.0%} |")
        lines.append(
            f"| the rest of trioweb's call (glue) | {whole - total:.2f} |"
            f" {(whole - total) / whole:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.breakdown",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--calls", type=int, default=5_000, help="per round (5,000)")
    parser.add_argument("--rounds", type=int, default=20, help="the best counts (20)")
    default_core = 0 if hasattr(os, "sched_getaffinity") and 0 in os.sched_getaffinity(0) else None
    parser.add_argument("--core", type=int, default=default_core, help="pin to this core (0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin")
    args = parser.parse_args(argv)
    if min(args.calls, args.rounds) < 1:
        parser.error("-n and --rounds must be at least 1")
    if args.core is not None and not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    gc.set_threshold(20_000, 10, 10)  # as bench.perrequest (trioweb's GC_THRESHOLD)
    logging.basicConfig(level=logging.ERROR)  # trioweb's "not served by the layer" warning
    rows = trio.run(measure, args.calls, args.rounds)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
