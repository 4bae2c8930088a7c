"""Naming the tasks that would not end, for a shutdown that must end anyway.

Trio cannot end a task that catches ``trio.Cancelled`` and carries on (``except BaseException:``
in a loop): its nursery, and every nursery above it, waits for it forever. When
:func:`trioweb._serving.run` gives up on such a shutdown it exits the process, and first names each
task still running, one line each, so that the reader can find the loop.

Only the leaves of the task tree are named: a task whose nurseries still hold tasks waits for
them and is not stuck on its own account. A task is described by its name and the innermost
frame of its await chain that is not in Trio, Hypercorn, trioweb or the standard library, which
is where the application's code waits (or, if there is none, the innermost frame).
"""

from __future__ import annotations

import os
import sysconfig

import hypercorn
import trio

#: Where Trio, Hypercorn, trioweb and the standard library live: not the application's code.
_LIBRARIES = (
    *(os.path.dirname(path) + os.sep for path in (trio.__file__, hypercorn.__file__, __file__)),
    sysconfig.get_paths()["stdlib"] + os.sep,
)


def stuck_tasks(root: trio.lowlevel.Task, *, exclude: trio.lowlevel.Task) -> list[str]:
    """Describe the leaf tasks under ``root`` (``root`` itself if it has no children), except
    ``exclude``; one string each, sorted. Sync: it only reads the task tree."""
    found = []
    pending = [root]
    while pending:
        task = pending.pop()
        children = [child for nursery in task.child_nurseries for child in nursery.child_tasks]
        if children:
            pending.extend(children)
        elif task is not exclude:
            found.append(describe(task))
    return sorted(found)


def describe(task: trio.lowlevel.Task) -> str:
    """``task``'s name and where it waits: ``"name at file.py:12 in function"``."""
    frames = list(task.iter_await_frames())
    if not frames:
        return task.name
    own = [(frame, line) for frame, line in frames if not _in_library(frame.f_code.co_filename)]
    frame, line = (own or frames)[-1]
    return f"{task.name} at {frame.f_code.co_filename}:{line} in {frame.f_code.co_name}"


def _in_library(filename: str) -> bool:
    return filename.startswith(_LIBRARIES)
