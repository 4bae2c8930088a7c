"""The two servers the end-to-end tests run against (issue 8, item 11): ``"stock"``, Hypercorn's
own trio worker, and ``"layer"``, trioweb's connection layer (``trioweb._layer._server``).

Tests take the ``server`` fixture (tests/conftest.py) and pass :func:`serve_kwargs` to
:func:`trioweb.serve`; ``_e2e.served`` and the ``live_server`` fixture follow the fixture by
themselves (modules mark ``pytestmark = pytest.mark.usefixtures("server")``; every test that
uses ``live_server`` runs against both). The ``"layer"`` parameter is skipped, with the reason
below, until this checkout has ``trioweb._layer._server``; nothing needs flipping when it
lands.

After the merge, :func:`trioweb.serve` serves through the layer by default; ``"stock"`` then
needs the layer's opt-out, found here by its name: :data:`OPT_OUT` (``layer=False``). If the
opt-out is spelled differently, change :data:`OPT_OUT`, and only it.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

import pytest

import trioweb

#: The keyword of :func:`trioweb.serve` that turns the layer off, and its value for "stock".
OPT_OUT = ("layer", False)

#: The server of the running test (set by the ``server`` fixture; ``None``: trioweb.serve's
#: default), for helpers such as ``_e2e.served`` that tests call without passing it.
current: str | None = None


def layer_available() -> bool:
    """Whether this trioweb has its connection layer."""
    return importlib.util.find_spec("trioweb._layer._server") is not None


LAYER_MISSING = (
    "trioweb's connection layer (trioweb._layer._server, branch layer-server) is not in this"
    " checkout yet; these cases run against it once it is merged"
)

#: The ``server`` fixture's parameters.
SERVERS = (
    pytest.param("stock"),
    pytest.param("layer", marks=pytest.mark.skipif(not layer_available(), reason=LAYER_MISSING)),
)


def serve_kwargs(server: str | None) -> dict[str, Any]:
    """Keyword arguments for :func:`trioweb.serve` that serve with ``server`` (``None``: its
    default)."""
    name, value = OPT_OUT
    if server == "stock" and name in inspect.signature(trioweb.serve).parameters:
        return {name: value}
    return {}


def stock_fails(reason: str) -> pytest.MarkDecorator:
    """The mark of a case stock Hypercorn fails (``reason`` names the upstream issue); on the
    layer the same case must pass."""
    return pytest.mark.xfail(strict=True, reason=f"stock Hypercorn: {reason}")
