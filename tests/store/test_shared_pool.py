"""SharedAccountPool: AccountPool's rules with leases, cooldowns, disabled accounts and affinity
shared by several workers through Redis (a real redis-server), or kept in one process."""

from __future__ import annotations

import asyncio
import contextlib
import random

import anyio
import httpx
import pytest
from clients import test_failover as failover
from clients.test_failover import CHAT, KEY_B, accounts, keys_used
from support import TEST_KEY, host_app, wait_for

from mimo_asgi import Account, AccountPool, MimoMiddleware, RouteRequest
from mimo_asgi.pool import MemoryLeases, RedisLeases, SharedAccountPool
from mimo_asgi.store import RedisStore, StoreUnavailable
from mimo_asgi.testing import Answer, key_fingerprint, serve_in_thread
from mimo_asgi.translate.errors import OpenAIError, from_upstream

CHAT_PATH = "/v1/chat/completions"
A, B = key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)
MODELS = {"gpt-5*": "mimo-v2.5-pro"}


def acct(name, key=None, limit=8, models=MODELS):
    return Account(name, key or f"sk-test-{name}-0123456789", base_url="http://127.0.0.1:9/v1", upstream="mimo",
                   models=models, max_concurrency=limit)


def ask(model="gpt-5.5", body=None, headers=None, exclude=()):
    return RouteRequest("chat", model, {"model": model, **(body or {})}, headers or {}, {}, frozenset(exclude))


async def let_go(lease):
    pending = lease.release()
    if pending is not None:
        await pending


# -- the pool on its own, with memory and with Redis ------------------------------------------

