"""One rule for an account's health, the same in both pools: what an error says about the
account, how long it rests, and what the client is told when no account can take a request."""

from __future__ import annotations

import pytest
from pool_support import FakeClock, acct, ask, let_go, local_pool, memory_pool, settled

from mimo_asgi.pool import (
    DISABLE,
    FAILING,
    MAX_PAUSE,
    OUT_OF_QUOTA,
    RATE_LIMITED,
    account_fault,
    cooldown_seconds,
)
from mimo_asgi.pool._health import DISABLED, FULL, Standing, fallback, refusal
from mimo_asgi.translate.errors import OpenAIError, from_upstream, stream_truncated, upstream_timeout

POOLS = {"AccountPool": local_pool, "SharedAccountPool": memory_pool}


def test_what_an_error_says_about_its_account():
    assert account_fault(None) is None
    assert account_fault(from_upstream(401, b"{}")) == DISABLE  # a 502 to the client, MiMo said 401
    assert account_fault(from_upstream(403, b"{}")) == DISABLE
    assert account_fault(from_upstream(429, b"{}")) == RATE_LIMITED
    assert account_fault(from_upstream(402, b"{}")) == OUT_OF_QUOTA  # a 429 to the client
    assert account_fault(from_upstream(500, b"{}")) == FAILING
    assert account_fault(from_upstream(503, b"{}")) == FAILING
    assert account_fault(upstream_timeout("x")) == FAILING
    assert account_fault(stream_truncated("x")) == FAILING
    # the request's own errors say nothing against the account
    assert account_fault(from_upstream(400, b"{}")) is None
    assert account_fault(from_upstream(404, b"{}")) is None
    assert account_fault(from_upstream(421, b"{}")) is None  # MiMo's content filter
    # errors made without an upstream status are judged by the status the client sees
    assert account_fault(OpenAIError(401, "x")) == DISABLE and account_fault(OpenAIError(429, "x")) == RATE_LIMITED


