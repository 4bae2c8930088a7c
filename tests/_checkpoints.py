"""Checking Trio's rule that an async function is a checkpoint even when it raises.

``trio.testing.assert_checkpoints()`` cannot check that: it lets a block that raises pass. A call
that raises without a checkpoint is what makes a loop that catches the error spin forever, deaf
to its own timeout, so these helpers check the two halves of a checkpoint directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio


async def assert_raises_at_a_checkpoint(
    call: Callable[[], Awaitable[Any]],
    error: type[BaseException] | tuple[type[BaseException], ...],
    match: str | None = None,
    *,
    cancel_point: bool = True,
) -> pytest.ExceptionInfo[BaseException]:
    """``await call()`` raises ``error`` and is a checkpoint while doing so.

    A cancel point: called in a cancelled scope, it raises ``trio.Cancelled`` instead (checked
    first, unless ``cancel_point`` is false, for calls that can be made only once). A schedule
    point: it yields to the scheduler before it raises (counted as
    ``trio.testing.assert_checkpoints`` counts).
    """
    __tracebackhide__ = True
    if cancel_point:
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                await call()
            except error as raised:
                pytest.fail(
                    f"raised {raised!r} without a cancel point (it ignored a cancelled scope)"
                )
        assert scope.cancelled_caught, "the call returned instead of raising"
    # What trio.testing.assert_checkpoints counts (it skips the check when the block raises).
    task = trio.lowlevel.current_task()
    schedule_points = task._schedule_points
    with pytest.raises(error, match=match) as info:
        await call()
    assert task._schedule_points > schedule_points, (
        f"raised {info.value!r} without a schedule point"
    )
    return info