@pytest.fixture(params=["memory", "redis"])
async def state(request):
    if request.param == "memory":
        yield MemoryLeases()
        return
    leases = RedisLeases(request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"))
    yield leases
    await leases.aclose()


@pytest.mark.anyio
async def test_round_robin_capacity_and_refusals(state):
    pool = SharedAccountPool([acct("a", limit=1), acct("b", limit=1), acct("o3", models={"o3": "mimo-v2-pro"})],
                             state)
    assert await pool(ask("claude-3")) is None  # nobody serves it: not MiMo's request
    first, second = await pool(ask()), await pool(ask())
    assert [first.account.name, second.account.name] == ["a", "b"]
    assert await pool.in_flight() == 2 and await pool.in_flight("a") == 1
    with pytest.raises(OpenAIError) as busy:
        await pool(ask())
    assert busy.value.status == 503 and busy.value.code == "accounts_busy"
    assert busy.value.headers["retry-after"] == "1"
    assert await pool(ask(exclude={"a", "b"})) is None  # what is left does not serve gpt-5.5
    await let_go(first)
    assert first.release() is None  # only the first release counts
    assert (await pool(ask())).account.name == "a" and await pool.in_flight() == 2
    await let_go(second)


@pytest.mark.anyio
async def test_a_release_nobody_awaits_still_frees_the_slot_for_the_next_request(state):
    pool = SharedAccountPool([acct("a", limit=1)], state)
    for _ in range(3):  # release() called and never awaited: the slot is free for the next pick
        lease = await pool(ask())
        lease.release()
        assert await eventually(lambda: pool.in_flight(), 0)  # the release lands in its own time


@pytest.mark.anyio
async def test_cooldowns_backoff_and_disabling(state):
    accts = [acct("a"), acct("b")]
    pool = SharedAccountPool(accts, state)
    await pool.report(accts[0], OpenAIError(429, "slow down", headers={"retry-after": "30"}))
    assert 25 < await pool.cooling_down("a") <= 30 and await pool.cooling_down("b") == 0
    for _ in range(2):  # a is skipped while it cools down
        lease = await pool(ask())
        assert lease.account.name == "b"
        await let_go(lease)
    await pool.report(accts[1], OpenAIError(500, "boom"))
    assert 1 < await pool.cooling_down("b") <= 2
    await pool.report(accts[1], OpenAIError(502, "boom"))
    assert 3 < await pool.cooling_down("b") <= 4  # doubling
    # none is free: b rests after failures (a guess), a after MiMo's rate limit: b takes it anyway
    lease = await pool(ask())
    assert lease.account.name == "b"
    await let_go(lease)
    await pool.report(accts[1], OpenAIError(429, "slow down", headers={"retry-after": "20"}))
    with pytest.raises(OpenAIError) as limited:  # both rate limited: the client is told so, with the shortest wait
        await pool(ask())
    assert (limited.value.status, limited.value.code) == (429, "rate_limit_exceeded")
    assert limited.value.headers["retry-after"] == "20"
    await pool.report(accts[1], None)  # a success ends the run of failures
    await pool.report(accts[1], OpenAIError(503, "boom"))
    assert 1 < await pool.cooling_down("b") <= 2

    await pool.report(accts[0], OpenAIError(401, "bad key"))
    await pool.report(accts[1], OpenAIError(403, "forbidden"))
    assert await pool.disabled("a") and await pool.disabled("b")
    with pytest.raises(OpenAIError) as disabled:
        await pool(ask())
    assert disabled.value.status == 503 and disabled.value.code == "accounts_disabled"
    # the same name with a new key is a new account; enable() takes one back by hand
    assert not await SharedAccountPool([acct("a", key="sk-test-rotated-0123456789")], state).disabled("a")
    await pool.enable("b")
    assert not await pool.disabled("b")


@pytest.mark.anyio
async def test_affinity_first_unless_full_or_cooling(state):
    accts = [acct("a", limit=1), acct("b", limit=2)]
    pool = SharedAccountPool(accts, state)
    conv = ask(body={"prompt_cache_key": "conv-1"})
    await let_go(await pool(ask()))  # moves the round robin on: b would come first
    lease = await pool(conv)
    assert lease.account.name == "b" and await pool.affinity("pck:conv-1") == "b"
    await let_go(lease)
    await pool.remember("pck:conv-1", "a")
    await pool.remember("pck:conv-1", "nobody")  # unknown accounts are ignored
    assert await pool.affinity("pck:conv-1") == "a"
    await let_go(await pool(ask()))  # a: the round robin's turn is b again
    held = await pool(conv)  # round robin says b, the conversation says a
    assert held.account.name == "a"
    other = await pool(conv)  # a is full: b takes it, and the conversation moves there
    assert other.account.name == "b" and await pool.affinity("pck:conv-1") == "b"
    await let_go(held)
    await pool.report(accts[1], OpenAIError(429, "slow", headers={"retry-after": "60"}))
    moved = await pool(conv)
    assert moved.account.name == "a"
    await let_go(other)
    await let_go(moved)
    assert await pool.in_flight() == 0


# -- exactly AccountPool's decisions, in one process ------------------------------------------

ERRORS = [None, None, OpenAIError(429, "x", headers={"retry-after": "7"}), OpenAIError(429, "x"),
          OpenAIError(402, "x"), from_upstream(402, b"{}"), OpenAIError(500, "x"), OpenAIError(503, "x"),
          from_upstream(400, b"{}"), from_upstream(421, b"{}"), OpenAIError(401, "x"), from_upstream(403, b"{}")]


def _decision(result):
    if isinstance(result, OpenAIError):
        return ("error", result.status, result.code, result.headers.get("retry-after"))
    return None if result is None else result.account.name


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(6))
async def test_same_decisions_as_account_pool(seed, clock):
    rng = random.Random(seed)
    accts = [acct("a", limit=1), acct("b", limit=2), acct("c", limit=1, models={"gpt-5*": "m", "o3": "mimo-v2-pro"}),
             acct("d", limit=3, models={"o3": "mimo-v2-pro"})]
    # leases refresh on the real clock; this one jumps: let them outlive the run, as AccountPool's do
    old, new = AccountPool(accts, clock=clock), SharedAccountPool(accts, MemoryLeases(clock=clock), lease_ttl=1e9)
    held: list[tuple] = []
    keys = ["pck:k1", "pck:k2", "sid:s1"]
    for _ in range(400):
        op = rng.random()
        if op < 0.4:
            body = {"prompt_cache_key": rng.choice(["k1", "k2"])} if rng.random() < 0.5 else {}
            headers = {"session-id": "s1"} if rng.random() < 0.2 else {}
            request = ask(rng.choice(["gpt-5.5", "o3", "o3", "claude-3"]), body, headers,
                          rng.sample("abcd", rng.choice([0, 0, 1, 2])))
            outcomes = []
            for pool in (old, new):
                try:
                    result = pool(request)
                    result = await result if pool is new else result
                except OpenAIError as err:
                    result = err
                outcomes.append(result)
            assert _decision(outcomes[0]) == _decision(outcomes[1])
            if _decision(outcomes[0]) in tuple("abcd"):
                held.append(tuple(outcomes))
        elif op < 0.65 and held:
            for lease in held.pop(rng.randrange(len(held))):
                lease.release()
        elif op < 0.8:
            account, error = rng.choice(accts), rng.choice(ERRORS[:-2] if rng.random() < 0.9 else ERRORS)
            old.report(account, error)
            await new.report(account, error)
        elif op < 0.87:
            key, name = rng.choice(keys), rng.choice("abcde")
            old.remember(key, name)
            await new.remember(key, name)
        else:
            clock.advance(rng.choice([0.5, 3, 11, 40, 400]))
        for a in accts:
            assert old.in_flight(a.name) == await new.in_flight(a.name)
            assert old.cooling_down(a.name) == await new.cooling_down(a.name)
            assert old.disabled(a.name) == await new.disabled(a.name)
        for key in keys:
            assert old.affinity(key) == await new.affinity(key)


