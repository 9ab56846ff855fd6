"""Account pools: which MiMo account serves a request, and the state that decides it.

`AccountPool` keeps its leases, cooldowns, disabled accounts and affinity in one process;
`SharedAccountPool` keeps them in a store that several workers share (`RedisLeases`), or in
`MemoryLeases` for one process. Both follow one rule for an account's health and for what a
client is told when no account can take its request (`_health.py`).
"""

from ._health import (
    DISABLE,
    FAILING,
    MAX_PAUSE,
    OUT_OF_QUOTA,
    RATE_LIMITED,
    STRIKES_TTL,
    Standing,
    account_fault,
    cooldown_seconds,
    pauses,
)
from ._hooks import ResolverHooks
from ._local import AccountPool, PoolLease
from ._memory import MemoryLeases
from ._redis import RedisLeases
from ._shared import SharedAccountPool, SharedLease
from ._state import Candidate, Health, Leases, PoolState, Taken

__all__ = [
    "DISABLE", "FAILING", "MAX_PAUSE", "OUT_OF_QUOTA", "RATE_LIMITED", "STRIKES_TTL", "AccountPool", "Candidate",
    "Health", "Leases", "MemoryLeases", "PoolLease", "PoolState", "RedisLeases", "ResolverHooks", "SharedAccountPool", "SharedLease",
    "Standing", "Taken", "account_fault", "cooldown_seconds", "pauses",
]