def test_the_pauses_double_up_to_their_cap_and_retry_after_wins():
    fail, limited = OpenAIError(500, "x"), OpenAIError(429, "x")
    assert [cooldown_seconds(fail, n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert [cooldown_seconds(limited, n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert cooldown_seconds(OpenAIError(402, "x"), 1) == 10
    assert cooldown_seconds(OpenAIError(429, "x", headers={"retry-after": "7"}), 5) == 7
    assert cooldown_seconds(fail, 10**9) == MAX_PAUSE  # any count: the exponent stops growing


@pytest.mark.anyio
@pytest.mark.parametrize("make", list(POOLS.values()), ids=list(POOLS))
async def test_a_long_run_of_failures_rests_the_account_at_most_the_cap(make):
    """AccountPool raised OverflowError at the 1,025th failure in a row (2.0 * 2 ** 1024)."""
    clock = FakeClock()
    account = acct("a")
    pool = make([account], clock)
    for strike in range(1, 1101):
        await settled(pool.report(account, OpenAIError(500, "boom")))
        assert await settled(pool.cooling_down("a")) == cooldown_seconds(OpenAIError(500, "x"), strike)
    assert await settled(pool.cooling_down("a")) == MAX_PAUSE


@pytest.mark.anyio
@pytest.mark.parametrize("make", list(POOLS.values()), ids=list(POOLS))
async def test_both_pools_rest_an_account_alike(make):
    clock = FakeClock()
    account = acct("a")
    pool = make([account], clock)
    sequence = [OpenAIError(500, "x"), OpenAIError(503, "x"), OpenAIError(429, "x"), None, OpenAIError(429, "x"),
                OpenAIError(402, "x", headers={"retry-after": "3"}), OpenAIError(400, "x"), OpenAIError(502, "x")]
    expected = [2, 4, 40, 40, 10, 3, 3, 8]  # a success ends the run; a 400 changes nothing
    seen = []
    for error in sequence:
        await settled(pool.report(account, error))
        seen.append(await settled(pool.cooling_down("a")))
    assert seen == expected


def test_choosing_when_no_account_is_free():
    # resting after failures, with room: the one whose rest ends first (the first of equals)
    assert fallback([Standing(RATE_LIMITED, 1.0), Standing(FAILING, 5.0), Standing(FAILING, 3.0),
                     Standing(FAILING, 3.0)]) == 2
    assert fallback([Standing(FAILING, 1.0, room=False), Standing(DISABLED), Standing(FULL, room=False)]) is None
    assert fallback([Standing(RATE_LIMITED, 1.0), Standing(OUT_OF_QUOTA, 1.0)]) is None


def test_what_the_client_is_told_when_no_account_can_take_it():
    disabled = refusal([Standing(DISABLED), Standing(DISABLED)])
    assert (disabled.status, disabled.code, disabled.type) == (503, "accounts_disabled", "server_error")
    busy = refusal([Standing(FULL, room=False), Standing(RATE_LIMITED, 30.0), Standing(DISABLED)])
    assert (busy.status, busy.code, busy.headers) == (503, "accounts_busy", {"retry-after": "1"})
    limited = refusal([Standing(RATE_LIMITED, 29.2), Standing(OUT_OF_QUOTA, 12.5), Standing(DISABLED)])
    assert (limited.status, limited.code, limited.type) == (429, "rate_limit_exceeded", "rate_limit_error")
    assert limited.headers == {"retry-after": "13"}
    broke = refusal([Standing(OUT_OF_QUOTA, 0.2), Standing(OUT_OF_QUOTA, 9.0)])
    assert (broke.status, broke.code, broke.type, broke.headers) == (429, "insufficient_quota", "insufficient_quota",
                                                                     {"retry-after": "1"})


@pytest.mark.anyio
@pytest.mark.parametrize("make", list(POOLS.values()), ids=list(POOLS))
async def test_a_lone_account_resting_after_a_failure_still_takes_requests(make):
    clock = FakeClock()
    account = acct("a", limit=1)
    pool = make([account], clock)
    await settled(pool.report(account, OpenAIError(502, "boom")))
    assert await settled(pool.cooling_down("a")) == 2
    lease = await settled(pool(ask()))  # no other account could take it: it goes upstream
    assert lease.account.name == "a"
    with pytest.raises(OpenAIError) as busy:  # capacity is still a limit
        await settled(pool(ask()))
    assert (busy.value.status, busy.value.code) == (503, "accounts_busy")
    await let_go(lease)
    await settled(pool.report(account, OpenAIError(429, "slow", headers={"retry-after": "30"})))
    with pytest.raises(OpenAIError) as limited:  # MiMo said so: the client is told, MiMo is not asked
        await settled(pool(ask()))
    assert (limited.value.status, limited.value.code, limited.value.headers) == (
        429, "rate_limit_exceeded", {"retry-after": "30"})
    clock.advance(30)
    await let_go(await settled(pool(ask())))
    await settled(pool.report(account, OpenAIError(401, "bad key")))
    with pytest.raises(OpenAIError) as disabled:
        await settled(pool(ask()))
    assert (disabled.value.status, disabled.value.code) == (503, "accounts_disabled")


@pytest.mark.anyio
@pytest.mark.parametrize("make", list(POOLS.values()), ids=list(POOLS))
async def test_other_accounts_first_then_the_failing_one_whose_rest_ends_first(make):
    clock = FakeClock()
    accounts = [acct("a"), acct("b"), acct("c")]
    pool = make(accounts, clock)
    await settled(pool.report(accounts[0], OpenAIError(500, "x")))  # a: 2 s
    for _ in range(3):  # b and c take turns; a is skipped while they can take it
        lease = await settled(pool(ask()))
        assert lease.account.name in "bc"
        await let_go(lease)
    await settled(pool.report(accounts[1], OpenAIError(500, "x")))
    await settled(pool.report(accounts[1], OpenAIError(500, "x")))  # b: 4 s
    await settled(pool.report(accounts[2], OpenAIError(429, "x")))  # c: rate limited, 10 s
    for _ in range(3):
        lease = await settled(pool(ask()))
        assert lease.account.name == "a"
        await let_go(lease)
    clock.advance(2)  # a rests no more: a free account, as usual
    assert (await settled(pool(ask()))).account.name == "a"