# -- leases that outlive their holder, or whose answer is lost ---------------------------------

@pytest.mark.anyio
async def test_a_long_request_keeps_its_slot_by_refreshing(redis_url, redis_prefix):
    holder = SharedAccountPool([acct("a", limit=1)], RedisLeases(redis_url, redis_prefix), lease_ttl=0.3)
    other = SharedAccountPool([acct("a", limit=1)], RedisLeases(redis_url, redis_prefix))
    try:
        lease = await holder(ask())
        await anyio.sleep(0.6)  # two lease lifetimes: only the refreshes keep it
        with pytest.raises(OpenAIError):
            await other(ask())
        await let_go(lease)
        assert await other.in_flight("a") == 0
    finally:
        await holder.aclose()
        await other.aclose()


class LostReply:
    """A store whose `take` does its work and then fails (or hangs) before answering."""

    def __init__(self, inner, *, hang=False):
        self.inner, self.hang = inner, hang

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def take(self, *args, **kwargs):
        taken = await self.inner.take(*args, **kwargs)
        assert taken.chosen is not None
        if self.hang:
            await anyio.sleep_forever()
        raise StoreUnavailable("Redis is unavailable (TimeoutError: reply lost)")


@pytest.mark.anyio
@pytest.mark.parametrize("hang", [False, True])
async def test_a_lost_reply_leaks_no_slot(state, hang):
    pool = SharedAccountPool([acct("a", limit=1)], LostReply(state, hang=hang))
    if hang:
        with anyio.move_on_after(0.2) as scope:
            await pool(ask())
        assert scope.cancelled_caught
    else:
        with pytest.raises(OpenAIError) as err:
            await pool(ask())
        assert err.value.code == "store_unavailable" and err.value.headers["retry-after"] == "1"
    assert await eventually(lambda: state.in_flight("a"), 0)


async def eventually(read, expected, timeout=5.0):
    with anyio.move_on_after(timeout):
        while await read() != expected:
            await anyio.sleep(0.01)
    return await read() == expected


@pytest.mark.anyio
async def test_redis_down(dead_redis_url):
    account = acct("a")
    pool = SharedAccountPool([account], RedisLeases(dead_redis_url))
    try:
        with pytest.raises(OpenAIError) as err:
            await pool(ask())
        assert err.value.status == 503 and err.value.code == "store_unavailable"
        assert err.value.headers["retry-after"] == "1"
        # the middleware's callbacks never raise: losing health or affinity records is not fatal
        await pool.report(account, OpenAIError(429, "x"))
        await pool.report(account, OpenAIError(401, "x"))
        await pool.remember("prev:resp_1", "a")
        with pytest.raises(StoreUnavailable):
            await pool.in_flight()
    finally:
        await pool.aclose()


# -- two workers on one Redis, in front of one fake MiMo ---------------------------------------

@contextlib.contextmanager
def worker(accts, leases_url, prefix, **options):
    """One worker: its own middleware, pool and Redis connections, under uvicorn in its own thread."""
    pool = SharedAccountPool(accts, RedisLeases(leases_url, prefix))
    mw = MimoMiddleware(host_app(), resolver=pool, api_key=None, seal_key="shared-secret", **options)
    with serve_in_thread(mw) as url:  # the middleware closes the pool on lifespan shutdown
        yield url


def probe(redis_url, prefix, accts, call, **pool_options):
    """Run `call(pool)` against the shared state from the test's thread (its own loop and client)."""

    async def run():
        pool = SharedAccountPool(accts, RedisLeases(redis_url, prefix), **pool_options)
        try:
            return await call(pool)
        finally:
            await pool.aclose()

    return asyncio.run(run())


def in_flight(redis_url, prefix, accts):
    return probe(redis_url, prefix, accts, lambda pool: pool.in_flight())


