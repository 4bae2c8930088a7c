"""Naming the tasks that would not end: the leaves of the task tree, each with where it waits in
the application's code."""

from __future__ import annotations

import re

import trio
import trio.testing

from trioweb._tasktree import describe, stuck_tasks


async def _wait_here(event: trio.Event) -> None:
    await event.wait()


async def test_stuck_tasks_are_the_leaves_named_where_they_wait() -> None:
    """Tasks waiting on their own children are not named; each leaf is, at its innermost frame
    outside Trio, Hypercorn and trioweb (or its innermost frame if it has none there)."""
    release = trio.Event()
    root = trio.lowlevel.current_task()

    async def parent() -> None:
        async with trio.open_nursery() as children:
            children.start_soon(_wait_here, release, name="child")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(parent, name="parent")
        nursery.start_soon(release.wait, name="in-trio-only")
        await trio.testing.wait_all_tasks_blocked()
        found = stuck_tasks(root, exclude=trio.lowlevel.current_task())
        release.set()
    assert len(found) == 2
    assert re.fullmatch(r"child at .*test_tasktree\.py:\d+ in _wait_here", found[0])
    assert re.fullmatch(r"in-trio-only at .*/trio/.*\.py:\d+ in \w+", found[1])


async def test_the_excluded_task_is_not_named() -> None:
    """The task that reports (the watcher) leaves itself out; a lone root is a leaf."""
    me = trio.lowlevel.current_task()
    assert stuck_tasks(me, exclude=me) == []
    assert stuck_tasks(me, exclude=trio.lowlevel.current_root_task()) == [describe(me)]


async def test_a_task_without_frames_is_named_alone() -> None:
    """A task whose coroutine shows no frame is described by its name."""

    class Frameless:
        name = "frameless"

        def iter_await_frames(self) -> list[object]:
            return []

    assert describe(Frameless()) == "frameless"  # type: ignore[arg-type]
