"""An account pool whose leases, cooldowns, disabled accounts and affinity live in a store that
several workers share (Redis), with `AccountPool`'s selection rules."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import secrets
from collections.abc import Awaitable, Generator, Sequence
from typing import Any

from .accounts import Account, RouteRequest, affinity_key, serving_accounts
from .store._pool import Candidate, PoolState, Taken
from .store._record import StoreUnavailable
from .translate.errors import OpenAIError

logger = logging.getLogger("mimo_asgi")


def cooldown_seconds(error: OpenAIError, strikes: int) -> float:
    """How long an account rests after `error`, its `strikes`-th failure in a row: Retry-After
    when MiMo sent one, else a doubling backoff from 10 s (429, 402) or 2 s (5xx, transport), at
    most 300 s. The same rule as `AccountPool.report`."""
    retry_after = error.headers.get("retry-after", "")
    if retry_after.isdigit():
        return float(retry_after)
    base = 10.0 if error.status in (429, 402) else 2.0
    return min(300.0, base * 2 ** min(strikes - 1, 16))


def store_unavailable() -> OpenAIError:
    return OpenAIError(503, "The shared account pool's store is unavailable; retry shortly.",
                       type="server_error", code="store_unavailable", headers={"retry-after": "1"})


class _Released:
    """What `SharedLease.release()` returns while the store is being told: awaiting it waits for
    that (shielded: cancelling the waiter does not cancel the release)."""

    __slots__ = ("_task",)

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.shield(self._task).__await__()


class SharedLease:
    """One slot on `account`, held in the shared store until `release()` or `lease_ttl` after
    the holder stops refreshing it (a crashed worker)."""

    __slots__ = ("account", "token", "_pool", "_loop", "_timer", "_released")

    def __init__(self, pool: SharedAccountPool, account: Account, token: str) -> None:
        self.account = account
        self.token = token
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._released = False
        self._timer: asyncio.TimerHandle | None = None
        self._schedule_refresh()

    def release(self) -> Awaitable[None] | None:
        """Free the slot; only the first call counts. The release happens even if nobody
        awaits the result (it is a task of the lease's event loop); awaiting it (when it is not
        None) waits until the store has freed the slot."""
        if self._released:
            return None
        self._released = True
        if self._timer is not None:
            self._timer.cancel()
        return self._pool._release(self)

    def _schedule_refresh(self) -> None:
        self._timer = self._loop.call_later(self._pool.lease_ttl / 3, self._refresh)

    def _refresh(self) -> None:
        if not self._released:  # a stream longer than lease_ttl keeps its slot
            self._pool._spawn(self._pool._refresh(self), self._loop)
            self._schedule_refresh()

    def __repr__(self) -> str:
        return f"SharedLease({self.account.name!r}, released={self._released})"


class SharedAccountPool:
    """`AccountPool`'s rules, with the state shared through `leases` (a `RedisLeases` for several
    workers, a `MemoryLeases` for one process):

    - serving accounts: MiMo accounts with a rule for the model, not in `request.exclude`; None
      when there are none (the request is not MiMo's);
    - round robin among them (per worker), the account remembered for the conversation
      (`affinity_key`, for `affinity_ttl` seconds) first;
    - an account takes the request when it is not disabled, not cooling down, and holds fewer
      than `max_concurrency` leases across all workers; the lease expires `lease_ttl` seconds
      after its worker stops refreshing it (refreshed every `lease_ttl / 3` while held);
    - none can: 503 `accounts_disabled` when all are disabled, else 503 `accounts_busy` with
      Retry-After (the shortest cooldown left, at least 1 s);
    - the store unreachable: 503 `store_unavailable` with Retry-After, and no slot left held.

    A disabled account is recorded with its key's fingerprint: a new key for the same name is
    enabled again (and `enable(name)` clears it by hand). One pool per worker event loop;
    `aclose()` waits for releases in progress and closes `leases`.
    """

    def __init__(self, accounts: Sequence[Account], leases: PoolState, *, lease_ttl: float = 600.0,
                 affinity_ttl: float = 3600.0) -> None:
        names = [a.name for a in accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        if not isinstance(leases, PoolState):
            raise TypeError("leases must implement PoolState (RedisLeases or MemoryLeases do)")
        if lease_ttl <= 0 or affinity_ttl <= 0:
            raise ValueError("lease_ttl and affinity_ttl must be positive")
        self.accounts = tuple(accounts)
        self.leases = leases
        self.lease_ttl = lease_ttl
        self.affinity_ttl = affinity_ttl
        self._mimo = tuple(a for a in self.accounts if a.is_mimo)
        self._by_name = {a.name: a for a in self.accounts}
        self._identity = {a.name: a.name + ":" + hashlib.sha256(a.key.encode()).hexdigest()[:16]
                          for a in self.accounts}
        self._cursor = itertools.count()
        self._struck: set[str] = set()  # accounts whose failure count may be non-zero
        self._releasing: dict[str, set[asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._release_nowait = getattr(leases, "release_nowait", None)

    async def __call__(self, request: RouteRequest) -> SharedLease | None:
        serving = serving_accounts(self._mimo, request)
        if not serving:
            return None
        start = next(self._cursor)
        order = [serving[(start + i) % len(serving)] for i in range(len(serving))]
        key = affinity_key(request)
        taken, token = await self._take(order, key)
        if taken.index is None:
            # a release of this worker still on its way to the store may be all that fills a slot
            pending = [t for a, state in zip(order, taken.states) if state == 0.0
                       for t in self._releasing.get(a.name, ())]
            if pending:
                await asyncio.wait(pending)
                taken, token = await self._take(order, key)
        if taken.index is None:
            raise _refusal(taken)
        account = order[taken.index]
        if taken.struck:
            self._struck.add(account.name)
        return SharedLease(self, account, token)

    async def _take(self, order: list[Account], key: str | None) -> tuple[Taken, str]:
        """One atomic pick-and-lease in the store. If the answer never arrives (store down,
        timeout, cancellation) the slot it may have taken is freed in the background."""
        token = secrets.token_hex(12)
        candidates = [Candidate(a.name, a.max_concurrency, self._identity[a.name]) for a in order]
        try:
            taken = await self.leases.take(candidates, self.lease_ttl, token,
                                           (key, self.affinity_ttl) if key else None)
        except BaseException as exc:
            self._spawn(self._forget(token, [a.name for a in order]))
            if isinstance(exc, StoreUnavailable):
                logger.warning("mimo_asgi: the shared account pool's store is unavailable: %s", exc)
                raise store_unavailable() from None
            raise
        return taken, token

    async def _forget(self, token: str, names: list[str]) -> None:
        try:
            await self.leases.release_any(names, token)
        except Exception:  # best effort: the slot, if it was taken, expires after lease_ttl
            logger.debug("mimo_asgi: cleanup of an unanswered lease failed", exc_info=True)

    # -- the middleware's callbacks -----------------------------------------------------

    async def report(self, account: Account, error: OpenAIError | None) -> None:
        """Record how a request on `account` went (None: it succeeded): 401/403 disable it, 429
        and 402 cool it down for Retry-After (else a doubling backoff), 5xx and transport
        failures briefly (see `cooldown_seconds`). Never raises: a store outage is logged."""
        name = account.name
        if name not in self._by_name:
            return
        try:
            if error is None:
                if name in self._struck:  # a success ends the run of failures
                    self._struck.discard(name)
                    await self.leases.clear_strikes(name)
            elif error.status in (401, 403):
                await self.leases.disable(self._identity[name])
            else:
                self._struck.add(name)
                await self.leases.cool_down(name, cooldown_seconds(error, await self.leases.strike(name)))
        except StoreUnavailable as exc:
            logger.warning("mimo_asgi: account %s's health was not recorded: %s", name, exc)

    async def remember(self, key: str, name: str) -> None:
        """Tie a conversation key to an account (e.g. `prev:<response id>` after a stored turn).
        Never raises: a store outage only loses the preference."""
        if name in self._by_name:
            try:
                await self.leases.affinity_set(key, name, self.affinity_ttl)
            except StoreUnavailable as exc:
                logger.warning("mimo_asgi: affinity not recorded: %s", exc)

    # -- inspection (these raise StoreUnavailable when the store is down) ---------------

    async def in_flight(self, name: str | None = None) -> int:
        """Leases held now across all workers, for one account or in total."""
        names = [name] if name is not None else list(self._by_name)
        return sum([await self.leases.in_flight(n) for n in names])

    async def cooling_down(self, name: str) -> float:
        """Seconds until `name` takes requests again (0.0 when it does now)."""
        return await self.leases.cooling_down(name)

    async def disabled(self, name: str) -> bool:
        return await self.leases.is_disabled(self._identity.get(name, name))

    async def enable(self, name: str) -> None:
        """Take a disabled account back into service (on every worker)."""
        await self.leases.enable(self._identity[name])

    async def affinity(self, key: str) -> str | None:
        """The account remembered for a conversation key, if still fresh."""
        return await self.leases.affinity_get(key)

    async def aclose(self) -> None:
        """Wait for releases and refreshes in progress, then close `leases`."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.leases.aclose()

    # -- leases -------------------------------------------------------------------------

    def _release(self, lease: SharedLease) -> Awaitable[None] | None:
        name = lease.account.name
        if self._release_nowait is not None:  # MemoryLeases: free now, as AccountPool does
            self._release_nowait(name, lease.token)
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is lease._loop:
            task = self._spawn(self._release_async(name, lease.token))
            pending = self._releasing.setdefault(name, set())
            pending.add(task)
            task.add_done_callback(pending.discard)
            return _Released(task)
        coro = self._release_async(name, lease.token)
        try:  # called from another thread: the release runs on the lease's loop
            asyncio.run_coroutine_threadsafe(coro, lease._loop)
        except RuntimeError:  # that loop is closed: the slot expires after lease_ttl
            coro.close()
            logger.warning("mimo_asgi: a lease on %s was released after its event loop closed", name)
        return None

    async def _release_async(self, name: str, token: str) -> None:
        try:
            await self.leases.release(name, token)
        except StoreUnavailable as exc:
            logger.warning("mimo_asgi: a lease on %s was not released (%s); it expires after %s s",
                           name, exc, self.lease_ttl)

    async def _refresh(self, lease: SharedLease) -> None:
        try:
            held = await self.leases.refresh(lease.account.name, lease.token, self.lease_ttl)
        except StoreUnavailable as exc:
            logger.warning("mimo_asgi: a lease on %s was not refreshed: %s", lease.account.name, exc)
            return
        if not held and not lease._released:
            logger.warning("mimo_asgi: a lease on %s had expired while its request was running",
                           lease.account.name)

    def _spawn(self, coro: Awaitable[Any], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task[Any]:
        """A task kept alive until it ends (the loop holds only weak references to tasks)."""
        task = asyncio.ensure_future(coro, loop=loop)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __repr__(self) -> str:
        return f"SharedAccountPool(accounts={[a.name for a in self.accounts]!r}, leases={self.leases!r})"


def _refusal(taken: Taken) -> OpenAIError:
    """The 503 for a request no serving account could take (`AccountPool`'s wording)."""
    usable = [state for state in taken.states if state is not None]
    if not usable:
        return OpenAIError(503, "Every MiMo account for this model is disabled (authentication failed).",
                           type="server_error", code="accounts_disabled")
    wait = min((state for state in usable if state > 0), default=0.0)
    return OpenAIError(503, "All MiMo accounts for this model are busy or cooling down; retry shortly.",
                       type="server_error", code="accounts_busy",
                       headers={"retry-after": str(max(1, math.ceil(wait)))})
