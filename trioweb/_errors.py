"""trioweb's own exceptions.

HTTP errors are werkzeug's :mod:`werkzeug.exceptions` (``NotFound``, ``BadRequest``, ...): raise
them, or call :func:`trioweb.abort`, and the response pipeline turns them into responses. The
classes here are for what is not an HTTP status.
"""

from __future__ import annotations

from typing import final

from werkzeug.exceptions import BadRequest, HTTPException


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


@final
class WebsocketClosed(Exception):
    """The websocket is closed, so it can no longer send or receive.

    Raised by :meth:`Websocket.receive`, :meth:`Websocket.send` (and their JSON forms) and
    :meth:`Websocket.accept` once the connection is gone: closed by the client, closed by the
    handler with :meth:`Websocket.close`, rejected before accept, or broken in transport. A
    handler that is still running when the client disconnects sees ``trio.Cancelled`` first;
    this exception is what a shielded cleanup, or code outside the handler's scope, gets.
    :attr:`code` and :attr:`reason` are the close code and reason as far as they are known
    (``1006`` when the connection broke without a close frame).
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebsocketException(Exception):
    """Raise it in a websocket handler (or its hooks) to close the websocket with :attr:`code`
    and :attr:`reason`, as Starlette's ``WebSocketException`` does.

    After accept the close frame carries them and nothing is logged as an error; before accept
    the handshake is refused with HTTP 403 (a handshake cannot carry a close code). An error
    handler registered for it runs first. ``ValueError`` if ``code`` is not one a server may
    send (1000, 1001-1014 but not 1004-1006, 3000-4999) or ``reason`` is over 123 bytes of
    UTF-8.
    """

    def __init__(self, code: int = 1008, reason: str = "") -> None:
        problem = close_problem(code, reason)
        if problem is not None:
            raise ValueError(problem)
        super().__init__(
            f"close the websocket with code {code}" + (f": {reason}" if reason else "")
        )
        self.code = code
        self.reason = reason


class InvalidPayload(BadRequest):
    """What a client sent cannot be read: not JSON, not UTF-8, nested too deep, a number too
    long (see ``JSON_MAX_DEPTH``). A :class:`~werkzeug.exceptions.BadRequest`, so ``except
    BadRequest`` catches it too.

    Raised by :meth:`Websocket.receive_json` and :meth:`Request.get_json`; its
    ``description`` says what is wrong, in words for the client. Left uncaught, it answers an
    HTTP request with 400, and closes an accepted websocket with :attr:`close_code` (1007,
    "invalid payload data") and the description as the reason, logged at INFO without a
    traceback. Catch it to answer and go on: the websocket stays usable.
    """

    #: The close code of a websocket it ends: 1007, invalid payload data (RFC 6455).
    close_code = 1007


def http_error_close_code(error: HTTPException) -> int:
    """The close code for an HTTP error that ends an accepted websocket: 1007 for
    :class:`InvalidPayload`, 1008 (policy violation) for other 4xx errors, 1011 for 5xx."""
    if isinstance(error, InvalidPayload):
        return error.close_code
    return 1008 if (error.code or 500) < 500 else 1011


def lone_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception in ``group`` and its nested one-member groups, or the innermost group
    that holds several. Nurseries wrap even a single error; callers that can act only on the
    error itself (``OSError`` from a taken port, a test's ``KeyError``) unwrap it with this."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def close_problem(code: int, reason: str) -> str | None:
    """Why a server may not close with ``code`` and ``reason``, or ``None`` if it may."""
    if not (
        code == 1000
        or (1001 <= code <= 1014 and code not in (1004, 1005, 1006))
        or 3000 <= code <= 4999
    ):
        return (
            f"{code} is not a close code a server may send: use 1000 (normal), 1001-1014"
            " (but not 1004-1006) or an application code in 3000-4999"
        )
    if len(reason.encode()) > 123:
        return "a close reason may be at most 123 bytes of UTF-8"
    return None
