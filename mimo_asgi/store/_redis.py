"""A response store in Redis, shared by every worker that points at it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._record import DEFAULT_MAX_RECORD_BYTES, DEFAULT_TTL, StoredResponse, encode_for_store, find_item, item_ids
from ._redis_client import DEFAULT_TIMEOUT, close_client, redis_client, unavailable_on_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("mimo_asgi.store")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore:
    """Records as JSON strings under `<prefix>resp:<id>`, written with `SET ... PX ttl`; each
    item's id under `<prefix>item:<id>` names the record holding it (same TTL, in the same round
    trip), for `item_reference`.

    Guarantees: a record over `max_bytes_per_record` is not stored (warning logged, `put`
    returns False); every Redis failure (refused, timed out after `timeout` seconds, server
    error) raises `StoreUnavailable`; a value that does not decode as a record reads as
    missing. Pass a URL (the store owns and closes its client) or a `redis.asyncio.Redis`
    (shared, e.g. with `RedisLeases`; the caller closes it).
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        prefix: str = "mimo_asgi:",
        default_ttl: float = DEFAULT_TTL,
        max_bytes_per_record: int = DEFAULT_MAX_RECORD_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if default_ttl <= 0 or max_bytes_per_record < 1:
            raise ValueError("default_ttl and max_bytes_per_record must be positive")
        self._owned = isinstance(url_or_client, str)
        self.client: Redis = (redis_client(url_or_client, timeout=timeout) if isinstance(url_or_client, str)
                              else url_or_client)
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.max_bytes_per_record = max_bytes_per_record

    def _key(self, response_id: str) -> str:
        return f"{self.prefix}resp:{response_id}"

    async def put(self, record: StoredResponse, ttl: float | None = None) -> bool:
        data = encode_for_store(record, self.max_bytes_per_record)
        if data is None:
            return False
        ms = _ms(ttl if ttl is not None else self.default_ttl)
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(self._key(record.id), data, px=ms)
                for item_id in item_ids(record):
                    pipe.set(f"{self.prefix}item:{item_id}", record.id, px=ms)
                await pipe.execute()
        return True

    async def get(self, response_id: str) -> StoredResponse | None:
        with unavailable_on_error():
            data = await self.client.get(self._key(response_id))
        if data is None:
            return None
        try:
            return StoredResponse.decode(data)
        except ValueError:
            log.warning("stored response %s is unreadable; treating it as missing", response_id)
            return None

    async def delete(self, response_id: str) -> bool:
        with unavailable_on_error():
            return bool(await self.client.delete(self._key(response_id)))

    async def touch(self, response_ids: Iterable[str], ttl: float | None = None) -> None:
        """Give live records a fresh TTL, in one round trip (missing ones stay missing)."""
        keys = [self._key(i) for i in response_ids]
        if not keys:
            return
        ms = _ms(ttl if ttl is not None else self.default_ttl)
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.pexpire(key, ms)
                await pipe.execute()

    async def item(self, item_id: str) -> dict[str, Any] | None:
        with unavailable_on_error():
            response_id = await self.client.get(f"{self.prefix}item:{item_id}")
        if response_id is None:
            return None
        record = await self.get(response_id.decode() if isinstance(response_id, bytes) else str(response_id))
        return find_item(record, item_id) if record is not None else None

    async def aclose(self) -> None:
        if self._owned:
            await close_client(self.client)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"
