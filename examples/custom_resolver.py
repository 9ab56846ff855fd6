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
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples._config import mimo_accounts
from mimo_asgi import Account, MimoMiddleware, OpenAIError, RouteRequest



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
    """The resolver: the caller's gateway key -> its account, leased with one semaphore per account."""

    def __init__(self, callers: Mapping[str, Account], *, wait: float = 10.0) -> None:
        self.callers = dict(callers)
        self.wait = wait
        self.slots = {a.name: anyio.Semaphore(a.max_concurrency, max_value=a.max_concurrency)
                      for a in self.callers.values()}

    def free(self, account_name: str) -> int:
        """Slots of that account not leased now."""
        return self.slots[account_name].value

    async def __call__(self, request: RouteRequest) -> SlotLease | None:
        account = self.callers.get(bearer(request.headers))
        if account is None or account.upstream_model(request.model) is None:
            return None  # not ours: the host app answers
        if account.name in request.exclude:
            return None  # a failover after this account failed: a caller has no other account
        slots = self.slots[account.name]
        try:
            with anyio.fail_after(self.wait):
                await slots.acquire()
        except TimeoutError:
            raise OpenAIError(503, f"Account {account.name!r} is busy; retry shortly.", type="server_error",
                              code="account_busy", headers={"retry-after": "1"}) from None
        return SlotLease(account, slots)


def host_app(callers: Mapping[str, Account]) -> Starlette:
    """The host: authenticates callers itself and answers what MiMo does not take."""

    async def answer(request: Request) -> JSONResponse:
        if bearer(request.headers) not in callers:
            error = {"message": "Unknown gateway key.", "type": "invalid_request_error", "param": None,
                     "code": "invalid_api_key"}
            return JSONResponse({"error": error}, status_code=401)
        model = (await request.json()).get("model")
        return JSONResponse({
            "id": "chatcmpl-host", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"answered by the host app for {model!r}"}}],
        })

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"]), Route("/health", health)])


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
    accounts, transport = mimo_accounts(env)
    callers = caller_store(env.get("GATEWAY_KEYS", ""), accounts)
    # With a resolver the middleware cannot see the account keys, so derive the seal key here as it
    # does for accounts=: stable across restarts and workers, unknown to clients.
    keys = "\n".join(sorted(a.key for a in accounts))
    seal_key = env.get("MIMO_ASGI_SEAL_KEY") or hashlib.sha256(keys.encode()).digest()
    return MimoMiddleware(host_app(callers), resolver=CallerAccounts(callers), api_key=None, base_url=None,
                          transport=transport, seal_key=seal_key)


app = build()
