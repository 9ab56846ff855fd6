"""Accounts, the resolver protocol, and a ready pool that leases accounts per request."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Mapping, Sequence
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
        if not isinstance(self.api_key, Secret):
            object.__setattr__(self, "api_key", Secret(str(self.api_key)))
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
    body, the request headers (lower-cased names) and the raw ASGI scope."""

    route: str
    model: str
    body: dict[str, Any]
    headers: Mapping[str, str]
    scope: Mapping[str, Any]


@runtime_checkable
class Lease(Protocol):
    """An account held for one request; `release()` is called exactly once by the middleware."""

    account: Account

    def release(self) -> None: ...


ResolveResult = Union[Lease, Account, None]


class Resolver(Protocol):
    def __call__(self, request: RouteRequest) -> ResolveResult | Awaitable[ResolveResult]: ...


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
    """Round robin over the accounts that serve the requested model and have free capacity.

    Returns None when no account serves the model (the request is not MiMo's), and answers 503
    with Retry-After when every account that serves it is at its concurrency limit.
    """

    def __init__(self, accounts: Sequence[Account]) -> None:
        names = [a.name for a in accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        self.accounts = tuple(accounts)
        self._in_flight = {a.name: 0 for a in self.accounts}
        self._cursor = itertools.count()
        self._lock = threading.Lock()  # resolvers may be called from threads (sync hosts)

    def __call__(self, request: RouteRequest) -> PoolLease | None:
        serving = [a for a in self.accounts if a.is_mimo and a.upstream_model(request.model)]
        if not serving:
            return None
        with self._lock:
            start = next(self._cursor)
            for i in range(len(serving)):
                account = serving[(start + i) % len(serving)]
                if self._in_flight[account.name] < account.max_concurrency:
                    self._in_flight[account.name] += 1
                    return PoolLease(self, account)
        raise OpenAIError(503, "All MiMo accounts for this model are busy; retry shortly.",
                          type="server_error", code="accounts_busy", headers={"retry-after": "1"})

    def _return(self, account: Account) -> None:
        with self._lock:
            self._in_flight[account.name] -= 1

    def in_flight(self, name: str | None = None) -> int:
        """Leases held now, for one account or in total."""
        if name is not None:
            return self._in_flight[name]
        return sum(self._in_flight.values())
