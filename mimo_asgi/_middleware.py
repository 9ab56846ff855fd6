"""The ASGI class: configuration only; every request gets its own handler."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from . import _http, _websocket
from ._accounting import UsageEvent
from ._model_list import MODELS_PATHS, ModelList, serve_models
from ._runtime import Limits, Runtime
from ._seal import ReasoningSealer
from ._stored_routes import serve_stored, stored_target
from ._upstream import Timeouts, UpstreamClient
from .accounts import Account, Resolver
from .pool import AccountPool, SharedAccountPool
from .search import WebSearch, provider_from_env
from .store import ResponseStore, open_store

if TYPE_CHECKING:
    from .metrics import PrometheusMetrics

logger = logging.getLogger("mimo_asgi")

DEFAULT_RESPONSES_PATHS = ("/v1/responses", "/responses")
DEFAULT_CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
_FROM_ENV: Any = object()
# The app a MimoMiddleware wraps: any ASGI 3 application. Frameworks type scope, receive and send
# each their own way (Starlette a MutableMapping, Litestar and asgiref TypedDicts, plain apps a
# dict), and a callable whose parameters are narrower than the declared ones does not match, so
# only `Any` there admits them all.
ASGIApplication = Callable[[Any, Any, Any], Awaitable[None]]


class MimoMiddleware:
    """Short-circuits MiMo-bound `POST /v1/responses` and `/v1/chat/completions`; everything
    else reaches `app` untouched, without its body being read. (With neither a resolver nor an
    api_key nothing is MiMo-bound, so those POSTs too pass through unread, unchecked.)

    resolver: called per inspected request with a `RouteRequest`; returns a `Lease`, an
      `Account` or None (sync or async). `accounts=` builds an `AccountPool` as the resolver;
      a `SharedAccountPool` given as the resolver is built-in routing too (the model decides,
      its accounts are listed and derive the seal key). A resolver with `aclose()` is closed
      with the middleware (lifespan shutdown).
    api_key / base_url: the model-name route (`mimo-*` models without an account); default
      to the MIMO_API_KEY / MIMO_BASE_URL environment variables, read once here.
    limits: caps on bodies, streams, attempts and upstream connections (see `Limits`).
    timeouts: connect, first byte and idle silence of MiMo requests (see `Timeouts`).
    seal_key: key (or keys, newest first) sealing reasoning into `encrypted_content`; default
      MIMO_ASGI_SEAL_KEY, else derived from the configured MiMo keys, else random per process.
    keepalive_seconds: an SSE comment after this much silence on a MiMo stream (0 = off).
    list_models: answer `GET /v1/models` with the MiMo-routed names, merged with the host's list.
    metrics: a `mimo_asgi.metrics.PrometheusMetrics` (the `metrics` extra) to record into.
    on_usage: called with a `UsageEvent` once per MiMo-routed response (cancelled ones too).
    store: where Responses are kept for `previous_response_id` and retrieval: "memory" (one
      process), a redis:// URL (several workers; the `redis` extra), a `ResponseStore`, or None.
    store_ttl: seconds a stored response lives (renewed when a conversation continues).
    web_search: a `mimo_asgi.search.WebSearch` run for accounts without MiMo's web search plugin
      (Token Plan); default: one built from SEARXNG_URL / TAVILY_API_KEY / BRAVE_API_KEY, if set.
    websocket: Responses over a WebSocket on the Responses paths (Codex's built-in provider
      tries it first). "bridge": served here, frames for other models sent to the host app as
      HTTP requests; "host": every such WebSocket handed to the host app untouched; "off":
      refused with 426, on which clients use HTTPS at once.
    """

    def __init__(
        self,
        app: ASGIApplication,
        *,
        resolver: Resolver | None = None,
        accounts: Sequence[Account] | None = None,
        api_key: str | None = _FROM_ENV,
        base_url: str | None = _FROM_ENV,
        responses_paths: Iterable[str] = DEFAULT_RESPONSES_PATHS,
        chat_paths: Iterable[str] = DEFAULT_CHAT_PATHS,
        limits: Limits = Limits(),
        timeouts: Timeouts = Timeouts(),
        forward_headers: Iterable[str] = (),
        seal_key: bytes | str | Sequence[bytes | str] | None = None,
        drop_unsupported_tools: bool = False,
        on_usage: Callable[[UsageEvent], Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        keepalive_seconds: float = 15.0,
        list_models: bool = True,
        metrics: PrometheusMetrics | None = None,
        store: ResponseStore | str | None = "memory",
        store_ttl: float = 86_400.0,
        web_search: WebSearch | None = _FROM_ENV,
        websocket: str = "bridge",
    ) -> None:
        if resolver is not None and accounts is not None:
            raise TypeError("pass either resolver= or accounts=, not both")
        if websocket not in ("bridge", "host", "off"):
            raise ValueError("websocket must be 'bridge', 'host' or 'off'")
        self.app = app
        self.pool: AccountPool | SharedAccountPool | None = (
            AccountPool(accounts) if accounts is not None else resolver if isinstance(resolver, SharedAccountPool)
            else None)
        self.resolver: Resolver | None = self.pool if self.pool is not None else resolver
        if api_key is _FROM_ENV:
            api_key = os.environ.get("MIMO_API_KEY", "").strip() or None
        if base_url is _FROM_ENV:
            base_url = os.environ.get("MIMO_BASE_URL", "").strip() or None
        env_account = Account("env", api_key, base_url=base_url, upstream="mimo") if api_key else None
        responses_paths = tuple(responses_paths)
        self.websocket = websocket
        self.websocket_paths = frozenset(responses_paths) if websocket != "host" else frozenset()
        self.routes = {p: "responses" for p in responses_paths} | {p: "chat" for p in chat_paths} | \
            {p.rstrip("/") + "/compact": "compact" for p in responses_paths}
        self.store: ResponseStore | None = open_store(store) if isinstance(store, str) else store
        self.stored_prefixes = tuple(p.rstrip("/") + "/" for p in responses_paths) if self.store is not None else ()
        never = ("authorization", "api-key", "host", "content-encoding", "content-length")
        self.list_models = list_models
        model_list = ModelList([*(self.pool.accounts if self.pool else ()), *([env_account] if env_account else [])])
        if metrics is not None:
            metrics.models.update(target.lower() for a in model_list.accounts for target in a.models.values())
            if isinstance(self.pool, AccountPool):  # a shared pool's count is its store's, read asynchronously
                metrics.track_pool(self.pool)
        self.upstream = UpstreamClient(timeouts=timeouts, transport=transport,
                                       max_connections=limits.max_upstream_connections)
        if web_search is _FROM_ENV:
            provider = provider_from_env(os.environ)
            web_search = WebSearch(provider) if provider is not None else None
        self.web_search: WebSearch | None = web_search or None
        self.runtime = Runtime(
            app=app, resolver=self.resolver, pool=self.pool, env_account=env_account, upstream=self.upstream,
            sealer=_sealer(seal_key, self.pool.accounts if self.pool is not None else (), env_account),
            limits=limits, store=self.store, store_ttl=store_ttl,
            web_search=self.web_search,
            forward_headers=tuple(h.lower() for h in forward_headers if h.lower() not in never),
            drop_unsupported_tools=drop_unsupported_tools, keepalive_seconds=keepalive_seconds,
            metrics=metrics, on_usage=on_usage, model_list=model_list,
        )

    @property
    def active_streams(self) -> int:
        """MiMo requests being served now."""
        return self.runtime.in_flight

    def declines(self, model: str) -> bool:
        """With built-in routing: True when no route serves `model`."""
        return self.runtime.declines(model)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "POST":
                route = self.routes.get(scope["path"])
                if route is not None and self.runtime.can_route:
                    await _http.serve(self.runtime, route, scope, receive, send)
                    return
            elif scope["method"] == "GET" and self.list_models and scope["path"] in MODELS_PATHS:
                await serve_models(self.app, self.runtime.model_list, self.upstream.client, scope, receive, send)
                return
            # `startswith` first: every other GET (`/health`, ...) skips the look-up.
            if self.stored_prefixes and scope["path"].startswith(self.stored_prefixes) and \
                    scope["method"] in ("GET", "DELETE"):
                target = stored_target(self.stored_prefixes, scope)
                if target is not None:
                    await serve_stored(self.runtime, scope, receive, send, target)
                    return
        elif scope["type"] == "websocket" and scope["path"] in self.websocket_paths and self.runtime.can_route:
            if self.websocket == "bridge":
                await _websocket.serve(self.runtime, scope, receive, send)
            else:
                await receive()  # the handshake's websocket.connect
                await _websocket.refuse(scope, send, "Responses over WebSocket are off here; use HTTPS.")
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
        await self.runtime.hooks.aclose()
        if self.store is not None:
            await self.store.aclose()
        if self.web_search is not None:
            await self.web_search.aclose()


def _sealer(seal_key: Any, accounts: Sequence[Account], env_account: Account | None) -> ReasoningSealer:
    if seal_key is None:
        seal_key = os.environ.get("MIMO_ASGI_SEAL_KEY") or None
    if seal_key is None:
        keys = sorted({a.key for a in accounts} | ({env_account.key} if env_account else set()))
        if keys:  # stable across restarts and workers, and unknown to clients
            seal_key = hashlib.sha256("\n".join(keys).encode()).digest()
    if seal_key is None:
        logger.warning("mimo_asgi: no seal_key configured; reasoning sealed with a per-process key "
                       "will not survive a restart or reach another worker")
        return ReasoningSealer.random()
    return ReasoningSealer(seal_key)
