"""Who serves the app, as the lifespan scope says: trioweb's connection layer, trioweb's test
client, or another server (stock Hypercorn, ``hypercorn -k trio``).

The layer and the test client each put an ASGI extension in the lifespan scope
(:data:`LAYER`, :data:`TEST_CLIENT`). Under any other server the app's lifespan logs one
WARNING at startup naming the protections that are then missing (:func:`warn_unless_protected`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: The lifespan scope's extension that trioweb's connection layer sets.
LAYER = "trioweb.layer"
#: The lifespan scope's extension that trioweb's test client sets.
TEST_CLIENT = "trioweb.test_client"

log = logging.getLogger("trioweb")

MISSING = (
    "trioweb is served without its connection layer (by stock Hypercorn, such as"
    " `hypercorn -k trio`, or with layer=False / --stock-hypercorn), so these protections are"
    " missing: a client's malformed input can end the whole process (pgjones/hypercorn#225,"
    " #203); a send to a client that stopped reading can be neither timed out"
    " (WEBSOCKET_SEND_TIMEOUT) nor cancelled, and keeps the shutdown from finishing; websockets"
    " get no 1001 close at shutdown; the WEBSOCKET_* limits of app.config do not apply. Serve"
    " with `trioweb run`, app.run() or trioweb.serve() to have them."
)


def warn_unless_protected(scope: Mapping[str, Any]) -> None:
    """Log :data:`MISSING` once, as a WARNING, unless the lifespan ``scope`` comes from the
    layer or the test client."""
    extensions = scope.get("extensions") or {}
    if LAYER not in extensions and TEST_CLIENT not in extensions:
        log.warning(MISSING)
