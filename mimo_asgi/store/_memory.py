"""An in-process response store: LRU with per-record TTL, bounded in count and bytes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from ._record import DEFAULT_MAX_RECORD_BYTES, DEFAULT_TTL, StoredResponse, encode_for_store, find_item, item_ids


DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024


class MemoryStore:
    """Records live in this process only (use `RedisStore` with several workers).

    Guarantees: at most `max_items` records and `max_total_bytes` encoded bytes are held (the
    least recently used go first); a record is never returned after its TTL; records are stored
    encoded, so callers can neither mutate a stored record nor see another caller's changes.
    `clock` (monotonic seconds) is injectable for tests.
    """

    def __init__(
        self,
        max_items: int = 10_000,
        default_ttl: float = DEFAULT_TTL,
        *,
        max_bytes_per_record: int = DEFAULT_MAX_RECORD_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_items < 1 or default_ttl <= 0 or max_bytes_per_record < 1 or max_total_bytes < 1:
            raise ValueError("max_items, default_ttl and the byte limits must be positive")
        self.max_items = max_items
        self.default_ttl = default_ttl
        self.max_bytes_per_record = min(max_bytes_per_record, max_total_bytes)
        self.max_total_bytes = max_total_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes, list[str]]] = OrderedDict()  # id -> (expires, data, item ids)
        self._by_item: dict[str, str] = {}  # item id -> the id of the record holding it
        self._bytes = 0
        self._lock = threading.Lock()  # no awaits inside; guards use from several threads

    async def put(self, record: StoredResponse, ttl: float | None = None) -> bool:
        data = encode_for_store(record, self.max_bytes_per_record)
        if data is None:
            return False
        expires = self._clock() + (ttl if ttl is not None else self.default_ttl)
        held = item_ids(record)
        with self._lock:
            self._drop(record.id)
            self._items[record.id] = (expires, data, held)
            self._by_item.update(dict.fromkeys(held, record.id))
            self._bytes += len(data)
            while len(self._items) > self.max_items or self._bytes > self.max_total_bytes:
                self._drop(next(iter(self._items)))
        return True

    async def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            entry = self._items.get(response_id)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                self._drop(response_id)
                return None
            self._items.move_to_end(response_id)
        return StoredResponse.decode(entry[1])

    async def delete(self, response_id: str) -> bool:
        with self._lock:
            entry = self._items.get(response_id)
            self._drop(response_id)
            return entry is not None and entry[0] > self._clock()

    async def touch(self, response_ids: Iterable[str], ttl: float | None = None) -> None:
        """Give live records a fresh TTL (expired ones stay expired)."""
        now = self._clock()
        expires = now + (ttl if ttl is not None else self.default_ttl)
        with self._lock:
            for response_id in response_ids:
                entry = self._items.get(response_id)
                if entry is not None and entry[0] > now:
                    self._items[response_id] = (expires, *entry[1:])
                    self._items.move_to_end(response_id)

    async def item(self, item_id: str) -> dict[str, Any] | None:
        response_id = self._by_item.get(item_id)
        record = await self.get(response_id) if response_id is not None else None
        return find_item(record, item_id) if record is not None else None

    async def aclose(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_item.clear()
            self._bytes = 0

    def __len__(self) -> int:
        """Records held, including expired ones not yet dropped."""
        return len(self._items)

    def _drop(self, response_id: str) -> None:
        entry = self._items.pop(response_id, None)
        if entry is not None:
            self._bytes -= len(entry[1])
            for item_id in entry[2]:
                if self._by_item.get(item_id) == response_id:
                    del self._by_item[item_id]

    def __repr__(self) -> str:
        return f"MemoryStore(items={len(self._items)}, max_items={self.max_items})"
