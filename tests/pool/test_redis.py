"""The shared pool on a real Redis: two round trips per MiMo request (the pick, then one
`finish` for release, health and affinity), and the Redis scripts apply the pools' one rule."""

from __future__ import annotations

import pytest
from pool_support import acct, ask

from mimo_asgi import SharedAccountPool
from mimo_asgi.pool import RedisLeases, ResolverHooks, cooldown_seconds
from mimo_asgi.translate.errors import OpenAIError, from_upstream

pytestmark = pytest.mark.anyio


class Counter:
    round_trips = 0


@pytest.fixture
async def counted(redis_url, redis_prefix):
    """(a RedisLeases whose client counts what it sends to Redis, the counter)."""
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.connection import Connection

    counter = Counter()

    class Counting(Connection):
        async def send_packed_command(self, command, check_health=True):
            counter.round_trips += 1  # one send per command, and one per pipeline
            return await super().send_packed_command(command, check_health)

    client = Redis(connection_pool=ConnectionPool.from_url(redis_url, connection_class=Counting))
    yield RedisLeases(client, redis_prefix), counter
    await client.aclose()


async def _warm(pool):
    """Load the scripts (the first call of each may cost an extra EVAL), and leave no trace."""
    await pool.leases.finish("warm", None, None)
    lease = await pool(ask(body={"prompt_cache_key": "warm"}))
    await lease.finish(None)


async def test_a_request_costs_two_round_trips_whatever_its_end(counted):
    leases, counter = counted
    accounts = [acct("a"), acct("b")]
    pool = SharedAccountPool(accounts, leases)
    await _warm(pool)
    ends = [
        (None, "prev:resp_1"),  # a success whose response was stored: affinity for the next turn
        (from_upstream(500, b"{}"), None),  # a failure: one more strike, a rest
        (None, None),  # a success on an account with failures on record: the strikes go
        (from_upstream(401, b"{}"), None),  # MiMo rejected the key: disabled
        (from_upstream(400, b"{}"), "prev:resp_2"),  # the request's own error: no health change
    ]
    served = []
    for error, remember in ends:
        before = counter.round_trips
        lease = await pool(ask(body={"prompt_cache_key": "conv"}))
        served.append(lease.account.name)
        await ResolverHooks(pool).finish(lease, lease.account, error, remember=remember)
        assert counter.round_trips - before == 2, (error, remember)
    assert await pool.affinity("prev:resp_1") == served[0] and await pool.affinity("prev:resp_2") == served[4]
    assert served[4] != served[3] and await pool.disabled(served[3]) and not await pool.disabled(served[4])
    assert await pool.cooling_down(served[1]) > 0 and await pool.in_flight() == 0


async def test_finish_records_the_strike_and_the_rest_by_the_one_rule(counted):
    leases, _ = counted
    account = acct("a")
    pool = SharedAccountPool([account], leases)
    for strike in range(1, 12):
        lease = await pool(ask())  # a lone account resting after failures still takes requests
        await lease.finish(OpenAIError(503, "busy"))
        left = await pool.cooling_down("a")
        assert cooldown_seconds(OpenAIError(503, "x"), strike) - 0.5 < left <= cooldown_seconds(OpenAIError(503, "x"),
                                                                                                   strike)
    assert await pool.in_flight() == 0
    await pool.report(account, OpenAIError(429, "x", headers={"retry-after": "40"}))
    with pytest.raises(OpenAIError) as limited:  # rate limited: told, not asked
        await pool(ask())
    assert (limited.value.status, limited.value.code) == (429, "rate_limit_exceeded")
    assert limited.value.headers["retry-after"] == "40"
    await pool.report(account, from_upstream(402, b"{}"))
    with pytest.raises(OpenAIError) as broke:
        await pool(ask())
    assert (broke.value.status, broke.value.code) == (429, "insufficient_quota")
    assert broke.value.headers["retry-after"] == "300"  # the 13th failure in a row: the cap


async def test_release_after_finish_does_nothing(counted):
    leases, counter = counted
    pool = SharedAccountPool([acct("a", limit=1)], leases)
    await _warm(pool)
    lease = await pool(ask())
    await lease.finish(None)
    before = counter.round_trips
    assert lease.release() is None and lease.finish(OpenAIError(500, "x")) is None
    assert counter.round_trips == before and await pool.cooling_down("a") == 0