@pytest.fixture
def workers(fake_url, redis_url, redis_prefix):
    @contextlib.contextmanager
    def start(limit=8, redis_store=False):
        accts = [Account(a.name, a.api_key, base_url=a.base_url, upstream="mimo", models=MODELS, max_concurrency=limit)
                 for a in accounts(fake_url)]

        def options():  # each worker has its own connections: redis-py's belong to one event loop
            return {"store": RedisStore(redis_url, prefix=redis_prefix)} if redis_store else {}

        with worker(accts, redis_url, redis_prefix, **options()) as one, \
                worker(accts, redis_url, redis_prefix, **options()) as two:
            yield one, two, accts

    return start


def test_capacity_is_shared_across_workers(workers, fake, redis_url, redis_prefix):
    stalled = {**CHAT, "stream": True}
    fake.queue(Answer(text="held on a", stall_after=(2, 5)), Answer(text="held on b", stall_after=(2, 5)))
    with workers(limit=1) as (one, two, accts), httpx.Client(timeout=10) as http:
        with http.stream("POST", one + CHAT_PATH, json=stalled) as first:
            chunks_1 = first.iter_bytes()  # keep the iterators: dropping one would close its stream
            next(chunks_1)
            with http.stream("POST", two + CHAT_PATH, json=stalled) as second:
                chunks_2 = second.iter_bytes()
                next(chunks_2)
                assert keys_used(fake) == [A, B]  # worker 2 saw a held by worker 1
                assert in_flight(redis_url, redis_prefix, accts) == 2
                for url in (two, one):
                    refused = http.post(url + CHAT_PATH, json=CHAT)
                    assert refused.status_code == 503 and refused.json()["error"]["code"] == "accounts_busy"
                    assert int(refused.headers["retry-after"]) >= 1
                assert len(fake.requests) == 2
        assert wait_for(lambda: in_flight(redis_url, redis_prefix, accts) == 0)
        fake.queue(Answer(text="free again"))
        assert http.post(two + CHAT_PATH, json=CHAT).status_code == 200


def test_a_429_on_one_worker_cools_the_account_for_all(workers, fake, redis_url, redis_prefix):
    fake.queue(Answer(status=429, headers={"retry-after": "30"}), Answer(text="from b"),
               Answer(text="w2"), Answer(text="w2 again"))
    with workers() as (one, two, accts):
        assert httpx.post(one + CHAT_PATH, json=CHAT).status_code == 200
        assert keys_used(fake) == [A, B]
        for _ in range(2):  # worker 2's round robin starts at a, which is cooling down
            assert httpx.post(two + CHAT_PATH, json=CHAT).status_code == 200
        assert keys_used(fake)[2:] == [B, B]
        assert 25 < probe(redis_url, redis_prefix, accts, lambda pool: pool.cooling_down("a")) <= 30


def test_a_401_disables_the_account_for_all(workers, fake, redis_url, redis_prefix):
    fake.queue(Answer(status=401), Answer(text="from b"), Answer(text="w2"), Answer(status=401))
    with workers() as (one, two, accts):
        assert httpx.post(one + CHAT_PATH, json=CHAT).status_code == 200
        assert httpx.post(two + CHAT_PATH, json=CHAT).status_code == 200
        assert keys_used(fake) == [A, B, B]
        assert probe(redis_url, redis_prefix, accts, lambda pool: pool.disabled("a"))
        rejected = httpx.post(two + CHAT_PATH, json=CHAT)  # b's own key fails too: the gateway's fault
        assert rejected.status_code == 502 and rejected.json()["error"]["code"] == "upstream_account_rejected"
        refused = httpx.post(one + CHAT_PATH, json=CHAT)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "accounts_disabled"
        assert len(fake.requests) == 4


def test_affinity_and_chains_follow_across_workers(workers, fake, redis_url, redis_prefix):
    conv = {**CHAT, "prompt_cache_key": "conv-7"}
    fake.queue(*[Answer(text=f"answer {i}") for i in range(6)])
    with workers(redis_store=True) as (one, two, accts):
        assert httpx.post(one + CHAT_PATH, json=CHAT).status_code == 200  # a; worker 1's turn is b next
        assert httpx.post(one + CHAT_PATH, json=conv).status_code == 200  # b, remembered for conv-7
        assert httpx.post(two + CHAT_PATH, json=conv).status_code == 200  # round robin says a
        assert keys_used(fake) == [A, B, B]
        assert probe(redis_url, redis_prefix, accts, lambda pool: pool.affinity("pck:conv-7")) == "b"

        # a stored response on a (worker 1's turn); continued on worker 2, whose turn is b
        first = httpx.post(one + "/v1/responses", json={"model": "gpt-5.5", "input": "hi"}).json()
        second = httpx.post(two + "/v1/responses", json={"model": "gpt-5.5", "input": "more",
                                                          "previous_response_id": first["id"]})
        third = httpx.post(one + "/v1/responses", json={"model": "gpt-5.5", "input": "again",
                                                        "previous_response_id": second.json()["id"]})
        assert second.status_code == third.status_code == 200
        assert keys_used(fake)[3:] == [A, A, A]
        assert [m["role"] for m in fake.requests[-1].body["messages"]] == ["user", "assistant"] * 2 + ["user"]


