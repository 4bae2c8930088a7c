"""The websocket connection object (issue 3 builds it out)."""

from __future__ import annotations

from ._request import BaseRequest


class Websocket(BaseRequest):
    """A websocket connection."""
