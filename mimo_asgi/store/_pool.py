"""Account pool state that several workers can share: concurrency leases, affinity,
cooldowns and disabled accounts.

`RedisLeases` keeps one sorted set per account (member = lease token, score = expiry in
Redis server milliseconds), so a worker that crashes holding slots loses them when they
expire; the Redis clock is the only clock, so workers' clocks may differ. `MemoryLeases`
has the same interface for one process. Holders of long requests call `refresh` before
`ttl` runs out. `take` picks and leases an account in one step (one Redis round trip):
see `SharedAccountPool` for the policy around it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ._redis_client import DEFAULT_TIMEOUT, close_client, redis_client, unavailable_on_error

_MAX_KEY = 200  # affinity keys longer than this are hashed
STRIKES_TTL = 86_400.0  # seconds without a failure after which an account's failure count is forgotten


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


class Candidate(NamedTuple):
    """An account offered to `take`: its name, its slot limit, and its identity in the disabled
    set (name and key fingerprint, so a new key for the same name is not disabled)."""

    name: str
    limit: int
    identity: str


class Taken(NamedTuple):
    """What `take` did. `index`: the candidate now holding the slot (None: no candidate could
    take it); `struck`: that account has failures on record; `states`, when none was taken, one
    per candidate: None = disabled, else seconds of cooldown left (0.0: not cooling, but full)."""

    index: int | None
    struck: bool = False
    states: tuple[float | None, ...] = ()


@runtime_checkable
class PoolState(Leases, Protocol):
    """`Leases` plus what `SharedAccountPool` keeps: cooldowns, failure counts, disabled accounts."""

    async def take(self, candidates: Sequence[Candidate], ttl: float, token: str,
                   affinity: tuple[str, float] | None = None) -> Taken: ...

    async def release_any(self, account_names: Iterable[str], token: str) -> None: ...

    async def strike(self, account_name: str) -> int: ...

    async def clear_strikes(self, account_name: str) -> None: ...

    async def cool_down(self, account_name: str, seconds: float) -> None: ...

    async def cooling_down(self, account_name: str) -> float: ...

    async def disable(self, identity: str) -> None: ...

    async def enable(self, identity: str) -> None: ...

    async def is_disabled(self, identity: str) -> bool: ...

    async def aclose(self) -> None: ...


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
# KEYS: disabled set, affinity key, then per candidate: lease set, cooldown key, strikes key.
# ARGV: lease ttl ms, token, affinity ttl ms (0: no affinity), then per candidate: name,
# limit, identity. The remembered account is tried first, then the others in the given order.
# Returns {index, strikes} when a slot was taken, else {0, state per candidate} with state
# -1 disabled, 0 full, > 0 milliseconds of cooldown left.
_TAKE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, token, aff_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local n = (#KEYS - 2) / 3
local remembered = false
if aff_ttl > 0 then remembered = redis.call('GET', KEYS[2]) end
local order = {}
for i = 1, n do if ARGV[3 * i + 1] == remembered then table.insert(order, i) end end
for i = 1, n do if ARGV[3 * i + 1] ~= remembered then table.insert(order, i) end end
local states = {0}
for _, i in ipairs(order) do
  local lease, cool = KEYS[3 * i], KEYS[3 * i + 1]
  if redis.call('SISMEMBER', KEYS[1], ARGV[3 * i + 3]) == 1 then
    states[i + 1] = -1
  else
    local left = redis.call('PTTL', cool)
    if left > 0 then
      states[i + 1] = left
    else
      redis.call('ZREMRANGEBYSCORE', lease, '-inf', now)
      if redis.call('ZCARD', lease) < tonumber(ARGV[3 * i + 2]) then
        redis.call('ZADD', lease, now + ttl, token)
        local last = redis.call('ZRANGE', lease, -1, -1, 'WITHSCORES')
        redis.call('PEXPIREAT', lease, tonumber(last[2]))
        if aff_ttl > 0 then redis.call('SET', KEYS[2], ARGV[3 * i + 1], 'PX', aff_ttl) end
        return {i, tonumber(redis.call('GET', KEYS[3 * i + 2]) or '0')}
      end
      states[i + 1] = 0
    end
  end
end
return states
"""