def test_a_crashed_workers_slot_comes_back_after_lease_ttl(workers, fake, fake_url, redis_url, redis_prefix):
    accts = [Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS, max_concurrency=1)]

    async def crash(pool):  # a worker takes the only slot and dies with its event loop
        assert (await pool(ask())).account.name == "a"

    probe(redis_url, redis_prefix, accts, crash, lease_ttl=0.5)
    with worker(accts, redis_url, redis_prefix) as url:
        refused = httpx.post(url + CHAT_PATH, json=CHAT)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "accounts_busy"
        assert wait_for(lambda: in_flight(redis_url, redis_prefix, accts) == 0)
        fake.queue(Answer(text="mine now"))
        assert httpx.post(url + CHAT_PATH, json=CHAT).status_code == 200


def test_redis_down_answers_503_without_reaching_mimo(fake, fake_url, dead_redis_url):
    with worker(accounts(fake_url), dead_redis_url, "x:") as url:
        response = httpx.post(url + CHAT_PATH, json=CHAT, timeout=10)
    assert response.status_code == 503 and response.json()["error"]["code"] == "store_unavailable"
    assert response.headers["retry-after"] == "1" and fake.requests == []


def test_redis_stopping_mid_stream_does_not_break_it(fake, fake_url, own_redis):
    fake.queue(Answer(text="survives the store", chunk_size=4, stall_after=(2, 0.3)))
    with worker(accounts(fake_url), own_redis.url, "x:") as url, httpx.Client(timeout=10) as http:
        with http.stream("POST", url + CHAT_PATH, json={**CHAT, "stream": True}) as held:
            chunks = held.iter_bytes()
            text = next(chunks)
            own_redis.stop()  # the release at the end of this stream cannot reach Redis
            text += b"".join(chunks)
        events = failover.sse(text.decode())
        assert events[-1] == "[DONE]"
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]
                       if e["choices"]) == "survives the store"
        refused = http.post(url + CHAT_PATH, json=CHAT)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"


# -- the failover tests of tests/clients, against a SharedAccountPool on MemoryLeases ----------

class SyncView:
    """The inspection helpers of a MemoryLeases-backed pool, called from the test's thread."""

    def __init__(self, pool):
        self.pool = pool

    def __getattr__(self, name):
        method = getattr(self.pool, name)
        return lambda *args: asyncio.run(method(*args))


@pytest.fixture
def two(serve_gateway, fake_url):
    def start(first_url=None, **options):
        pool = SharedAccountPool(accounts(fake_url, first_url), MemoryLeases())
        url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k", **options)
        return url, SyncView(pool)

    return start


@pytest.fixture
def lone(serve_gateway, fake_url):
    def start(**options):
        pool = SharedAccountPool(accounts(fake_url)[:1], MemoryLeases())
        url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k", **options)
        return url, SyncView(pool)

    return start


test_memory_retryable_status_fails_over_and_cools_down = failover.test_retryable_status_fails_over_and_cools_down
test_memory_auth_failure_disables_the_account = failover.test_auth_failure_disables_the_account
test_memory_attempts_are_bounded = failover.test_attempts_are_bounded_and_the_last_error_is_returned
test_memory_session_affinity_across_turns_then_cooldown = failover.test_session_affinity_across_turns_then_cooldown
test_memory_a_lone_account_is_never_locked_out = failover.test_a_lone_account_is_never_locked_out
test_memory_rate_limits_stay_rate_limits = failover.test_rate_limits_stay_rate_limits
test_memory_lone_account_out_of_quota = failover.test_a_lone_account_out_of_quota_is_a_429_insufficient_quota
test_memory_capacity_is_503_accounts_busy = failover.test_capacity_is_503_accounts_busy
test_memory_rejected_key_is_the_gateways_fault = failover.test_mimo_rejecting_the_accounts_key_is_the_gateways_fault
