"""The ASGI class: configuration only; every request gets its own responder."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._models import is_mimo_model
from ._model_list import MODELS_PATHS, ModelList, serve_models
from ._responder import handle
from ._stored_routes import serve_stored, stored_target
from ._seal import ReasoningSealer
from ._upstream import Timeouts, UpstreamClient
from .accounts import Account, AccountPool, Resolver
from .search import WebSearch, provider_from_env
from .store import ResponseStore, open_store

logger = logging.getLogger("mimo_asgi")

DEFAULT_RESPONSES_PATHS = ("/v1/responses", "/responses")
DEFAULT_CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
_FROM_ENV: Any = object()
_MAX_REMEMBERED = 1024  # model names whose routing decision is kept


class MimoMiddleware:
    """Short-circuits MiMo-bound `POST /v1/responses` and `/v1/chat/completions`; everything
    else reaches `app` untouched, without its body being read. (With neither a resolver nor an
    api_key nothing is MiMo-bound, so those POSTs too pass through unread, unchecked.)

    resolver: called per inspected request with a `RouteRequest`; returns a `Lease`, an
      `Account` or None (sync or async). `accounts=` builds an `AccountPool` as the resolver.
      A resolver with `aclose()` is closed with the middleware (lifespan shutdown).
    api_key / base_url: the model-name route (`mimo-*` models without an account); default
      to the MIMO_API_KEY / MIMO_BASE_URL environment variables, read once here.
    seal_key: key (or keys, newest first) sealing reasoning into `encrypted_content`; default
      MIMO_ASGI_SEAL_KEY, else derived from the configured MiMo keys, else random per process.
    keepalive_seconds: an SSE comment after this much silence on a MiMo stream (0 = off).
    max_attempts: accounts tried per request when failing over before the first byte.
    max_streams: MiMo requests served at once by this middleware (then 503 + Retry-After).
    max_upstream_connections: the size of the pooled MiMo client's connection pool; a request
      beyond it waits for a free connection (up to the connect timeout). Raise it with max_streams.
    max_items / max_depth: caps on list lengths and JSON nesting of MiMo-routed bodies.
    list_models: answer `GET /v1/models` with the MiMo-routed names, merged with the host's list.
    metrics: a `mimo_asgi.metrics.PrometheusMetrics` (the `metrics` extra) to record into.
    store: where Responses are kept for `previous_response_id` and retrieval: "memory" (one
      process), a redis:// URL (several workers; the `redis` extra), a `ResponseStore`, or None.
    store_ttl: seconds a stored response lives (renewed when a conversation continues).
    web_search: a `mimo_asgi.search.WebSearch` run for accounts without MiMo's web search plugin
      (Token Plan); default: one built from SEARXNG_URL / TAVILY_API_KEY / BRAVE_API_KEY, if set.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: Resolver | None = None,
        accounts: Sequence[Account] | None = None,
        api_key: str | None = _FROM_ENV,
        base_url: str | None = _FROM_ENV,
        responses_paths: Iterable[str] = DEFAULT_RESPONSES_PATHS,
        chat_paths: Iterable[str] = DEFAULT_CHAT_PATHS,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        timeouts: Timeouts = Timeouts(),
        forward_headers: Iterable[str] = (),
        seal_key: bytes | str | Sequence[bytes | str] | None = None,
        drop_unsupported_tools: bool = False,
        on_usage: Callable[[Any], Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        keepalive_seconds: float = 15.0,
        max_attempts: int = 3,
        max_streams: int = 1024,
        max_upstream_connections: int = 200,
        max_items: int = 10_000,
        max_depth: int = 64,
        list_models: bool = True,
        metrics: Any = None,
        store: ResponseStore | str | None = "memory",
        store_ttl: float = 86_400.0,
        web_search: Any = _FROM_ENV,
    ) -> None:
        if resolver is not None and accounts is not None:
            raise TypeError("pass either resolver= or accounts=, not both")
        self.app = app
        self.pool = AccountPool(accounts) if accounts is not None else None
        self.resolver: Resolver | None = self.pool if self.pool is not None else resolver
        if api_key is _FROM_ENV:
            api_key = os.environ.get("MIMO_API_KEY", "").strip() or None
        if base_url is _FROM_ENV:
            base_url = os.environ.get("MIMO_BASE_URL", "").strip() or None
        self.env_account = Account("env", api_key, base_url=base_url, upstream="mimo") if api_key else None
        # With neither a resolver nor an env key no request can ever be MiMo's: inspected POSTs
        # then pass straight to the host, their bodies unread (nothing to peek at or replay).
        self.can_route = self.resolver is not None or self.env_account is not None
        # Built-in routing (the accounts= pool, the env key) decides on the model name alone.
        self.routes_by_model = self.resolver is None or self.resolver is self.pool
        self._declined: dict[str, bool] = {}
        responses_paths = tuple(responses_paths)
        self.routes = {p: "responses" for p in responses_paths} | {p: "chat" for p in chat_paths}
        self.store: ResponseStore | None = open_store(store) if isinstance(store, str) else store
        self.store_ttl = store_ttl
        self.stored_prefixes = tuple(p.rstrip("/") + "/" for p in responses_paths) if self.store is not None else ()
        self.max_body_size = max_body_size
        never = ("authorization", "api-key", "host", "content-encoding", "content-length")
        self.forward_headers = tuple(h.lower() for h in forward_headers if h.lower() not in never)
        self.drop_unsupported_tools = drop_unsupported_tools
        self.on_usage = on_usage
        self.keepalive_seconds = keepalive_seconds
        self.max_attempts = max(1, max_attempts)
        self.max_streams = max_streams
        self.max_items = max_items
        self.max_depth = max_depth
        self.active_streams = 0
        self.list_models = list_models
        self.model_list = ModelList([*(self.pool.accounts if self.pool else ()),
                                     *([self.env_account] if self.env_account else [])])
        self.metrics = metrics
        if metrics is not None:
            metrics.models.update(target.lower() for a in self.model_list.accounts for target in a.models.values())
            if self.pool is not None:
                metrics.track_pool(self.pool)
        self.upstream = UpstreamClient(timeouts=timeouts, transport=transport, max_connections=max_upstream_connections)
        self.sealer = self._sealer(seal_key, accounts)
        if web_search is _FROM_ENV:
            provider = provider_from_env(os.environ)
            web_search = WebSearch(provider) if provider is not None else None
        self.web_search: WebSearch | None = web_search or None

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

    def _sealer(self, seal_key: Any, accounts: Sequence[Account] | None) -> ReasoningSealer:
        if seal_key is None:
            seal_key = os.environ.get("MIMO_ASGI_SEAL_KEY") or None
        if seal_key is None:
            keys = sorted({a.key for a in accounts or ()} | ({self.env_account.key} if self.env_account else set()))
            if keys:  # stable across restarts and workers, and unknown to clients
                seal_key = hashlib.sha256("\n".join(keys).encode()).digest()
        if seal_key is None:
            logger.warning("mimo_asgi: no seal_key configured; reasoning sealed with a per-process key "
                           "will not survive a restart or reach another worker")
            return ReasoningSealer.random()
        return ReasoningSealer(seal_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "POST":
                route = self.routes.get(scope["path"])
                if route is not None and self.can_route:
                    await handle(self, route, scope, receive, send)
                    return
            elif scope["method"] == "GET" and self.list_models and scope["path"] in MODELS_PATHS:
                await serve_models(self, scope, receive, send)
                return
            # `startswith` first: every other GET (`/health`, ...) skips the look-up (benchmark 1a).
            if self.stored_prefixes and scope["path"].startswith(self.stored_prefixes) and \
                    scope["method"] in ("GET", "DELETE"):
                target = stored_target(self, scope)
                if target is not None:
                    await serve_stored(self, scope, receive, send, target)
                    return
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        await self.app(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aclose()
            await send(message)

        return lifespan_send

    async def aclose(self) -> None:
        """Close the upstream connection pool, the store, and a resolver that has `aclose()` (a
        `SharedAccountPool`: it waits for releases in flight); done on lifespan shutdown."""
        await self.upstream.aclose()
        close = getattr(self.resolver, "aclose", None) if self.resolver is not self.pool else None
        if close is not None:
            await close()
        if self.store is not None:
            await self.store.aclose()
        if self.web_search is not None:
            await self.web_search.aclose()
