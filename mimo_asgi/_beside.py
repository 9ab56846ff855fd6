"""One task beside another, ended with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


async def beside(work: Callable[[], Awaitable[T]],
                 side: Callable[[anyio.CancelScope], Coroutine[Any, Any, None]]) -> T | None:
    """Run `work()` with `side(cancel_scope)` in the background; `side` ends when `work` does.
    Returns what `work` returned (None if `side` cancelled it). An exception from `work` is
    raised as itself, not wrapped in an ExceptionGroup."""
    error: Exception | None = None
    result: T | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(side, tg.cancel_scope)
        try:
            result = await work()
        except Exception as exc:
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result
