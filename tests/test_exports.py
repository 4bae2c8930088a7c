"""The public API is exactly what is intended: explicit re-exports from private modules."""

from __future__ import annotations

import importlib.metadata
import inspect
from types import ModuleType

import pytest

import trioweb
import trioweb.broadcast
import trioweb.testing

PUBLIC_API = {
    trioweb: {
        "Blueprint",
        "Config",
        "LifespanError",
        "Request",
        "Response",
        "SecureCookieSessionInterface",
        "Session",
        "SessionInterface",
        "TrioWeb",
        "Websocket",
        "WebsocketClosed",
        "WebsocketException",
        "WebsocketState",
        "abort",
        "copy_current_app_context",
        "copy_current_request_context",
        "copy_current_websocket_context",
        "current_app",
        "flash",
        "g",
        "get_flashed_messages",
        "has_app_context",
        "has_request_context",
        "has_websocket_context",
        "jsonify",
        "make_response",
        "redirect",
        "render_template",
        "render_template_string",
        "request",
        "send_file",
        "send_from_directory",
        "serve",
        "session",
        "url_for",
        "websocket",
    },
    trioweb.testing: {
        "TestClient",
        "TestResponse",
        "TestWebsocket",
        "WebsocketDisconnectError",
        "WebsocketResponseError",
    },
    trioweb.broadcast: {
        "Broadcast",
        "BroadcastError",
        "BroadcastInterrupted",
        "BroadcastStats",
        "BroadcastUnavailable",
        "Interrupted",
        "Join",
        "Leave",
        "Overflow",
        "Resumed",
        "SubscriberTooSlow",
        "Subscription",
        "TopicStats",
    },
}
MODULES = pytest.mark.parametrize("module", list(PUBLIC_API), ids=lambda module: module.__name__)


@MODULES
async def test_all_is_the_intended_api_sorted(module: ModuleType) -> None:
    """``__all__`` names the intended API, each name once, in sorted order."""
    assert set(module.__all__) == PUBLIC_API[module]
    assert module.__all__ == sorted(set(module.__all__))


@MODULES
async def test_public_attributes_are_all_exported(module: ModuleType) -> None:
    """Every public attribute that is not a module is in ``__all__``: nothing leaks."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(module.__all__)


@MODULES
async def test_star_import_gives_exactly_all(module: ModuleType) -> None:
    """``from module import *`` binds the names of ``__all__`` and no other."""
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    del namespace["__builtins__"]
    assert set(namespace) == set(module.__all__)


@MODULES
async def test_exports_are_defined_in_private_modules(module: ModuleType) -> None:
    """Classes and functions come from private modules of the package; none is a module."""
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, ModuleType), name
        if inspect.isclass(value) or inspect.isfunction(value):
            home = value.__module__
            assert home.startswith(module.__name__ + "._"), f"{name} is from {home}"


async def test_version_is_the_distributions() -> None:
    """``trioweb.__version__`` is the installed distribution's version."""
    assert trioweb.__version__ == importlib.metadata.version("trioweb")
