"""trioweb's own exceptions.

HTTP errors are werkzeug's :mod:`werkzeug.exceptions` (``NotFound``, ``BadRequest``, ...): raise
them, or call :func:`trioweb.abort`, and the response pipeline turns them into responses. The
classes here are for what is not an HTTP status.
"""

from __future__ import annotations

from typing import final


@final
class LifespanError(Exception):
    """A ``before_serving`` or ``after_serving`` function failed.

    Raised by the test client (``async with app.test_client()``) when the app reports
    ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``; Hypercorn reports the same failure
    by exiting. :attr:`phase` is ``"startup"`` or ``"shutdown"`` and :attr:`message` holds the
    app's account of the failure, the traceback included.
    """

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(f"lifespan {phase} failed: {message}")
        self.phase = phase
        self.message = message
