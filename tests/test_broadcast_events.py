"""The broadcast's values and exceptions (trioweb/broadcast/_events.py)."""

from __future__ import annotations

import pytest

from trioweb import WebsocketException
from trioweb.broadcast import (
    BroadcastError,
    BroadcastInterrupted,
    BroadcastUnavailable,
    Join,
    Overflow,
    SubscriberTooSlow,
)


async def test_overflow_is_a_str_enum() -> None:
    """The policies compare equal to their strings."""
    assert [policy.value for policy in Overflow] == ["raise", "drop-oldest", "drop-newest"]
    assert Overflow("drop-newest") == "drop-newest"


@pytest.mark.parametrize(
    ("error", "code"),
    [(SubscriberTooSlow("t", 3), 1013), (BroadcastInterrupted("reset"), 1012)],
)
async def test_handler_escapes_close_the_websocket(error: WebsocketException, code: int) -> None:
    """Both are BroadcastError and WebsocketException with their close code."""
    assert isinstance(error, BroadcastError)
    assert error.code == code


async def test_reasons_fit_a_close_frame() -> None:
    """A long topic is cut so the reason stays within 123 bytes of UTF-8."""
    error = SubscriberTooSlow("é" * 200, 100)
    assert len(error.reason.encode()) <= 123
    assert error.reason.startswith("too slow: 100 messages of 'éé")
    assert error.reason.endswith("...")
    assert error.topic == "é" * 200
    assert len(BroadcastInterrupted("x" * 500).reason.encode()) <= 123


async def test_unavailable_names_the_url_and_the_fix() -> None:
    """BroadcastUnavailable says where, why, and which setting to check."""
    error = BroadcastUnavailable("redis://host:6379/0", "connection refused")
    assert str(error) == (
        "cannot reach the broadcast backend at redis://host:6379/0: connection refused; is the"
        " server running? (set BROADCAST_URL)"
    )
    assert isinstance(error, BroadcastError)
    assert not isinstance(error, WebsocketException)


async def test_events_are_values() -> None:
    """Events compare by value."""
    assert Join("t", "k", {"a": 1}) == Join("t", "k", {"a": 1})
    assert Join("t", "k", {}) != Join("t", "j", {})
