"""`SharedAccountPool`: `AccountPool`'s rules, with leases, cooldowns, disabled accounts and
affinity in a store that several workers share (Redis)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Generator, Sequence
from typing import Any

from ..accounts import Account, RouteRequest, affinity_key, serving_accounts
from ..store._record import StoreUnavailable
from ..translate.errors import OpenAIError, store_unavailable
from ._health import COOLDOWNS, account_fault, pauses, refusal
from ._redis import RedisLeases
from ._state import Candidate, Health, PoolState, Taken

logger = logging.getLogger("mimo_asgi")


class _Pending:
    """What `SharedLease.release()` and `finish()` return while the store is being told:
    awaiting it waits for that (shielded: cancelling the waiter does not cancel the work)."""

    __slots__ = ("_task",)

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.shield(self._task).__await__()


class SharedLease:
    """One slot on `account`, held in the shared store until `release()` / `finish()`, or until
    `lease_ttl` after the holder stops refreshing it (a crashed worker)."""

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
        """Free the slot; only the first `release()` or `finish()` counts. The release happens
        even if nobody awaits the result (it is a task of the lease's event loop); awaiting it
        (when it is not None) waits until the store has freed the slot."""
        return self.finish(None, remember=None, record=False)

    def finish(self, error: OpenAIError | None = None, *, remember: str | None = None,
               record: bool = True) -> Awaitable[None] | None:
        """End the request held by this lease, in one store round trip: record how the account
        did (as `SharedAccountPool.report`: None is a success), tie the conversation key
        `remember` (e.g. `prev:<response id>`) to the account, and free the slot. Only the
        first `finish()` or `release()` counts; like `release()` it happens even if nobody
        awaits it, and it never raises (a store outage is logged; the slot then expires after
        `lease_ttl`). `record=False` frees the slot without recording any health."""
        if self._released:
            return None
        self._released = True
        if self._timer is not None:
            self._timer.cancel()
        return self._pool._finish(self, self._pool._health(self.account, error) if record else None, remember)

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
    workers, a `MemoryLeases` for one process; a redis:// URL makes a `RedisLeases`):

    - serving accounts: MiMo accounts with a rule for the model, not in `request.exclude`; None
      when there are none (the request is not MiMo's);
    - round robin among them (per worker), the account remembered for the conversation
      (`affinity_key`, for `affinity_ttl` seconds) first;
    - an account takes the request when it is not disabled, not cooling down, and holds fewer
      than `max_concurrency` leases across all workers; the lease expires `lease_ttl` seconds
      after its worker stops refreshing it (refreshed every `lease_ttl / 3` while held);
    - none free: one cooling down after failures takes it anyway (see pool/_health.py), else
      429 when all are rate limited or out of quota, 503 `accounts_busy` when the leases are
      all in use, 503 `accounts_disabled` when MiMo rejected every key;
    - the store unreachable: 503 `store_unavailable` with Retry-After, and no slot left held.

    A request costs two store round trips: the pick (`__call__`), and `SharedLease.finish()`
    (release, health and affinity together). A disabled account is recorded with its key's
    fingerprint: a new key for the same name is enabled again (and `enable(name)` clears it by
    hand). One pool per worker event loop; `aclose()` waits for releases in progress and closes
    `leases`.
    """

    def __init__(self, accounts: Sequence[Account], leases: PoolState | str, *, lease_ttl: float = 600.0,
                 affinity_ttl: float = 3600.0, prefix: str = "mimo_asgi:") -> None:
        names = [a.name for a in accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        if isinstance(leases, str):
            leases = RedisLeases(leases, prefix)
        if not isinstance(leases, PoolState):
            raise TypeError("leases must implement PoolState (RedisLeases or MemoryLeases do), or be a redis:// URL")
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
        self._finishing: dict[str, set[asyncio.Task[None]]] = {}  # account -> its leases being freed
        self._remembering: dict[str, asyncio.Task[None]] = {}  # conversation key -> its finish
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finish_nowait = getattr(leases, "finish_nowait", None)

    async def __call__(self, request: RouteRequest) -> SharedLease | None:
        serving = serving_accounts(self._mimo, request)
        if not serving:
            return None
        start = next(self._cursor)
        order = [serving[(start + i) % len(serving)] for i in range(len(serving))]
        key = affinity_key(request)
        if key is not None and key in self._remembering:  # this worker is still recording where it went
            await asyncio.wait([self._remembering[key]])
        taken, token = await self._take(order, key)
        if taken.chosen is None:
            # a finish of this worker still on its way to the store may be all that fills a slot
            pending = [t for a, s in zip(order, taken.standings) if not s.room
                       for t in self._finishing.get(a.name, ())]
            if pending:
                await asyncio.wait(pending)
                taken, token = await self._take(order, key)
        if taken.chosen is None:
            raise refusal(taken.standings)
        account = order[taken.chosen]
        if taken.struck:
            self._struck.add(account.name)
        return SharedLease(self, account, token)

    def serves(self, model: str) -> bool:
        """Whether any MiMo account of the pool has a rule for `model` (else the pool answers None)."""
        for account in self._mimo:
            if account.upstream_model(model):
                return True
        return False

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

    def _health(self, account: Account, error: OpenAIError | None) -> Health | None:
        """What to record for a request on `account` that ended with `error`, or None: nothing
        (an error that is not the account's, or a success with no failures on record)."""
        kind = account_fault(error)
        if error is None:
            if account.name not in self._struck:
                return None
            self._struck.discard(account.name)
        elif kind is None:
            return None
        elif kind in COOLDOWNS:
            self._struck.add(account.name)
        return Health(self._identity[account.name], kind, pauses(error, kind) if error and kind in COOLDOWNS else ())

    async def report(self, account: Account, error: OpenAIError | None) -> None:
        """Record how a request on `account` went (None: it succeeded): 401/403 disable it, 429
        and 402 rest it for Retry-After (else a doubling backoff), 5xx and transport failures
        briefly (see pool/_health.py); an error that is the request's own (a 400) changes
        nothing. One store round trip at most. Never raises: a store outage is logged."""
        if account.name not in self._by_name:
            return
        health = self._health(account, error)
        if health is None:
            return
        try:
            await self.leases.finish(account.name, None, health)
        except StoreUnavailable as exc:
            logger.warning("mimo_asgi: account %s's health was not recorded: %s", account.name, exc)

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
        """Seconds until `name` is preferred again (0.0 when it is now)."""
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

    def _finish(self, lease: SharedLease, health: Health | None, remember: str | None) -> Awaitable[None] | None:
        name = lease.account.name
        affinity = (remember, self.affinity_ttl) if remember else None
        if self._finish_nowait is not None:  # MemoryLeases: done now, as AccountPool does
            self._finish_nowait(name, lease.token, health, affinity)
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        coro = self._finish_async(name, lease.token, health, affinity)
        if running is not lease._loop:
            try:  # called from another thread: the work runs on the lease's loop
                asyncio.run_coroutine_threadsafe(coro, lease._loop)
            except RuntimeError:  # that loop is closed: the slot expires after lease_ttl
                coro.close()
                logger.warning("mimo_asgi: a lease on %s was released after its event loop closed", name)
            return None
        task = self._spawn(coro)
        pending = self._finishing.setdefault(name, set())
        pending.add(task)
        task.add_done_callback(pending.discard)
        if remember:
            self._remembering[remember] = task
            task.add_done_callback(lambda t: self._remembering.pop(remember, None)
                                   if self._remembering.get(remember) is t else None)
        return _Pending(task)

    async def _finish_async(self, name: str, token: str, health: Health | None,
                            affinity: tuple[str, float] | None) -> None:
        try:
            await self.leases.finish(name, token, health, affinity)
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
