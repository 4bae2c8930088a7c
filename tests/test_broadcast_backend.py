"""Choosing a backend by URL, and hiding passwords (trioweb/broadcast/_backend.py)."""

from __future__ import annotations

import pytest

from trioweb.broadcast._backend import SCHEMES, backend_for, redact
from trioweb.broadcast._memory import MemoryBackend


async def test_memory_url() -> None:
    """memory:// is the in-memory backend."""
    backend = backend_for("memory://", presence_ttl=30, prefix="p")
    assert isinstance(backend, MemoryBackend)
    assert backend.url == "memory://"


async def test_unknown_scheme_names_the_supported_ones() -> None:
    """A ValueError lists every scheme, and hides the URL's password."""
    with pytest.raises(ValueError, match="no broadcast backend") as raised:
        backend_for("amqp://user:secret@host/", presence_ttl=30, prefix="p")
    message = str(raised.value)
    assert "memory://, redis://, rediss://, unix://" in message
    assert "secret" not in message


async def test_redis_schemes_are_served_by_the_redis_module() -> None:
    """redis://, rediss:// and unix:// load RedisBackend from _redis, lazily."""
    assert {SCHEMES[scheme] for scheme in ("redis", "rediss", "unix")} == {
        ("_redis", "RedisBackend")
    }


async def test_a_missing_backend_module_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backend whose module cannot be imported is a RuntimeError with the extra to install."""
    monkeypatch.setitem(SCHEMES, "nowhere", ("_nowhere", "Backend"))
    with pytest.raises(RuntimeError, match=r"pip install 'trioweb\[redis\]'"):
        backend_for("nowhere://host", presence_ttl=30, prefix="p")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:secret@host/0", "redis://user:***@host/0"),
        ("redis://user@host/0", "redis://user@host/0"),
        ("rediss://host/0?x=1", "rediss://host/0?x=1"),
        ("memory://", "memory://"),
    ],
)
async def test_redact_hides_the_password(url: str, shown: str) -> None:
    """Only the password is replaced."""
    assert redact(url) == shown
