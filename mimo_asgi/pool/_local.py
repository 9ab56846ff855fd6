"""`AccountPool`: leases, cooldowns, disabled accounts and affinity kept in one process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence

from ..accounts import Account, RouteRequest, affinity_key, serving_accounts
from ..translate.errors import OpenAIError
from ._health import (
    DISABLE,
    DISABLED,
    FAILING,
    FREE,
    FULL,
    STRIKES_TTL,
    Standing,
    account_fault,
    fallback,
    pauses,
    refusal,
)


class PoolLease:
    __slots__ = ("account", "_pool", "_released")

    def __init__(self, pool: AccountPool, account: Account) -> None:
        self.account = account
        self._pool = pool
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._return(self.account)

    def finish(self, error: OpenAIError | None = None, *, remember: str | None = None) -> None:
        """End the request held by this lease: record how the account did (`AccountPool.report`),
        tie the conversation key `remember` to the account, and free the slot. Only the first
        `finish()` or `release()` counts."""
        if not self._released:
            self._pool.report(self.account, error)
            if remember:
                self._pool.remember(remember, self.account.name)
            self.release()

    def __repr__(self) -> str:
        return f"PoolLease({self.account.name!r}, released={self._released})"


class AccountPool:
    """Round robin over the accounts that serve the requested model, have free capacity and
    are not cooling down; a conversation (see `affinity_key`) stays on the account that served
    its previous turn while that account can take it (remembered for `affinity_ttl` seconds).

    Returns None when no account serves the model (the request is not MiMo's). When none is
    free, an account cooling down after failures takes the request anyway (the one whose rest
    ends first): cooldowns steer traffic to other accounts, they never lock a lone account out.
    Else 429 when every account is rate limited or out of quota, 503 `accounts_busy` when
    leases are all in use, 503 `accounts_disabled` when MiMo rejected every key (see
    pool/_health.py). `report()` (called by the middleware after each attempt) keeps the health:
    401/403 disable an account until the pool is rebuilt from configuration, 429 and 402 rest
    it until Retry-After (else a doubling backoff), 5xx and transport failures briefly.
    """

    def __init__(self, accounts: Sequence[Account], *, clock: Callable[[], float] = time.monotonic,
                 affinity_ttl: float = 3600.0, max_affinity: int = 100_000) -> None:
        names = [a.name for a in accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        self.accounts = tuple(accounts)
        self._mimo = tuple(a for a in self.accounts if a.is_mimo)
        self._in_flight = {a.name: 0 for a in self.accounts}
        self._cool_until = {a.name: 0.0 for a in self.accounts}
        self._cool_kind = {a.name: FAILING for a in self.accounts}
        self._strikes: dict[str, tuple[int, float]] = {}  # name -> (failures in a row, forgotten at)
        self._disabled: set[str] = set()
        self._cursor = itertools.count()
        self._lock = threading.Lock()  # resolvers may be called from threads (sync hosts)
        self._clock = clock
        self.affinity_ttl = affinity_ttl
        self.max_affinity = max_affinity
        self._affinity: dict[str, tuple[str, float]] = {}

    def __call__(self, request: RouteRequest) -> PoolLease | None:
        serving = serving_accounts(self._mimo, request)
        if not serving:
            return None
        now = self._clock()
        key = affinity_key(request)
        with self._lock:
            remembered = self._affinity.get(key) if key else None
            if remembered is not None and remembered[1] <= now:
                remembered = None
            start = next(self._cursor)
            order = [serving[(start + i) % len(serving)] for i in range(len(serving))]
            if remembered is not None:  # the account that served this conversation keeps MiMo's cache warm
                order.sort(key=lambda a: a.name != remembered[0])
            for account in order:
                name = account.name
                if (name not in self._disabled and self._cool_until[name] <= now
                        and self._in_flight[name] < account.max_concurrency):
                    return self._hold(account, key, now)
            standings = [self._standing(a, now) for a in order]
            chosen = fallback(standings)
            if chosen is not None:
                return self._hold(order[chosen], key, now)
        raise refusal(standings)

    def _hold(self, account: Account, key: str | None, now: float) -> PoolLease:
        self._in_flight[account.name] += 1
        if key:
            self._remember(key, account.name, now)
        return PoolLease(self, account)

    def _standing(self, account: Account, now: float) -> Standing:
        name = account.name
        room = self._in_flight[name] < account.max_concurrency
        if name in self._disabled:
            return Standing(DISABLED)
        if self._cool_until[name] > now:
            return Standing(self._cool_kind[name], self._cool_until[name] - now, room)
        return Standing(FREE if room else FULL, room=room)

    def serves(self, model: str) -> bool:
        """Whether any MiMo account of the pool has a rule for `model` (else the pool answers None)."""
        for account in self._mimo:  # a loop, not any(): this runs per inspected request
            if account.upstream_model(model):
                return True
        return False

    def _remember(self, key: str, name: str, now: float) -> None:
        self._affinity.pop(key, None)
        self._affinity[key] = (name, now + self.affinity_ttl)
        if len(self._affinity) > self.max_affinity:  # oldest first: dicts keep insertion order
            del self._affinity[next(iter(self._affinity))]

    def remember(self, key: str, name: str) -> None:
        """Tie a conversation key to an account (e.g. `prev:<response id>` after a stored turn)."""
        if name in self._in_flight:
            with self._lock:
                self._remember(key, name, self._clock())

    def affinity(self, key: str) -> str | None:
        """The account remembered for a conversation key, if still fresh."""
        entry = self._affinity.get(key)
        return entry[0] if entry and entry[1] > self._clock() else None

    def report(self, account: Account, error: OpenAIError | None) -> None:
        """Record how a request on `account` went: None (it succeeded) ends its run of failures;
        an error the account is not to blame for (a 400, MiMo's content filter) changes nothing;
        the others disable it or rest it (see `account_fault` and `pauses`)."""
        name = account.name
        if name not in self._in_flight:
            return
        if error is None:
            if name in self._strikes:
                with self._lock:
                    self._strikes.pop(name, None)
            return
        kind = account_fault(error)
        if kind is None:
            return
        with self._lock:
            if kind == DISABLE:
                self._disabled.add(name)
                return
            now = self._clock()
            count, forgotten_at = self._strikes.get(name, (0, 0.0))
            count = (count if forgotten_at > now else 0) + 1
            self._strikes[name] = (count, now + STRIKES_TTL)
            schedule = pauses(error, kind)
            self._cool_until[name] = now + schedule[min(count, len(schedule)) - 1]
            self._cool_kind[name] = kind

    def _return(self, account: Account) -> None:
        with self._lock:
            self._in_flight[account.name] -= 1

    def in_flight(self, name: str | None = None) -> int:
        """Leases held now, for one account or in total."""
        if name is not None:
            return self._in_flight[name]
        return sum(self._in_flight.values())

    def cooling_down(self, name: str) -> float:
        """Seconds until `name` is preferred again (0 when it is now)."""
        return max(0.0, self._cool_until[name] - self._clock())

    def disabled(self, name: str) -> bool:
        return name in self._disabled

    async def aclose(self) -> None:
        """Nothing to close (the pool holds no connections); here so every pool closes alike."""
