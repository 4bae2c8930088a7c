"""The benchmark targets. Each module exposes an ASGI ``app`` with the same three routes:

``/ws``
    Accept, then echo every message with its type (text stays text, bytes stay bytes).
``/sub``
    Accept, join the module-level set of subscribers, wait until the client leaves, leave.
``/pub``
    For each message received: send it (same type) to every subscriber connected now, one
    ``await`` after another, then answer the publisher with the text ``"ok"``.

Fan-out is written the same simple way everywhere on purpose, so that the numbers compare the
frameworks and not fan-out strategies. ``raw`` is the hand-written ASGI limit.
"""
