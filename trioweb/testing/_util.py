"""Small helpers the testing drivers share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from .._errors import lone_exception


@contextmanager
def lone_exception_unwrapped() -> Iterator[None]:
    """Re-raise an exception group that holds one exception (however nested) as that exception.

    The drivers run the app in nurseries of their own; a test should see the app's ``KeyError``,
    not a group around it. Unwrapping stops at a group of several exceptions, which is raised.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        lone = lone_exception(group)
        if lone is group:
            raise
        raise lone from None


async def close_unwrapped(stack: AsyncExitStack) -> None:
    """Close ``stack`` (which holds a nursery), re-raising a lone exception without its group."""
    with lone_exception_unwrapped():
        await stack.aclose()
