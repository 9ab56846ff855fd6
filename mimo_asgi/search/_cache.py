"""A bounded, in-process LRU cache whose entries expire after a fixed time (pure)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """At most `maxsize` entries, each readable for `ttl` seconds after it was put.

    `clock` is a monotonic clock in seconds (injectable for tests). `ttl <= 0` or
    `maxsize <= 0` disables caching. Not thread-safe: one event loop uses it.
    """

    __slots__ = ("_data", "_maxsize", "_ttl", "_clock")

    def __init__(self, maxsize: int, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._maxsize = maxsize
        self._ttl = ttl
        self._clock = clock

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self._maxsize <= 0 or self._ttl <= 0:
            return
        self._data[key] = (self._clock() + self._ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)
