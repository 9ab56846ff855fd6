"""Shared pool state: leases up to a limit across instances, release, expiry, affinity."""

from __future__ import annotations

import time

import anyio
import pytest

from mimo_asgi.pool import Leases, MemoryLeases, RedisLeases
from mimo_asgi.store import StoreUnavailable, redis_client

pytestmark = pytest.mark.anyio


async def _eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await anyio.sleep(0.02)
    return await predicate()


@pytest.fixture
async def two_workers(redis_url, redis_prefix):
    """Two RedisLeases with their own clients on one Redis, as two workers would have."""
    clients = [redis_client(redis_url), redis_client(redis_url)]
    yield [RedisLeases(c, redis_prefix) for c in clients]
    for c in clients:
        await c.aclose()


async def test_acquire_up_to_the_limit_across_workers(two_workers):
    a, b = two_workers
    assert isinstance(a, Leases)
    tokens = [await a.acquire("acct", 3, 60), await b.acquire("acct", 3, 60), await a.acquire("acct", 3, 60)]
    assert all(tokens) and len(set(tokens)) == 3
    assert await b.acquire("acct", 3, 60) is None
    assert await a.acquire("other", 3, 60) is not None  # limits are per account
    assert await a.in_flight("acct") == await b.in_flight("acct") == 3

    assert await b.release("acct", tokens[0]) is True   # any worker may release
    assert await b.release("acct", tokens[0]) is False  # only once
    assert await b.in_flight("acct") == 2
    assert await b.acquire("acct", 3, 60) is not None


async def test_crashed_holders_slot_expires(two_workers):
    crashed, alive = two_workers
    assert await crashed.acquire("acct", 1, 0.2)  # never released
    assert await alive.acquire("acct", 1, 60) is None
    assert await _eventually(lambda: _acquired(alive))
    assert await alive.in_flight("acct") == 1


async def _acquired(leases):
    return await leases.acquire("acct", 1, 60) is not None


async def test_refresh_keeps_a_long_lease(two_workers, redis_prefix):
    a, b = two_workers
    token = await a.acquire("acct", 1, 0.3)
    assert await a.refresh("acct", token, 60) is True
    await anyio.sleep(0.5)
    assert await b.acquire("acct", 1, 60) is None
    assert await a.refresh("acct", "not-a-token", 60) is False
    assert 0 < await a.client.pttl(f"{redis_prefix}lease:acct") <= 60_000  # idle keys do not linger


async def test_affinity_with_ttl(two_workers):
    a, b = two_workers
    await a.affinity_set("session-1", "acct-2", 60)
    await a.affinity_set("session-2", "acct-1", 0.2)
    assert await b.affinity_get("session-1") == "acct-2"
    assert await b.affinity_get("unknown") is None
    long_key = "k" * 500
    await a.affinity_set(long_key, "acct-3", 60)
    assert await b.affinity_get(long_key) == "acct-3"
    assert await _eventually(lambda: _gone(b, "session-2"))


async def _gone(leases, key):
    return await leases.affinity_get(key) is None


async def test_redis_down_raises_store_unavailable(dead_redis_url):
    leases = RedisLeases(dead_redis_url, timeout=0.5)
    try:
        for call in (leases.acquire("acct", 1, 60), leases.release("acct", "t"), leases.in_flight("acct"),
                     leases.affinity_get("k"), leases.affinity_set("k", "acct", 60)):
            with pytest.raises(StoreUnavailable):
                await call
    finally:
        await leases.aclose()


async def test_memory_leases_same_behaviour(clock):
    leases = MemoryLeases(clock=clock)
    assert isinstance(leases, Leases)
    t1 = await leases.acquire("acct", 2, 10)
    t2 = await leases.acquire("acct", 2, 5)
    assert t1 and t2 and await leases.acquire("acct", 2, 10) is None
    assert await leases.release("acct", t1) is True and await leases.release("acct", t1) is False
    assert await leases.refresh("acct", t2, 20) is True
    clock.advance(15)
    assert await leases.in_flight("acct") == 1  # refreshed, still held
    clock.advance(10)
    assert await leases.in_flight("acct") == 0  # the holder "crashed": its slot expired
    assert await leases.refresh("acct", t2, 20) is False


async def test_memory_affinity_ttl_and_bound(clock):
    leases = MemoryLeases(clock=clock, max_affinity=2)
    await leases.affinity_set("a", "acct-1", 10)
    await leases.affinity_set("b", "acct-2", 100)
    await leases.affinity_set("c", "acct-3", 100)
    assert await leases.affinity_get("a") is None  # the oldest key made room
    assert await leases.affinity_get("b") == "acct-2"
    clock.advance(150)
    assert await leases.affinity_get("c") is None
