"""Account pool state that several workers can share: concurrency leases and affinity.

`RedisLeases` keeps one sorted set per account (member = lease token, score = expiry in
Redis server milliseconds), so a worker that crashes holding slots loses them when they
expire; the Redis clock is the only clock, so workers' clocks may differ. `MemoryLeases`
has the same interface for one process. Holders of long requests call `refresh` before
`ttl` runs out.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._redis_client import DEFAULT_TIMEOUT, close_client, redis_client, unavailable_on_error

_MAX_KEY = 200  # affinity keys longer than this are hashed


@runtime_checkable
class Leases(Protocol):
    """Per-account concurrency slots and key -> account affinity. Redis-backed implementations
    raise `StoreUnavailable` when Redis cannot be reached."""

    async def acquire(self, account_name: str, limit: int, ttl: float) -> str | None: ...

    async def refresh(self, account_name: str, token: str, ttl: float) -> bool: ...

    async def release(self, account_name: str, token: str) -> bool: ...

    async def in_flight(self, account_name: str) -> int: ...

    async def affinity_get(self, key: str) -> str | None: ...

    async def affinity_set(self, key: str, account_name: str, ttl: float) -> None: ...


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _affinity_key(key: str) -> str:
    return key if len(key) <= _MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# KEYS[1] lease set; ARGV: limit, ttl ms, token. Expired slots are dropped first; the key
# expires with its longest-lived lease, so idle accounts leave nothing behind.
_NOW = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""
_KEEP_ALIVE = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], tonumber(last[2])) end
"""
_ACQUIRE = _NOW + """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
""" + _KEEP_ALIVE + "return 1"
_REFRESH = _NOW + """
local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
""" + _KEEP_ALIVE + "return changed"
_IN_FLIGHT = _NOW + "return redis.call('ZCARD', KEYS[1])"


class RedisLeases:
    """Leases and affinity in Redis under `prefix` (`<prefix>lease:<account>`,
    `<prefix>aff:<key>`). Pass a `redis.asyncio.Redis` (shared; the caller closes it) or a
    URL (owned; closed by `aclose`)."""

    def __init__(self, client: Any, prefix: str = "mimo_asgi:", *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._owned = isinstance(client, str)
        self.client = redis_client(client, timeout=timeout) if self._owned else client
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)
        self._refresh = self.client.register_script(_REFRESH)
        self._in_flight = self.client.register_script(_IN_FLIGHT)

    def _lease_key(self, account_name: str) -> str:
        return f"{self.prefix}lease:{account_name}"

    async def acquire(self, account_name: str, limit: int, ttl: float) -> str | None:
        """A token holding one of `limit` slots for `ttl` seconds, or None when all are held."""
        token = secrets.token_hex(12)
        with unavailable_on_error():
            got = await self._acquire(keys=[self._lease_key(account_name)], args=[limit, _ms(ttl), token])
        return token if got else None

    async def refresh(self, account_name: str, token: str, ttl: float) -> bool:
        """Extend a held lease to `ttl` from now; False when it already expired or was released."""
        with unavailable_on_error():
            return bool(await self._refresh(keys=[self._lease_key(account_name)], args=[_ms(ttl), token]))

    async def release(self, account_name: str, token: str) -> bool:
        """Free the slot; False when it was not held (released twice, or expired)."""
        with unavailable_on_error():
            return bool(await self.client.zrem(self._lease_key(account_name), token))

    async def in_flight(self, account_name: str) -> int:
        """Live leases on the account, across every worker."""
        with unavailable_on_error():
            return int(await self._in_flight(keys=[self._lease_key(account_name)], args=[]))

    async def affinity_get(self, key: str) -> str | None:
        with unavailable_on_error():
            value = await self.client.get(f"{self.prefix}aff:{_affinity_key(key)}")
        return value.decode() if isinstance(value, bytes) else value

    async def affinity_set(self, key: str, account_name: str, ttl: float) -> None:
        with unavailable_on_error():
            await self.client.set(f"{self.prefix}aff:{_affinity_key(key)}", account_name, px=_ms(ttl))

    async def aclose(self) -> None:
        if self._owned:
            await close_client(self.client)

    def __repr__(self) -> str:
        return f"RedisLeases(prefix={self.prefix!r})"


class MemoryLeases:
    """The same interface for one process; `clock` (monotonic seconds) is injectable.
    At most `max_affinity` affinity keys are kept (least recently set go first)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_affinity: int = 100_000) -> None:
        self._clock = clock
        self._held: dict[str, dict[str, float]] = {}  # account -> token -> expires
        self._affinity: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_affinity = max_affinity
        self._lock = threading.Lock()

    def _live(self, account_name: str) -> dict[str, float]:
        now = self._clock()
        held = self._held.setdefault(account_name, {})
        for token in [t for t, expires in held.items() if expires <= now]:
            del held[token]
        return held

    async def acquire(self, account_name: str, limit: int, ttl: float) -> str | None:
        with self._lock:
            held = self._live(account_name)
            if len(held) >= limit:
                return None
            token = secrets.token_hex(12)
            held[token] = self._clock() + ttl
            return token

    async def refresh(self, account_name: str, token: str, ttl: float) -> bool:
        with self._lock:
            held = self._live(account_name)
            if token not in held:
                return False
            held[token] = self._clock() + ttl
            return True

    async def release(self, account_name: str, token: str) -> bool:
        with self._lock:
            return self._live(account_name).pop(token, None) is not None

    async def in_flight(self, account_name: str) -> int:
        with self._lock:
            return len(self._live(account_name))

    async def affinity_get(self, key: str) -> str | None:
        with self._lock:
            entry = self._affinity.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._affinity[key]
                return None
            return entry[1]

    async def affinity_set(self, key: str, account_name: str, ttl: float) -> None:
        with self._lock:
            self._affinity.pop(key, None)
            self._affinity[key] = (self._clock() + ttl, account_name)
            while len(self._affinity) > self._max_affinity:
                self._affinity.popitem(last=False)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryLeases(accounts={len(self._held)})"
