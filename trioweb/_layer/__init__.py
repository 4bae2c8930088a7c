"""trioweb's connection layer for Hypercorn's trio worker (issue 8): Hypercorn's configuration,
its h11/h2/wsproto state machines and ASGI handling stay; trioweb owns the trio-side glue and the
per-stream fixes that keep hostile or unlucky clients from crashing, wedging or outlasting the
server. See the modules' theories of operation:

* :mod:`._limits`: the settings the layer enforces, read from the app's config;
* :mod:`._protocol`: the per-stream protocol fixes (h11, h2, websocket streams);
* :mod:`._connection`: one task per connection, its reads, sends, keep-alive and ending;
* :mod:`._apps`: the ASGI app calls of a connection (Hypercorn's task group interface);
* :mod:`._server`: the worker: accept loops, the lifespan, the shutdown.

The layer subclasses and calls into Hypercorn's internals, so it serves only with the Hypercorn
versions it is tested with (:data:`SUPPORTED`, the range pyproject.toml pins); this package
imports no Hypercorn module itself, so that :func:`unsupported` can be asked first.
"""

from __future__ import annotations

from importlib.metadata import version

#: The Hypercorn releases the layer is tested with: ``(major, minor)`` pairs.
SUPPORTED = ((0, 17), (0, 18))


def unsupported() -> str | None:
    """``None`` if the installed Hypercorn is one the layer supports, else the installed
    version (then trioweb serves with stock Hypercorn)."""
    installed = version("hypercorn")
    major_minor = tuple(int(part) for part in installed.split(".")[:2] if part.isdigit())
    return None if major_minor in SUPPORTED else installed
