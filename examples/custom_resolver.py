"""Example: a resolver backed by the host's own account store.

    GATEWAY_KEYS='gw-alice=alice,gw-bob=bob' MIMO_ASGI_CONFIG=accounts.toml uvicorn examples.custom_resolver:app

Callers authenticate to this gateway with their own key (`Authorization: Bearer <gateway key>`).
The host's store maps that key to the MiMo account the caller may use (GATEWAY_KEYS: comma-separated
`gateway key=account name`). Each account allows `max_concurrency` requests at once; more wait up
to `wait` seconds for a slot, then get 503. Unknown callers and models no account maps are passed to
the host app, which answers 401 or with its own reply. The gateway key is never sent upstream: MiMo
gets the account's key.

MiMo accounts come from MIMO_ASGI_CONFIG (named [[accounts]]), else MIMO_API_KEY (one account named
"default"); with neither it runs in demo mode with an account named "demo" answered by the fake MiMo
in this process (a warning says so). Without GATEWAY_KEYS the single gateway key `gw-demo` uses the
first account.

With MIMO_ASGI_REDIS_URL the slots are leased from a `SharedAccountPool` on that Redis instead of a
semaphore per process (so `max_concurrency` holds across workers, and the pool's cooldowns and
disabled accounts apply), and stored responses live there too. The resolver then has the optional
hooks (`report`, `remember`, `aclose`) and hands them to the pool.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples._config import setup
from mimo_asgi import Account, Lease, MimoMiddleware, OpenAIError, RouteRequest, SharedAccountPool



def bearer(headers: Mapping[str, str]) -> str:
    """The key in `Authorization: Bearer <key>` (names lower-cased), or ""."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


class SlotLease:
    """One of an account's concurrency slots, held for one request."""

    def __init__(self, account: Account, slots: anyio.Semaphore) -> None:
        self.account = account
        self._slots = slots

    def release(self) -> None:
        self._slots.release()  # the middleware calls this exactly once; max_value catches a second call


class CallerAccounts:
    """The resolver: the caller's gateway key -> its account, leased with one semaphore per account,
    or from `shared` (a SharedAccountPool, for several workers) when given."""

    def __init__(self, callers: Mapping[str, Account], *, wait: float = 10.0,
                 shared: SharedAccountPool | None = None) -> None:
        self.callers = dict(callers)
        self.wait = wait
        self.shared = shared
        self.slots = {a.name: anyio.Semaphore(a.max_concurrency, max_value=a.max_concurrency)
                      for a in self.callers.values()}
        names = {a.name for a in shared.accounts} if shared else set()
        self._others = {a.name: frozenset(names - {a.name}) for a in self.callers.values()}

    def free(self, account_name: str) -> int:
        """Slots of that account not leased now (by this process's semaphores)."""
        return self.slots[account_name].value

    async def __call__(self, request: RouteRequest) -> Lease | None:
        account = self.callers.get(bearer(request.headers))
        if account is None or account.upstream_model(request.model) is None:
            return None  # not ours: the host app answers
        if account.name in request.exclude:
            return None  # a failover after this account failed: a caller has no other account
        try:
            with anyio.fail_after(self.wait):
                if self.shared is not None:
                    return await self._shared_lease(account, request)
                await self.slots[account.name].acquire()
        except TimeoutError:
            raise OpenAIError(503, f"Account {account.name!r} is busy; retry shortly.", type="server_error",
                              code="account_busy", headers={"retry-after": "1"}) from None
        return SlotLease(account, self.slots[account.name])

    async def _shared_lease(self, account: Account, request: RouteRequest) -> Lease:
        """The caller's account (and no other) from the shared pool, asked again every 50 ms
        while all its slots are in use; its other refusals (rate limited, disabled) stand."""
        only = dataclasses.replace(request, exclude=request.exclude | self._others[account.name])
        assert self.shared is not None
        while True:
            try:
                lease = await self.shared(only)
            except OpenAIError as err:
                if err.code != "accounts_busy":
                    raise
                await anyio.sleep(0.05)
                continue
            assert lease is not None  # the account serves the model, checked above
            return lease

    # The optional resolver hooks: the shared pool keeps the accounts' health and affinity.

    async def report(self, account: Account, error: OpenAIError | None) -> None:
        if self.shared is not None:
            await self.shared.report(account, error)

    async def remember(self, key: str, account_name: str) -> None:
        if self.shared is not None:
            await self.shared.remember(key, account_name)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()


def host_app(callers: Mapping[str, Account]) -> Starlette:
    """The host: authenticates callers itself and answers what MiMo does not take."""

    def refused(request: Request) -> JSONResponse | None:
        if bearer(request.headers) in callers:
            return None
        error = {"message": "Unknown gateway key.", "type": "invalid_request_error", "param": None,
                 "code": "invalid_api_key"}
        return JSONResponse({"error": error}, status_code=401)

    async def responses(request: Request) -> JSONResponse:
        """A Responses request MiMo does not take: its caller is refused, or told there is no such model here."""
        model = (await request.json()).get("model")
        return refused(request) or JSONResponse({"error": {
            "message": f"The model {model!r} is not served here.", "type": "invalid_request_error",
            "param": "model", "code": "model_not_found"}}, status_code=404)

    async def answer(request: Request) -> JSONResponse:
        if (refusal := refused(request)) is not None:
            return refusal
        model = (await request.json()).get("model")
        return JSONResponse({
            "id": "chatcmpl-host", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"answered by the host app for {model!r}"}}],
        })

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"]),
                             Route("/v1/responses", responses, methods=["POST"]), Route("/health", health)])


def caller_store(spec: str, accounts: list[Account]) -> dict[str, Account]:
    """GATEWAY_KEYS (`gw-alice=alice,gw-bob=bob`) -> {gateway key: account}; empty spec: `gw-demo` -> the first."""
    by_name = {a.name: a for a in accounts}
    if not spec.strip():
        return {"gw-demo": accounts[0]}
    store = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        key, _, name = (s.strip() for s in pair.partition("="))
        if not key or name not in by_name:  # the message names no key: keys stay out of logs
            raise ValueError(f"GATEWAY_KEYS: account {name!r} is not configured (accounts: {sorted(by_name)})")
        store[key] = by_name[name]
    return store


def build(env: Mapping[str, str] = os.environ) -> MimoMiddleware:
    """The host app behind MimoMiddleware with a `CallerAccounts` resolver (`app.resolver`)."""
    found = setup(env)
    accounts = found.accounts
    callers = caller_store(env.get("GATEWAY_KEYS", ""), accounts)
    resolver = CallerAccounts(callers, shared=found.shared_pool())
    return MimoMiddleware(host_app(callers), resolver=resolver, api_key=None, base_url=None,
                          transport=found.transport, seal_key=found.seal_key,
                          store=found.redis_url or "memory")


app = build()
