"""Helpers for tests of the account pools (importable as `pool_support`: tests/ is on sys.path)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from mimo_asgi import Account, AccountPool, RouteRequest, SharedAccountPool
from mimo_asgi.pool import MemoryLeases

MODELS = {"gpt-5*": "mimo-v2.5-pro"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def acct(name: str, key: str | None = None, limit: int = 8, models: dict[str, str] = MODELS,
         base_url: str = "http://127.0.0.1:9/v1") -> Account:
    return Account(name, key or f"sk-test-{name}-0123456789", base_url=base_url, upstream="mimo", models=models,
                   max_concurrency=limit)


def ask(model: str = "gpt-5.5", body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        exclude: tuple[str, ...] | set[str] = ()) -> RouteRequest:
    return RouteRequest("chat", model, {"model": model, **(body or {})}, headers or {}, {}, frozenset(exclude))


async def settled(value: Any) -> Any:
    """`value`, awaited when it is awaitable (the pools differ: AccountPool is sync)."""
    return await value if inspect.isawaitable(value) else value


async def let_go(lease: Any) -> None:
    await settled(lease.release())


def local_pool(accounts: list[Account], clock: FakeClock) -> AccountPool:
    return AccountPool(accounts, clock=clock)


def memory_pool(accounts: list[Account], clock: FakeClock) -> SharedAccountPool:
    # leases refresh on the real clock; this one jumps: let them outlive the test, as AccountPool's do
    return SharedAccountPool(accounts, MemoryLeases(clock=clock), lease_ttl=1e9)


class SyncView:
    """A MemoryLeases-backed SharedAccountPool seen from a test's thread: its coroutine methods
    run to completion there (MemoryLeases does no I/O, so any event loop will do)."""

    def __init__(self, pool: SharedAccountPool) -> None:
        self.pool = pool

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.pool, name)
        return lambda *args: asyncio.run(method(*args))
