"""`GET /v1/models`: every model name a client can send that routes to MiMo, merged with the
host's own list when it has one."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _json
from ._routing import chat_completions_url, resolve_base_url
from .accounts import Account

logger = logging.getLogger("mimo_asgi")
MODELS_PATHS = frozenset({"/v1/models", "/models"})


class ModelList:
    """Our names: the exact (non-wildcard) aliases of every account's mapping, their MiMo
    targets, and the models MiMo lists for one account (read once per `ttl`, falling back to
    the configured targets when MiMo cannot be asked)."""

    def __init__(self, accounts: list[Account], *, ttl: float = 600.0) -> None:
        self.accounts = accounts
        self.ttl = ttl
        self._upstream: list[str] = []
        self._fetched_at = float("-inf")

    def configured(self) -> list[str]:
        names: list[str] = []
        for account in self.accounts:
            for alias, target in account.models.items():
                if "*" not in alias:
                    names.append(alias)
                names.append(target.lower())
        return names

    async def upstream(self, client: httpx.AsyncClient) -> list[str]:
        if time.monotonic() - self._fetched_at < self.ttl or not self.accounts:
            return self._upstream
        self._fetched_at = time.monotonic()
        account = self.accounts[0]
        url = chat_completions_url(resolve_base_url(account.key, account.base_url)).removesuffix("/chat/completions")
        try:
            response = await client.get(url + "/models", headers={"authorization": f"Bearer {account.key}"},
                                        timeout=5.0)
            data = response.json().get("data") if response.status_code == 200 else None
            self._upstream = [m["id"] for m in data or () if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (httpx.HTTPError, ValueError, AttributeError):
            logger.warning("mimo_asgi: could not list MiMo's models for account %s; using the configured ones",
                           account.name)
        return self._upstream

    async def names(self, client: httpx.AsyncClient) -> list[str]:
        seen: dict[str, None] = {}
        for name in [*self.configured(), *await self.upstream(client)]:
            seen.setdefault(name, None)
        return list(seen)


def model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "xiaomi-mimo"}


async def serve_models(app: ASGIApp, models: ModelList, client: httpx.AsyncClient, scope: Scope, receive: Receive,
                       send: Send) -> None:
    """Ask the host first; merge its 200 list with ours, answer alone on its 404, and pass any
    other answer through unchanged."""
    start: Message | None = None
    parts: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, capture)
    body = b"".join(parts)
    status = start["status"] if start else 500
    host: list[Any] | None = None
    if status == 200:
        try:
            parsed = _json.loads(body)
            host = parsed["data"] if isinstance(parsed, dict) and isinstance(parsed.get("data"), list) else None
        except _json.JSONDecodeError:
            host = None
    if start is None or (status != 404 and host is None):
        if start is not None:
            await send(start)
            await send({"type": "http.response.body", "body": body})
        return
    ours = [model_object(n) for n in await models.names(client)]
    known = {m.get("id") for m in host or () if isinstance(m, dict)}
    data = [*(host or ()), *(m for m in ours if m["id"] not in known)]
    payload = _json.dumps({"object": "list", "data": data})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
