"""The two servers the end-to-end tests run against (issue 8, item 11): ``"stock"``, Hypercorn's
own trio worker (``layer=False``), and ``"layer"``, trioweb's connection layer (the default).

Tests take the ``server`` fixture (tests/conftest.py) and pass :func:`serve_kwargs` to
:func:`trioweb.serve`; ``_e2e.served`` and the ``live_server`` fixture follow the fixture by
themselves (modules mark ``pytestmark = pytest.mark.usefixtures("server")``; every test that
uses ``live_server`` runs against both).
"""

from __future__ import annotations

from typing import Any

import pytest

#: The keyword of :func:`trioweb.serve` that turns the layer off, and its value for "stock".
OPT_OUT = ("layer", False)

#: The server of the running test (set by the ``server`` fixture; ``None``: trioweb.serve's
#: default), for helpers such as ``_e2e.served`` that tests call without passing it.
current: str | None = None


#: The ``server`` fixture's parameters.
SERVERS = (pytest.param("stock"), pytest.param("layer"))


def serve_kwargs(server: str | None) -> dict[str, Any]:
    """Keyword arguments for :func:`trioweb.serve` that serve with ``server`` (``None``: its
    default)."""
    name, value = OPT_OUT
    return {name: value} if server == "stock" else {}


def stock_fails(reason: str) -> pytest.MarkDecorator:
    """The mark of a case stock Hypercorn fails (``reason`` names the upstream issue); on the
    layer the same case must pass."""
    return pytest.mark.xfail(strict=True, reason=f"stock Hypercorn: {reason}")
