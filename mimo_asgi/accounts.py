"""Accounts, the resolver protocol, and a ready pool that leases accounts per request."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

from . import _models, _routing
from .translate.errors import OpenAIError


class Secret:
    """Holds a key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, eq=False)
class Account:
    """One upstream credential.

    upstream: "mimo" marks a MiMo account; None lets the base URL (or a `tp-` key) decide.
    models: client model name -> MiMo model, `*` wildcards, case-insensitive, most specific wins.
    native_web_search: whether MiMo's web_search plugin may be used (default: not on Token Plan).
    """

    name: str
    api_key: Secret | str = field(repr=False)
    base_url: str | None = None
    upstream: str | None = None
    models: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = 8
    native_web_search: bool | None = None

    def __post_init__(self) -> None:
        key = self.api_key.get() if isinstance(self.api_key, Secret) else str(self.api_key)
        key = key.strip()
        if not key or any(not c.isprintable() or c.isspace() for c in key):
            # never name the key: it would end up in a traceback or a log line
            raise ValueError(f"account {self.name!r}: the API key is empty or holds whitespace or control characters")
        object.__setattr__(self, "api_key", Secret(key))
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        object.__setattr__(self, "_rules", _routing.compile_model_map(self.models))

    @property
    def key(self) -> str:
        return self.api_key.get()  # type: ignore[union-attr]

    @property
    def is_mimo(self) -> bool:
        return _routing.is_mimo_account(self.upstream, self.base_url, self.key)

    @property
    def is_token_plan(self) -> bool:
        return _routing.is_token_plan(self.key, self.base_url)

    @property
    def chat_url(self) -> str:
        return _routing.chat_completions_url(_routing.resolve_base_url(self.key, self.base_url))

    @property
    def allows_native_web_search(self) -> bool:
        return self.native_web_search if self.native_web_search is not None else not self.is_token_plan

    def upstream_model(self, model: str) -> str | None:
        """The MiMo model serving the client's `model`, or None when this account has no rule for it."""
        mapped = _routing.map_model(self._rules, model)  # type: ignore[attr-defined]
        if mapped:
            return mapped.lower()
        return model.strip().lower() if _models.is_mimo_model(model) else None

    def __repr__(self) -> str:
        return f"Account(name={self.name!r}, base_url={self.base_url!r}, upstream={self.upstream!r})"


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a resolver sees: the route ("responses" or "chat"), the client's model, the parsed
    body, the request headers (lower-cased names), the raw ASGI scope, and on a failover the
    names of the accounts already tried (`exclude`)."""

    route: str
    model: str
    body: dict[str, Any] = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)  # the client's own credentials are in here
    scope: Mapping[str, Any] = field(repr=False)
    exclude: frozenset[str] = frozenset()


@runtime_checkable
class Lease(Protocol):
    """An account held for one request; `release()` is called exactly once by the middleware.
    It may return an awaitable (the release still in progress), which the middleware awaits,
    shielded from cancellation, for up to 5 s."""

    account: Account

    def release(self) -> Awaitable[None] | None: ...


ResolveResult = Union[Lease, Account, None]


class Resolver(Protocol):
    def __call__(self, request: RouteRequest) -> ResolveResult | Awaitable[ResolveResult]: ...


def serving_accounts(mimo_accounts: Sequence[Account], request: RouteRequest) -> list[Account]:
    """The MiMo accounts with a rule for the request's model, less those a failover excluded."""
    return [a for a in mimo_accounts if a.name not in request.exclude and a.upstream_model(request.model)]


def affinity_key(request: RouteRequest) -> str | None:
    """What ties requests of one conversation together: the body's `prompt_cache_key`, else a
    `session-id` / `session_id` header (Codex sends one), else the `previous_response_id`."""
    key = request.body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return "pck:" + key
    for header in ("session-id", "session_id"):
        if request.headers.get(header):
            return "sid:" + request.headers[header]
    previous = request.body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        return "prev:" + previous
    return None


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

    def __repr__(self) -> str:
        return f"PoolLease({self.account.name!r}, released={self._released})"


class AccountPool:
    """Round robin over the accounts that serve the requested model, have free capacity and
    are not cooling down; a conversation (see `affinity_key`) stays on the account that served
    its previous turn while that account can take it (remembered for `affinity_ttl` seconds).

    Returns None when no account serves the model (the request is not MiMo's). When accounts
    serve it but none can take it now: 503 with Retry-After (busy, cooling down or disabled).
    `report()` (called by the middleware after each attempt) keeps the health: 429 and 402
    cool an account down until Retry-After (else a doubling backoff), 401/403 disable it until
    the pool is rebuilt from configuration, 5xx and transport failures cool it down briefly.
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
        self._strikes = {a.name: 0 for a in self.accounts}
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
                    self._in_flight[name] += 1
                    if key:
                        self._remember(key, name, now)
                    return PoolLease(self, account)
            usable = [a.name for a in serving if a.name not in self._disabled]
        if not usable:
            raise OpenAIError(503, "Every MiMo account for this model is disabled (authentication failed).",
                              type="server_error", code="accounts_disabled")
        wait = min((self._cool_until[n] - now for n in usable if self._cool_until[n] > now), default=0.0)
        retry_after = str(max(1, math.ceil(wait)))
        raise OpenAIError(503, "All MiMo accounts for this model are busy or cooling down; retry shortly.",
                          type="server_error", code="accounts_busy", headers={"retry-after": retry_after})

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
        """Record how a request on `account` went (None: it succeeded)."""
        name = account.name
        if name not in self._in_flight:
            return
        with self._lock:
            if error is None:
                self._strikes[name] = 0
                return
            if error.status in (401, 403):
                self._disabled.add(name)
                return
            self._strikes[name] += 1
            retry_after = error.headers.get("retry-after", "")
            if retry_after.isdigit():
                pause = float(retry_after)
            else:
                base = 10.0 if error.status in (429, 402) else 2.0
                pause = min(300.0, base * 2 ** (self._strikes[name] - 1))
            self._cool_until[name] = self._clock() + pause

    def _return(self, account: Account) -> None:
        with self._lock:
            self._in_flight[account.name] -= 1

    def in_flight(self, name: str | None = None) -> int:
        """Leases held now, for one account or in total."""
        if name is not None:
            return self._in_flight[name]
        return sum(self._in_flight.values())

    def cooling_down(self, name: str) -> float:
        """Seconds until `name` takes requests again (0 when it does now)."""
        return max(0.0, self._cool_until[name] - self._clock())

    def disabled(self, name: str) -> bool:
        return name in self._disabled
