"""Calling a resolver's optional hooks (`report`, `remember`), sync or async."""

from __future__ import annotations

import inspect
from typing import Any


async def call_hook(resolver: Any, name: str, *args: Any) -> None:
    """`resolver.<name>(*args)` when the resolver has that hook; awaited when it returns an awaitable."""
    hook = getattr(resolver, name, None)
    if hook is not None:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
