"""Accounts, and the resolver protocol with its optional hooks. The ready pools that lease
accounts per request (`AccountPool`, `SharedAccountPool`) live in `mimo_asgi.pool`."""

from __future__ import annotations

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


@runtime_checkable
class FinishingLease(Lease, Protocol):
    """A lease that ends its request in one step (the pools' leases are): `finish(error,
    remember=key)` reports how the account did, ties the conversation key to it, and releases
    the lease, as the resolver's `report`, `remember` and the lease's `release` would in turn.
    Only the first `finish()` or `release()` counts."""

    def finish(self, error: OpenAIError | None = None, *,
               remember: str | None = None) -> Awaitable[None] | None: ...


ResolveResult = Union[Lease, Account, None]


class Resolver(Protocol):
    """Called per inspected request with a `RouteRequest`; returns a `Lease`, an `Account` or
    None (not MiMo's request), sync or async, or raises `OpenAIError` (the client's answer).

    A resolver may also have any of these optional hooks (sync or async; each is declared by a
    protocol below, and `mimo_asgi.pool.ResolverHooks` finds them once and calls them):

    - `report(account, error)` (`Reports`): after each attempt on an account, how it went:
      None when MiMo answered (also with an error that is the request's own, such as a 400),
      else the error that is the account's (or its upstream's) doing, the kind that fails the
      request over to another account (`mimo_asgi.pool.account_fault` names them).
    - `remember(key, account_name)` (`Remembers`): a conversation key now belongs to an
      account, e.g. `prev:<response id>` after a turn was stored.
    - `aclose()` (`Closes`): called once when the middleware closes (lifespan shutdown).
    """

    def __call__(self, request: RouteRequest) -> ResolveResult | Awaitable[ResolveResult]: ...


@runtime_checkable
class Reports(Protocol):
    def report(self, account: Account, error: OpenAIError | None) -> Awaitable[None] | None: ...


@runtime_checkable
class Remembers(Protocol):
    def remember(self, key: str, account_name: str) -> Awaitable[None] | None: ...


@runtime_checkable
class Closes(Protocol):
    def aclose(self) -> Awaitable[None]: ...


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