class RedisLeases:
    """Pool state in Redis under `prefix`: `<prefix>lease:<account>` (slots),
    `<prefix>aff:<key>` (affinity), `<prefix>cool:<account>` (cooldown, `PX` expiry),
    `<prefix>strikes:<account>` (failures in a row), `<prefix>disabled` (a set). Pass a
    `redis.asyncio.Redis` (shared; the caller closes it) or a URL (owned; closed by `aclose`).
    One instance serves one event loop (redis-py's connections belong to the loop that made them)."""

    def __init__(self, client: Any, prefix: str = "mimo_asgi:", *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._owned = isinstance(client, str)
        self.client = redis_client(client, timeout=timeout) if self._owned else client
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)
        self._refresh = self.client.register_script(_REFRESH)
        self._in_flight = self.client.register_script(_IN_FLIGHT)
        self._take = self.client.register_script(_TAKE)

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

    async def take(self, candidates: Sequence[Candidate], ttl: float, token: str,
                   affinity: tuple[str, float] | None = None) -> Taken:
        """Hold a slot for `token` on the first candidate (the one remembered for `affinity[0]`
        first) that is enabled, not cooling down and below its limit; on success remember it
        for `affinity[0]` for `affinity[1]` seconds. Atomic: one script, one round trip."""
        p = self.prefix
        keys = [f"{p}disabled", f"{p}aff:{_affinity_key(affinity[0])}" if affinity else f"{p}aff:"]
        args: list[Any] = [_ms(ttl), token, _ms(affinity[1]) if affinity else 0]
        for c in candidates:
            keys += [self._lease_key(c.name), f"{p}cool:{c.name}", f"{p}strikes:{c.name}"]
            args += [c.name, c.limit, c.identity]
        with unavailable_on_error():
            reply = await self._take(keys=keys, args=args)
        if reply[0]:
            return Taken(int(reply[0]) - 1, int(reply[1]) > 0)
        return Taken(None, False, tuple(None if s < 0 else s / 1000 for s in map(int, reply[1:])))

    async def release_any(self, account_names: Iterable[str], token: str) -> None:
        """Free `token` wherever it is held (cleanup after a `take` whose reply was lost)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for name in account_names:
                pipe.zrem(self._lease_key(name), token)
            with unavailable_on_error():
                await pipe.execute()

    async def strike(self, account_name: str) -> int:
        """Count one more failure in a row; returns the count (forgotten after `STRIKES_TTL`)."""
        key = f"{self.prefix}strikes:{account_name}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key).pexpire(key, _ms(STRIKES_TTL))
            with unavailable_on_error():
                count, _ = await pipe.execute()
        return int(count)

    async def clear_strikes(self, account_name: str) -> None:
        with unavailable_on_error():
            await self.client.delete(f"{self.prefix}strikes:{account_name}")

    async def cool_down(self, account_name: str, seconds: float) -> None:
        """No new slots on the account for `seconds` from now (replacing any earlier cooldown)."""
        key = f"{self.prefix}cool:{account_name}"
        with unavailable_on_error():
            if seconds > 0:
                await self.client.set(key, b"1", px=_ms(seconds))
            else:
                await self.client.delete(key)

    async def cooling_down(self, account_name: str) -> float:
        """Seconds until the account takes requests again (0.0 when it does now)."""
        with unavailable_on_error():
            left = await self.client.pttl(f"{self.prefix}cool:{account_name}")
        return max(0, int(left)) / 1000

    async def disable(self, identity: str) -> None:
        with unavailable_on_error():
            await self.client.sadd(f"{self.prefix}disabled", identity)

    async def enable(self, identity: str) -> None:
        with unavailable_on_error():
            await self.client.srem(f"{self.prefix}disabled", identity)

    async def is_disabled(self, identity: str) -> bool:
        with unavailable_on_error():
            return bool(await self.client.sismember(f"{self.prefix}disabled", identity))

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
        self._cool_until: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}  # account -> (count, forgotten at)
        self._disabled: set[str] = set()
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
        return self.release_nowait(account_name, token)

    def release_nowait(self, account_name: str, token: str) -> bool:
        """`release` without awaiting: the slot is free when this returns."""
        with self._lock:
            return self._live(account_name).pop(token, None) is not None

    async def in_flight(self, account_name: str) -> int:
        with self._lock:
            return len(self._live(account_name))

    async def affinity_get(self, key: str) -> str | None:
        with self._lock:
            return self._affinity_get(key)

    def _affinity_get(self, key: str) -> str | None:
        entry = self._affinity.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._affinity[key]
            return None
        return entry[1]

    async def affinity_set(self, key: str, account_name: str, ttl: float) -> None:
        with self._lock:
            self._affinity_set(key, account_name, ttl)

    def _affinity_set(self, key: str, account_name: str, ttl: float) -> None:
        self._affinity.pop(key, None)
        self._affinity[key] = (self._clock() + ttl, account_name)
        while len(self._affinity) > self._max_affinity:
            self._affinity.popitem(last=False)

    async def take(self, candidates: Sequence[Candidate], ttl: float, token: str,
                   affinity: tuple[str, float] | None = None) -> Taken:
        """As `RedisLeases.take`, under one lock."""
        with self._lock:
            now = self._clock()
            remembered = self._affinity_get(affinity[0]) if affinity else None
            order = sorted(range(len(candidates)), key=lambda i: candidates[i].name != remembered)
            states: list[float | None] = [0.0] * len(candidates)
            for i in order:
                c = candidates[i]
                if c.identity in self._disabled:
                    states[i] = None
                elif self._cool_until.get(c.name, 0.0) > now:
                    states[i] = self._cool_until[c.name] - now
                elif len(held := self._live(c.name)) < c.limit:
                    held[token] = now + ttl
                    if affinity:
                        self._affinity_set(affinity[0], c.name, affinity[1])
                    return Taken(i, self._strike_count(c.name) > 0)
            return Taken(None, False, tuple(states))

    async def release_any(self, account_names: Iterable[str], token: str) -> None:
        for name in account_names:
            self.release_nowait(name, token)

    def _strike_count(self, account_name: str) -> int:
        count, forgotten_at = self._strikes.get(account_name, (0, 0.0))
        return count if forgotten_at > self._clock() else 0

    async def strike(self, account_name: str) -> int:
        with self._lock:
            count = self._strike_count(account_name) + 1
            self._strikes[account_name] = (count, self._clock() + STRIKES_TTL)
            return count

    async def clear_strikes(self, account_name: str) -> None:
        with self._lock:
            self._strikes.pop(account_name, None)

    async def cool_down(self, account_name: str, seconds: float) -> None:
        with self._lock:
            self._cool_until[account_name] = self._clock() + seconds

    async def cooling_down(self, account_name: str) -> float:
        with self._lock:
            return max(0.0, self._cool_until.get(account_name, 0.0) - self._clock())

    async def disable(self, identity: str) -> None:
        with self._lock:
            self._disabled.add(identity)

    async def enable(self, identity: str) -> None:
        with self._lock:
            self._disabled.discard(identity)

    async def is_disabled(self, identity: str) -> bool:
        with self._lock:
            return identity in self._disabled

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryLeases(accounts={len(self._held)})"
