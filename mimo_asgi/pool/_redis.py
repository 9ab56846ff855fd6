"""`RedisLeases`: the shared pool's state in Redis, for several workers and machines.

One sorted set per account holds its leases (member = lease token, score = expiry in Redis
server milliseconds), so a worker that crashes holding slots loses them when they expire; the
Redis clock is the only clock, so workers' clocks may differ. Holders of long requests call
`refresh` before `ttl` runs out. A request costs two round trips: `take` (pick and lease in one
script) and `finish` (release, health and affinity in one script).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from ..store._redis_client import DEFAULT_TIMEOUT, close_client, redis_client, unavailable_on_error
from ._health import DISABLED, FAILING, FULL, STRIKES_TTL, Standing
from ._state import Candidate, Health, Taken

_MAX_KEY = 200  # affinity keys longer than this are hashed


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _affinity_key(key: str) -> str:
    return key if len(key) <= _MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# Every script that reads the clock starts with this: `now` in Redis server milliseconds,
# `live(lease)` drops a lease set's expired slots and counts the rest, and `expire_with_last`
# lets a lease set expire with its longest-lived lease, so idle accounts leave nothing behind.
_PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(lease)
  redis.call('ZREMRANGEBYSCORE', lease, '-inf', now)
  return redis.call('ZCARD', lease)
end
local function expire_with_last(lease)
  local last = redis.call('ZRANGE', lease, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', lease, tonumber(last[2])) end
end
"""
# KEYS[1] lease set; ARGV: limit, ttl ms, token.
_ACQUIRE = _PRELUDE + """
if live(KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
expire_with_last(KEYS[1])
return 1
"""
# KEYS[1] lease set; ARGV: ttl ms, token.
_REFRESH = _PRELUDE + """
live(KEYS[1])
local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
expire_with_last(KEYS[1])
return changed
"""
_IN_FLIGHT = _PRELUDE + "return live(KEYS[1])"
# The scripts name the kinds of rest as pool/_health.py does: 'rate', 'quota', 'fail'.
# KEYS: disabled set, affinity key, then per candidate: lease set, cooldown key, strikes key.
# ARGV: lease ttl ms, token, affinity ttl ms (0: no affinity), then per candidate: name,
# limit, identity. The candidates are tried in the given order, the remembered account first;
# when none is free, the one resting after failures (not rate limits) with room whose rest
# ends first takes it (see pool/_health.py). Returns {index, strikes} when a slot was taken,
# else {0, standing per candidate}: 'disabled', 'full', or '<kind>:<ms left>:<room 1/0>'.
_TAKE = _PRELUDE + """
local ttl, token, aff_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local n = (#KEYS - 2) / 3
local remembered = false
if aff_ttl > 0 then remembered = redis.call('GET', KEYS[2]) end
local order = {}
for i = 1, n do if ARGV[3 * i + 1] == remembered then table.insert(order, i) end end
for i = 1, n do if ARGV[3 * i + 1] ~= remembered then table.insert(order, i) end end
local function take(i)
  local lease = KEYS[3 * i]
  redis.call('ZADD', lease, now + ttl, token)
  expire_with_last(lease)
  if aff_ttl > 0 then redis.call('SET', KEYS[2], ARGV[3 * i + 1], 'PX', aff_ttl) end
  return {i, tonumber(redis.call('GET', KEYS[3 * i + 2]) or '0')}
end
local states = {0}
local fallback, fallback_left = nil, nil
for _, i in ipairs(order) do
  local room = live(KEYS[3 * i]) < tonumber(ARGV[3 * i + 2])
  if redis.call('SISMEMBER', KEYS[1], ARGV[3 * i + 3]) == 1 then
    states[i + 1] = 'disabled'
  else
    local left = redis.call('PTTL', KEYS[3 * i + 1])
    if left > 0 then
      local kind = redis.call('GET', KEYS[3 * i + 1])
      if kind ~= 'rate' and kind ~= 'quota' then kind = 'fail' end
      if kind == 'fail' and room and (fallback == nil or left < fallback_left) then
        fallback, fallback_left = i, left
      end
      states[i + 1] = kind .. ':' .. left .. ':' .. (room and '1' or '0')
    elseif room then
      return take(i)
    else
      states[i + 1] = 'full'
    end
  end
end
if fallback then return take(fallback) end
return states
"""
# KEYS: lease set, strikes key, cooldown key, disabled set, affinity key.
# ARGV: token ('' : none to free), fault ('' : record nothing, 'ok', 'disable', or the kind of
# rest), identity, strikes ttl ms, account name, affinity ttl ms (0: none), then the pauses in
# ms after the 1st, 2nd, ... failure in a row (the last repeats).
_FINISH = """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local fault = ARGV[2]
if fault == 'ok' then
  redis.call('DEL', KEYS[2])
elseif fault == 'disable' then
  redis.call('SADD', KEYS[4], ARGV[3])
elseif fault ~= '' then
  local count = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('SET', KEYS[3], fault, 'PX', ARGV[6 + math.min(count, #ARGV - 6)])
end
if tonumber(ARGV[6]) > 0 then redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[6]) end
return 0
"""


