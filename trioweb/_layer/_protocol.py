"""The per-stream protocol fixes of the connection layer (placeholder: Hypercorn's own classes
until the fixes land)."""

from __future__ import annotations

from hypercorn.protocol import ProtocolWrapper as ProtocolWrapper
