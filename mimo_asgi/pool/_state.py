"""What a shared pool keeps in its store, as protocols: `Leases` (concurrency slots and
affinity) and `PoolState` (plus cooldowns, failure counts and disabled accounts). `RedisLeases`
and `MemoryLeases` implement both; implementations backed by a server raise `StoreUnavailable`
when it cannot be reached."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from ._health import Standing


@runtime_checkable
class Leases(Protocol):
    """Per-account concurrency slots and key -> account affinity."""

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
    """What `take` did. `chosen`: the index of the candidate now holding the slot (None: no
    candidate could take it); `struck`: that account has failures on record; `standings`, when
    none was taken, one per candidate (see `Standing`)."""

    chosen: int | None
    struck: bool = False
    standings: tuple[Standing, ...] = ()


class Health(NamedTuple):
    """What `finish` records about an account: `fault` None is a success (its run of failures
    ends); DISABLE adds `identity` to the disabled set; a cooldown kind counts one more failure
    in a row and rests the account for `pauses[min(count, len(pauses)) - 1]` seconds."""

    identity: str
    fault: str | None
    pauses: tuple[float, ...] = ()


@runtime_checkable
class PoolState(Leases, Protocol):
    """`Leases` plus what `SharedAccountPool` keeps: cooldowns, failure counts, disabled accounts."""

    async def take(self, candidates: Sequence[Candidate], ttl: float, token: str,
                   affinity: tuple[str, float] | None = None) -> Taken: ...

    async def finish(self, account_name: str, token: str | None, health: Health | None,
                     affinity: tuple[str, float] | None = None) -> None: ...

    async def release_any(self, account_names: Iterable[str], token: str) -> None: ...

    async def strike(self, account_name: str) -> int: ...

    async def clear_strikes(self, account_name: str) -> None: ...

    async def cool_down(self, account_name: str, seconds: float, kind: str = ...) -> None: ...

    async def cooling_down(self, account_name: str) -> float: ...

    async def disable(self, identity: str) -> None: ...

    async def enable(self, identity: str) -> None: ...

    async def is_disabled(self, identity: str) -> bool: ...

    async def aclose(self) -> None: ...
