"""A resolver's optional hooks (`report`, `remember`, `aclose`), declared on the Resolver
protocol, found once by `ResolverHooks` and called the same way whatever the resolver has."""

from __future__ import annotations

import pytest
from pool_support import FakeClock, acct, ask, local_pool, memory_pool, settled

from mimo_asgi.accounts import Closes, FinishingLease, Lease, Remembers, Reports
from mimo_asgi.pool import ResolverHooks
from mimo_asgi.translate.errors import OpenAIError, from_upstream

pytestmark = pytest.mark.anyio
ACCOUNT = acct("a")


class PlainLease:
    def __init__(self, log):
        self.account, self.log = ACCOUNT, log

    def release(self):
        self.log.append(("release",))


class SyncHooks:
    def __init__(self):
        self.log = []

    def __call__(self, request):
        return PlainLease(self.log)

    def report(self, account, error):
        self.log.append(("report", account.name, error.code if error else None))

    def remember(self, key, account_name):
        self.log.append(("remember", key, account_name))


class AsyncHooks(SyncHooks):
    async def report(self, account, error):
        super().report(account, error)

    async def remember(self, key, account_name):
        super().remember(key, account_name)

    async def aclose(self):
        self.log.append(("aclose",))


def test_the_hooks_are_declared_as_protocols():
    assert isinstance(SyncHooks(), Reports) and isinstance(SyncHooks(), Remembers)
    assert not isinstance(SyncHooks(), Closes) and isinstance(AsyncHooks(), Closes)
    assert not isinstance(lambda request: None, Reports)
    assert isinstance(PlainLease([]), Lease) and not isinstance(PlainLease([]), FinishingLease)
    assert isinstance(local_pool([ACCOUNT], FakeClock())(ask()), FinishingLease)


@pytest.mark.parametrize("resolver_kind", [SyncHooks, AsyncHooks])
async def test_finish_calls_report_remember_then_release(resolver_kind):
    resolver = resolver_kind()
    hooks = ResolverHooks(resolver)
    lease = resolver(ask())
    await settled(hooks.finish(lease, lease.account, from_upstream(503, b"{}"), remember="prev:resp_1"))
    await settled(hooks.finish(lease, lease.account, None))
    # the request's own error (a 400, MiMo's content filter) is a success for the account
    await settled(hooks.finish(lease, lease.account, from_upstream(421, b"{}")))
    assert resolver.log == [("report", "a", "upstream_error"), ("remember", "prev:resp_1", "a"), ("release",),
                            ("report", "a", None), ("release",), ("report", "a", None), ("release",)]
    await hooks.aclose()
    assert resolver.log[-1] == (("aclose",) if resolver_kind is AsyncHooks else ("release",))


async def test_a_resolver_without_hooks_only_releases():
    log = []
    hooks = ResolverHooks(lambda request: PlainLease(log))
    assert hooks.finish(PlainLease(log), ACCOUNT, OpenAIError(500, "x"), remember="prev:x") is None
    assert hooks.finish(None, ACCOUNT, None) is None  # a bare Account: nothing to do
    await hooks.report(ACCOUNT, None)
    await hooks.remember("k", "a")
    await hooks.aclose()
    assert log == [("release",)]


async def test_a_release_still_runs_when_a_hook_fails():
    class Failing(SyncHooks):
        def report(self, account, error):
            raise RuntimeError("hook broke")

    resolver = Failing()
    with pytest.raises(RuntimeError):
        await settled(ResolverHooks(resolver).finish(resolver(ask()), ACCOUNT, None))
    assert resolver.log == [("release",)]


@pytest.mark.parametrize("make", [local_pool, memory_pool])
async def test_a_pools_lease_finishes_in_one_step(make):
    clock = FakeClock()
    pool = make([acct("a", limit=1)], clock)
    hooks = ResolverHooks(pool)
    lease = await settled(pool(ask()))
    await settled(hooks.finish(lease, lease.account, from_upstream(500, b"{}"), remember="prev:resp_9"))
    assert await settled(pool.in_flight()) == 0 and await settled(pool.cooling_down("a")) == 2
    assert await settled(pool.affinity("prev:resp_9")) == "a"
    assert lease.release() is None  # only the first end counts
    assert await settled(pool.in_flight()) == 0
    lease = await settled(pool(ask()))
    await settled(hooks.finish(lease, lease.account, from_upstream(400, b"{}")))
    assert await settled(pool.cooling_down("a")) == 2  # unchanged: the request's own error
    await hooks.aclose()
