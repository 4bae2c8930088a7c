"""The per-stream protocol fixes of the connection layer (placeholder: Hypercorn's own classes,
plus the interface the server side uses, until the fixes land).

The interface: ``ProtocolWrapper(app, config, context, task_group, state, ssl, client, server,
send, alpn_protocol, *, limits)`` is Hypercorn's signature plus the app's :class:`Limits`, and
``await wrapper.going_away()`` closes every websocket with 1001 at shutdown.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.protocol import ProtocolWrapper as _HypercornProtocolWrapper

from ._limits import Limits


class ProtocolWrapper(_HypercornProtocolWrapper):
    """Hypercorn's protocol wrapper with the layer's interface."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    async def going_away(self) -> None:
        """Close every websocket with 1001 and deliver the disconnect to its app (the server
        calls this at shutdown). Placeholder: a checkpoint that does nothing yet."""
        await trio.lowlevel.checkpoint()
