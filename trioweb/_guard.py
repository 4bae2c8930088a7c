"""Admission and limits for an app's websockets, and what the app keeps count of.

One :class:`Guard` per app (``app._guard``) owns:

* *Admission*, :func:`admit_websocket`, which the pipeline calls for each handshake before any
  ``before_websocket`` hook or the handler runs. It refuses a foreign ``Origin`` with 403
  (:mod:`trioweb._origins`, one INFO line), then a handshake beyond
  ``WEBSOCKET_MAX_CONNECTIONS`` with 503 and ``Retry-After`` (a WARNING at most every
  :data:`OVERLOAD_WARNING_INTERVAL` seconds). The refusal is an HTTP response like any rejected
  handshake's, so ``after_websocket`` and ``teardown_websocket`` hooks still see it.
* *The count* of open websockets: an admitted websocket is in :attr:`Guard.websockets` until
  the I/O edge calls :meth:`Guard.release` in the ``finally`` that ends its connection
  nursery's body, so every ending (the client, the handler, an error, a server shutdown, a
  cancellation from outside) gives its slot back.
* *The idle sweeper* (``WEBSOCKET_IDLE_TIMEOUT``): one task in the app nursery, started by the
  first admission once the timeout is set, looks at the open websockets every
  ``min(timeout / 4, 1)`` seconds. The only per-message cost is the inbox's ``heard`` counter
  (an integer increment per message from the client); the sweeper remembers each websocket's
  count and when it last saw it change, and closes a websocket whose count has not changed for
  ``timeout`` seconds: so the close comes between ``timeout`` and ``timeout + 2 * interval``
  seconds after the client's last message. No timer or task per connection; a task in the
  connection's nursery only for the close itself. The close is a server-initiated one, as at
  shutdown: the close frame (1001, ``"idle for 300 s"``) goes out first, then the handler's
  scope is cancelled (``trio.Cancelled`` wherever it waits, as for a disconnect), and its
  ``receive()``/``send()`` then raise :class:`~trioweb.WebsocketClosed` with that code.
* *The counters* that :meth:`TrioWeb.stats <trioweb.TrioWeb.stats>` snapshots (:class:`Stats`).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from ._origins import OriginPolicy, is_foreign, origin_header
from ._websocket import WebsocketState

if TYPE_CHECKING:
    from ._app import TrioWeb
    from ._response import Response
    from ._websocket import Websocket

log = logging.getLogger("trioweb")

#: Seconds a client refused for overload is asked to wait (``Retry-After``). Slots free up as
#: connections end, which takes seconds, not milliseconds; immediate retries from every refused
#: client would only add handshakes to a worker that is already full. Clients should add jitter.
RETRY_AFTER = 5
#: At most one overload WARNING per this many seconds (each says how many were refused since).
OVERLOAD_WARNING_INTERVAL = 10.0
#: The longest pause of the idle sweeper, in seconds (shorter for short timeouts: timeout / 4).
SWEEP_INTERVAL = 1.0

_CONNECTED = WebsocketState.CONNECTED
#: The idle sweeper's mark of a websocket not (or no longer) open: no count can equal it.
_NOT_OPEN = (-1, 0.0)


@final
@attrs.frozen
class Stats:
    """A snapshot of one app's connections in this worker process (:meth:`TrioWeb.stats
    <trioweb.TrioWeb.stats>`); the counters count since the app was created."""

    #: Websockets admitted and not ended yet (what ``WEBSOCKET_MAX_CONNECTIONS`` limits).
    websockets_open: int
    #: HTTP requests being answered (their teardown not yet started).
    http_requests_in_flight: int
    #: Handshakes refused with 503 because ``WEBSOCKET_MAX_CONNECTIONS`` were open.
    websockets_refused_overload: int
    #: Handshakes refused with 403 for their ``Origin``.
    websockets_refused_origin: int
    #: Websockets closed by ``WEBSOCKET_IDLE_TIMEOUT``.
    websockets_closed_idle: int


@final
class Guard:
    """One app's admission state and counters (see the module's rules)."""

    def __init__(self) -> None:
        #: Admitted websockets, each with the idle sweeper's mark: the inbox's ``heard`` count
        #: when the sweeper last saw it change, and when (``_NOT_OPEN`` until it sees it
        #: accepted, so the clock starts at accept; ``inf`` once it is being closed).
        self.websockets: dict[Websocket, tuple[int, float]] = {}
        #: Per-route policies (``allowed_origins=``), by endpoint.
        self.route_origins: dict[str, OriginPolicy] = {}
        self.http_in_flight = 0
        self.refused_overload = 0
        self.refused_origin = 0
        self.closed_idle = 0
        self.sweeping = False
        self._config_origins: tuple[Any, OriginPolicy] | None = None
        self._warned_at = -math.inf
        self._unreported = 0

    def release(self, ws: Websocket) -> None:
        """Give ``ws``'s slot back (the I/O edge calls this when its connection ends; a
        websocket that was never admitted has none)."""
        self.websockets.pop(ws, None)

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        return Stats(
            websockets_open=len(self.websockets),
            http_requests_in_flight=self.http_in_flight,
            websockets_refused_overload=self.refused_overload,
            websockets_refused_origin=self.refused_origin,
            websockets_closed_idle=self.closed_idle,
        )

    def config_origins(self, value: Any) -> OriginPolicy:
        """``WEBSOCKET_ALLOWED_ORIGINS`` parsed, again only when it changed. Raises
        ``ValueError`` for an invalid entry."""
        key = value if isinstance(value, str | bytes) else tuple(value)
        cached = self._config_origins
        if cached is not None and cached[0] == key:
            return cached[1]
        policy = OriginPolicy.parse(value, "config['WEBSOCKET_ALLOWED_ORIGINS']")
        self._config_origins = (key, policy)
        return policy

    def warn_overload(self, limit: int) -> None:
        self._unreported += 1
        now = trio.current_time()
        if now - self._warned_at < OVERLOAD_WARNING_INTERVAL:
            return
        log.warning(
            "websocket handshakes refused with 503: this worker has WEBSOCKET_MAX_CONNECTIONS"
            " (%d) websockets open; %d refused since the last such line (%d in all). Raise the"
            " limit if the worker has the memory and file descriptors, or add workers",
            limit,
            self._unreported,
            self.refused_overload,
        )
        self._warned_at = now
        self._unreported = 0


def admit_websocket(app: TrioWeb, ws: Websocket) -> Response | None:
    """Admit the handshake ``ws`` (count it as open), or return the HTTP response that refuses
    it: 403 for a foreign ``Origin``, 503 beyond ``WEBSOCKET_MAX_CONNECTIONS``. Not a checkpoint.

    Raises ``ValueError`` if ``WEBSOCKET_ALLOWED_ORIGINS`` holds an invalid entry.
    """
    guard = app._guard
    config = app.config
    origin = origin_header(ws.scope)
    if origin is not None and is_foreign(ws.scope, origin, _policy(app, ws)):
        guard.refused_origin += 1
        rule = ws.url_rule
        log.info(
            "websocket handshake refused (403): Origin %r may not open %s (route %s); allow it"
            " with allowed_origins= on the route or WEBSOCKET_ALLOWED_ORIGINS",
            origin,
            ws.path,
            rule.rule if rule is not None else "none matched",
        )
        return app.response_class(
            "This page's origin may not open this websocket.", 403, mimetype="text/plain"
        )
    limit = config["WEBSOCKET_MAX_CONNECTIONS"]
    websockets = guard.websockets
    if limit is not None and len(websockets) >= limit:
        guard.refused_overload += 1
        guard.warn_overload(limit)
        return app.response_class(
            "Too many websockets on this server; retry later.",
            503,
            {"Retry-After": str(RETRY_AFTER)},
            mimetype="text/plain",
        )
    websockets[ws] = _NOT_OPEN
    if not guard.sweeping and config["WEBSOCKET_IDLE_TIMEOUT"] is not None:
        nursery = app.nursery
        if nursery is not None:  # served without a lifespan: no sweeper (documented)
            guard.sweeping = True
            nursery.start_soon(_sweep_idle, app, guard, name="trioweb idle websocket sweeper")
    return None


def _policy(app: TrioWeb, ws: Websocket) -> OriginPolicy:
    """The route's policy, else its innermost blueprint's that has one, else the config's."""
    endpoint = ws.endpoint
    if endpoint is not None:
        policy = app._guard.route_origins.get(endpoint)
        if policy is not None:
            return policy
        for name in ws.blueprints:
            policy = app.blueprints[name].websocket_allowed_origins
            if policy is not None:
                return policy
    return app._guard.config_origins(app.config["WEBSOCKET_ALLOWED_ORIGINS"])


async def _sweep_idle(app: TrioWeb, guard: Guard) -> None:
    """Close the websockets that heard nothing from their client for ``WEBSOCKET_IDLE_TIMEOUT``
    seconds, until the timeout is turned off or the app nursery ends."""
    try:
        while (timeout := app.config["WEBSOCKET_IDLE_TIMEOUT"]) is not None:
            await trio.sleep(min(timeout / 4, SWEEP_INTERVAL))
            now = trio.current_time()
            websockets = guard.websockets
            for ws, (heard, since) in websockets.items():  # no checkpoint in the loop
                if ws.state is not _CONNECTED:  # its clock starts when it is first seen open
                    websockets[ws] = _NOT_OPEN
                    continue
                count = ws._inbox.heard
                if count != heard:
                    websockets[ws] = (count, now)
                elif now - since >= timeout:
                    websockets[ws] = (count, math.inf)
                    nursery = ws._inbox._nursery
                    assert nursery is not None  # enrolled by the I/O edge before admission
                    nursery.start_soon(_close_idle, ws, guard, f"idle for {timeout:g} s")
    finally:
        guard.sweeping = False


async def _close_idle(ws: Websocket, guard: Guard, reason: str) -> None:
    """In the connection's nursery: send the close (1001), then cancel the handler."""
    if ws.state is not _CONNECTED:  # the handler or the client closed it meanwhile
        await trio.lowlevel.checkpoint()
        return
    guard.closed_idle += 1
    log.debug("websocket %s closed: %s", ws.path, reason)
    try:
        # A transport that breaks meanwhile cancels the handler's scope, this task's too.
        await ws.close(1001, reason)
    finally:
        ws._disconnect(1001, reason)
