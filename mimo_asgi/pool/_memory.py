"""`MemoryLeases`: the shared pool's state kept in one process (`RedisLeases`' interface)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from ._health import DISABLE, DISABLED, FAILING, FULL, STRIKES_TTL, Standing, fallback
from ._state import Candidate, Health, Taken


class MemoryLeases:
    """The same interface for one process; `clock` (monotonic seconds) is injectable.
    At most `max_affinity` affinity keys are kept (least recently set go first)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_affinity: int = 100_000) -> None:
        self._clock = clock
        self._held: dict[str, dict[str, float]] = {}  # account -> token -> expires
        self._affinity: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_affinity = max_affinity
        self._cool: dict[str, tuple[float, str]] = {}  # account -> (rest ends, kind)
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
            standings: list[Standing] = [Standing(FULL, room=False)] * len(candidates)
            for i in order:
                c = candidates[i]
                held = self._live(c.name)
                room = len(held) < c.limit
                ends, kind = self._cool.get(c.name, (0.0, FAILING))
                if c.identity in self._disabled:
                    standings[i] = Standing(DISABLED, room=room)
                elif ends > now:
                    standings[i] = Standing(kind, ends - now, room)
                elif room:
                    return self._hold(i, c, held, now + ttl, token, affinity)
                else:
                    standings[i] = Standing(FULL, room=False)
            # same choice as the Redis script: the order it was tried in, the first of equals
            ordered = [standings[i] for i in order]
            chosen = fallback(ordered)
            if chosen is not None:
                c = candidates[order[chosen]]
                return self._hold(order[chosen], c, self._live(c.name), now + ttl, token, affinity)
            return Taken(None, False, tuple(standings))

    def _hold(self, index: int, c: Candidate, held: dict[str, float], expires: float, token: str,
              affinity: tuple[str, float] | None) -> Taken:
        held[token] = expires
        if affinity:
            self._affinity_set(affinity[0], c.name, affinity[1])
        return Taken(index, self._strike_count(c.name) > 0)

    async def finish(self, account_name: str, token: str | None, health: Health | None,
                     affinity: tuple[str, float] | None = None) -> None:
        self.finish_nowait(account_name, token, health, affinity)

    def finish_nowait(self, account_name: str, token: str | None, health: Health | None,
                      affinity: tuple[str, float] | None = None) -> None:
        """`finish` without awaiting: done when this returns."""
        with self._lock:
            if token is not None:
                self._live(account_name).pop(token, None)
            if health is not None:
                self._record(account_name, health)
            if affinity is not None:
                self._affinity_set(affinity[0], account_name, affinity[1])

    def _record(self, account_name: str, health: Health) -> None:
        if health.fault is None:
            self._strikes.pop(account_name, None)
        elif health.fault == DISABLE:
            self._disabled.add(health.identity)
        else:
            count = self._strike_count(account_name) + 1
            now = self._clock()
            self._strikes[account_name] = (count, now + STRIKES_TTL)
            self._cool[account_name] = (now + health.pauses[min(count, len(health.pauses)) - 1], health.fault)

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

    async def cool_down(self, account_name: str, seconds: float, kind: str = FAILING) -> None:
        with self._lock:
            self._cool[account_name] = (self._clock() + seconds, kind)

    async def cooling_down(self, account_name: str) -> float:
        with self._lock:
            return max(0.0, self._cool.get(account_name, (0.0, FAILING))[0] - self._clock())

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

