"""GC_THRESHOLD: the collector's first threshold is raised while the app serves, then put back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from trioweb import TrioWeb
from trioweb._gc import threshold_at_least


@pytest.fixture(autouse=True)
def _keep_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default, whatever other tests left
    yield
    gc.set_threshold(*saved)


@pytest.mark.parametrize(
    ("before", "threshold", "during"),
    [
        ((700, 10, 10), 20_000, (20_000, 10, 10)),  # Python's default: raised
        ((50_000, 5, 5), 20_000, (50_000, 5, 5)),  # higher already: never lowered
        ((700, 10, 10), None, (700, 10, 10)),  # None: left alone
    ],
)
def test_the_threshold_is_raised_inside_then_put_back(
    before: tuple[int, int, int], threshold: int | None, during: tuple[int, int, int]
) -> None:
    """Inside the block the first threshold is at least ``threshold``; after it, as before."""
    gc.set_threshold(*before)
    with threshold_at_least(threshold):
        assert gc.get_threshold() == during
    assert gc.get_threshold() == before


def test_a_threshold_changed_meanwhile_is_kept() -> None:
    """Whoever set the threshold inside the block keeps it."""
    with threshold_at_least(20_000):
        gc.set_threshold(1_234, 10, 10)
    assert gc.get_threshold() == (1_234, 10, 10)


async def test_the_app_serves_with_its_gc_threshold() -> None:
    """The lifespan reads GC_THRESHOLD (default 20,000) and puts the threshold back at
    shutdown."""
    app = TrioWeb(__name__)
    assert app.config["GC_THRESHOLD"] == 20_000
    app.config["GC_THRESHOLD"] = 12_345
    seen: list[int] = []

    @app.get("/")
    async def threshold() -> str:
        seen.append(gc.get_threshold()[0])
        return "ok"

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 200
    assert seen == [12_345]
    assert gc.get_threshold()[0] == 700