def _standing(raw: bytes | str) -> Standing:
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text == "disabled":
        return Standing(DISABLED)
    if text == "full":
        return Standing(FULL, room=False)
    kind, left, room = text.split(":")
    return Standing(kind, int(left) / 1000, room == "1")


class RedisLeases:
    """Pool state in Redis under `prefix`: `<prefix>lease:<account>` (slots),
    `<prefix>aff:<key>` (affinity), `<prefix>cool:<account>` (the kind of rest, `PX` expiry),
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
        self._finish = self.client.register_script(_FINISH)

    def _lease_key(self, account_name: str) -> str:
        return f"{self.prefix}lease:{account_name}"

    def _affinity(self, key: str | None) -> str:
        return f"{self.prefix}aff:{_affinity_key(key)}" if key is not None else f"{self.prefix}aff:"

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
            value = await self.client.get(self._affinity(key))
        return value.decode() if isinstance(value, bytes) else value

    async def affinity_set(self, key: str, account_name: str, ttl: float) -> None:
        with unavailable_on_error():
            await self.client.set(self._affinity(key), account_name, px=_ms(ttl))

    async def take(self, candidates: Sequence[Candidate], ttl: float, token: str,
                   affinity: tuple[str, float] | None = None) -> Taken:
        """Hold a slot for `token` on the first candidate (the one remembered for `affinity[0]`
        first) that is enabled, not resting and below its limit, else on the one resting after
        failures with room whose rest ends first; on success remember it for `affinity[0]` for
        `affinity[1]` seconds. Atomic: one script, one round trip."""
        p = self.prefix
        keys = [f"{p}disabled", self._affinity(affinity[0] if affinity else None)]
        args: list[Any] = [_ms(ttl), token, _ms(affinity[1]) if affinity else 0]
        for c in candidates:
            keys += [self._lease_key(c.name), f"{p}cool:{c.name}", f"{p}strikes:{c.name}"]
            args += [c.name, c.limit, c.identity]
        with unavailable_on_error():
            reply = await self._take(keys=keys, args=args)
        if reply[0]:
            return Taken(int(reply[0]) - 1, int(reply[1]) > 0)
        return Taken(None, False, tuple(_standing(s) for s in reply[1:]))

    async def finish(self, account_name: str, token: str | None, health: Health | None,
                     affinity: tuple[str, float] | None = None) -> None:
        """In one script (one round trip): free `token`'s slot (when given), record `health`
        (when given) and remember the account for `affinity[0]` for `affinity[1]` seconds."""
        p = self.prefix
        fault, identity = "", ""
        pauses: tuple[float, ...] = ()
        if health is not None:
            fault, identity, pauses = health.fault or "ok", health.identity, health.pauses
            if fault not in ("ok", "disable") and not pauses:
                raise ValueError("a cooldown needs its pauses")
        keys = [self._lease_key(account_name), f"{p}strikes:{account_name}", f"{p}cool:{account_name}",
                f"{p}disabled", self._affinity(affinity[0] if affinity else None)]
        args: list[Any] = [token or "", fault, identity, _ms(STRIKES_TTL), account_name,
                           _ms(affinity[1]) if affinity else 0, *(_ms(pause) for pause in pauses)]
        with unavailable_on_error():
            await self._finish(keys=keys, args=args)

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

    async def cool_down(self, account_name: str, seconds: float, kind: str = FAILING) -> None:
        """No new slots on the account for `seconds` from now while another account can take
        them (replacing any earlier cooldown); `kind` says why (see pool/_health.py)."""
        key = f"{self.prefix}cool:{account_name}"
        with unavailable_on_error():
            if seconds > 0:
                await self.client.set(key, kind, px=_ms(seconds))
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
