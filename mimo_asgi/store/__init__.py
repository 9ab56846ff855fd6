"""Stateful Responses: stored responses and `previous_response_id` chains.

`MemoryStore` serves one process; `RedisStore` serves several workers sharing one Redis.
`rebuild_input` turns a request with `previous_response_id` into a stateless one; the
translators never see the store. Redis support needs the `redis` extra (redis-py), imported
only when a Redis class is used. The account pool's shared state moved to `mimo_asgi.pool`
(its names still resolve here).
"""

from __future__ import annotations

from typing import Any

from ._chain import MAX_CHAIN, Resumed, chain, rebuild_input, resume, store_unavailable
from ._memory import MemoryStore
from ._pages import input_items_page
from ._record import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_TTL,
    ResponseStore,
    StoredResponse,
    StoreUnavailable,
    normalise_input,
    response_for_client,
    should_store,
)
from ._redis import RedisStore
from ._redis_client import redis_client

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES", "DEFAULT_TTL", "MAX_CHAIN", "MemoryStore", "RedisStore", "ResponseStore", "Resumed",
    "StoreUnavailable", "StoredResponse", "chain", "input_items_page", "normalise_input", "open_store",
    "rebuild_input", "redis_client", "response_for_client", "resume", "should_store", "store_unavailable",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(url: str | None = None, **options: Any) -> ResponseStore:
    """`MemoryStore` for None, "" or "memory"; `RedisStore` for a redis://, rediss:// or
    unix:// URL. `options` go to the store's constructor. Other values raise ValueError
    (without echoing the URL, which may hold a password)."""
    if not url or url.strip().lower() in ("memory", "memory://"):
        return MemoryStore(**options)
    if url.strip().lower().startswith(_REDIS_SCHEMES):
        return RedisStore(url.strip(), **options)
    raise ValueError("store URL must be 'memory' or start with redis://, rediss:// or unix://")
