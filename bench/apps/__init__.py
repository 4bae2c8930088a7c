"""The benchmark targets. Each module exposes an ASGI ``app`` with the same three routes:

``/ws``
    Accept, then echo every message with its type (text stays text, bytes stay bytes).
``/sub``
    Accept, receive every message published from now on, until the client leaves.
``/pub``
    For each message received: get it (same type) to every subscriber connected now, then
    answer the publisher with the text ``"ok"``.

The peers (``raw``, quart-trio, Starlette, Quart) fan out the simple hand-written way: a
module-level set of subscribers, and one ``await send`` per subscriber in the publisher's task.
``raw`` is the hand-written ASGI limit. trioweb fans out the way its docs teach, through its
broadcast hub (``trioweb.broadcast``): ``publish`` puts the message into each subscription's
buffer and each ``/sub`` handler's forwarding task sends it, so its ``"ok"`` can come before the
copies are sent; the load generator waits for every copy before the next publish either way, so
deliveries per second compare alike. The same app also serves the two-worker Redis scenarios.
"""
