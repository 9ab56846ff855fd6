"""What the request handlers need of the middleware's configuration, in one object built once.

The handlers (HTTP, WebSocket, the model list, stored responses) get a `Runtime`, never the
middleware: the middleware imports them, they import this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from ._accounting import Metrics, UsageEvent
from ._model_list import ModelList
from ._models import is_mimo_model
from ._seal import ReasoningSealer
from ._upstream import UpstreamClient
from .accounts import Account, Resolver
from .pool import AccountPool, ResolverHooks, SharedAccountPool
from .search import WebSearch
from .store import ResponseStore

_MAX_REMEMBERED = 1024  # model names whose routing decision is kept


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one process takes on.

    max_body_size: bytes of a request body, decoded (a larger one is a 413).
    max_items / max_depth: list lengths and JSON nesting of a MiMo-bound body (a 400 past them).
    max_streams: MiMo requests served at once (then 503 with Retry-After).
    max_attempts: accounts tried for one request when failing over before the first event.
    max_upstream_connections: the pooled MiMo client's connections; a request beyond them waits
      for one (up to the connect timeout). Raise it with max_streams.
    max_websockets: Responses WebSockets open at once; one more is refused with 426, on which
      clients such as Codex use HTTPS at once.
    websocket_age: seconds a WebSocket serves frames; a frame after that gets the
      `websocket_connection_limit_reached` error and the socket is closed (clients reconnect).
    A WebSocket keeps its last request's input and output, at most `max_body_size` bytes of JSON
    (what one request may carry anyway); past that it keeps nothing and a frame chained to it gets
    `previous_response_not_found` (clients then send the whole input).
    """

    max_body_size: int = 16 * 1024 * 1024
    max_items: int = 10_000
    max_depth: int = 64
    max_streams: int = 1024
    max_attempts: int = 3
    max_upstream_connections: int = 200
    max_websockets: int = 1024
    websocket_age: float = 3600.0


class Runtime:
    """The middleware's configuration and shared clients, as the handlers see them, plus the
    one piece of live state they share: the count of MiMo requests in flight."""

    def __init__(
        self,
        *,
        app: ASGIApp,
        resolver: Resolver | None,
        pool: AccountPool | SharedAccountPool | None,
        env_account: Account | None,
        upstream: UpstreamClient,
        sealer: ReasoningSealer,
        limits: Limits,
        store: ResponseStore | None,
        store_ttl: float,
        web_search: WebSearch | None,
        forward_headers: tuple[str, ...],
        drop_unsupported_tools: bool,
        keepalive_seconds: float,
        metrics: Metrics | None,
        on_usage: Callable[[UsageEvent], Any] | None,
        model_list: ModelList,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.hooks = ResolverHooks(resolver)  # its optional report / remember / aclose, found once
        self.pool = pool
        self.env_account = env_account
        self.upstream = upstream
        self.sealer = sealer
        self.limits = limits
        self.store = store
        self.store_ttl = store_ttl
        self.web_search = web_search
        self.forward_headers = forward_headers
        self.drop_unsupported_tools = drop_unsupported_tools
        self.keepalive_seconds = keepalive_seconds
        self.metrics = metrics
        self.on_usage = on_usage
        self.model_list = model_list
        # With neither a resolver nor an env key no request can ever be MiMo's: inspected POSTs
        # then pass straight to the host, their bodies unread (nothing to peek at or replay).
        self.can_route = resolver is not None or env_account is not None
        # Built-in routing (the accounts= pool, the env key) decides on the model name alone.
        self.routes_by_model = resolver is None or resolver is pool
        self.in_flight = 0  # MiMo requests being served
        self.websockets = 0  # Responses WebSockets open
        self._declined: dict[str, bool] = {}

    def declines(self, model: str) -> bool:
        """With built-in routing: True when no route serves `model` (neither an account of the
        pool nor the env key); remembered per name, as clients send few distinct names."""
        declined = self._declined.get(model)
        if declined is None:
            declined = not ((self.pool is not None and self.pool.serves(model)) or
                            (self.env_account is not None and is_mimo_model(model)))
            if len(self._declined) >= _MAX_REMEMBERED:
                self._declined.clear()
            self._declined[model] = declined
        return declined

    def target(self, account: Account | None, model: str) -> Account | None:
        """Where a request goes: the resolver's MiMo account, else the env key for a `mimo-*` model."""
        if account is not None and account.is_mimo:
            return account
        if self.env_account is not None and is_mimo_model(model):
            return self.env_account
        return None
