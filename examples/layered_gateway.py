"""Example: the host app is itself an OpenAI-compatible proxy, and MiMo requests short-circuit before it.

    UPSTREAM_BASE_URL=https://api.openai.com/v1 uvicorn examples.layered_gateway:app --port 8000

The host forwards every request it receives on /v1/responses and /v1/chat/completions to
UPSTREAM_BASE_URL (default https://api.openai.com/v1) with the client's own headers and the exact
body bytes, and streams the answer back with its status and content type. MimoMiddleware sits in
front: models that route to MiMo never reach the host, so they never reach that upstream.

MiMo is configured like examples/gateway.py: MIMO_ASGI_CONFIG, else MIMO_API_KEY (+ MIMO_BASE_URL,
MIMO_MODEL_MAP); with neither it runs in demo mode, answering MiMo requests from the fake MiMo in
this process (a warning says so). MIMO_ASGI_REDIS_URL shares stored responses and account limits
between workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from examples._config import setup
from mimo_asgi import MimoMiddleware

# Hop-by-hop headers and those httpx sets itself for the new connection.
_NOT_FORWARDED = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                            "upgrade", "proxy-authorization", "proxy-connection", "accept-encoding"})


def host_app(upstream_base_url: str) -> Starlette:
    """The proxy: forwards the two OpenAI routes to `upstream_base_url`, plus its own /health."""
    base = upstream_base_url.rstrip("/")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
        # Model answers can take minutes between bytes; connecting should not.
        async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=10)) as client:
            yield {"http": client}

    async def forward(request: Request) -> Response:
        client: httpx.AsyncClient = request.state.http
        path = request.url.path.removeprefix("/v1")  # the base URL carries its own /v1
        outgoing = client.build_request(
            request.method, base + path, params=request.query_params, content=await request.body(),
            headers=[(k, v) for k, v in request.headers.items() if k not in _NOT_FORWARDED])
        try:
            upstream = await client.send(outgoing, stream=True)
        except httpx.HTTPError:
            error = {"message": "The upstream could not be reached.", "type": "server_error",
                     "param": None, "code": "upstream_unreachable"}
            return JSONResponse({"error": error}, status_code=502)
        # Starlette runs the background task after the body is sent or the client has gone.
        return StreamingResponse(upstream.aiter_bytes(), status_code=upstream.status_code,
                                 media_type=upstream.headers.get("content-type"),
                                 background=BackgroundTask(upstream.aclose))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "upstream": base})

    return Starlette(routes=[Route("/v1/responses", forward, methods=["POST"]),
                             Route("/v1/chat/completions", forward, methods=["POST"]),
                             Route("/health", health)], lifespan=lifespan)


def build(env: Mapping[str, str] = os.environ) -> MimoMiddleware:
    """The proxy behind MimoMiddleware; UPSTREAM_BASE_URL is where non-MiMo requests go."""
    found = setup(env)
    upstream = env.get("UPSTREAM_BASE_URL", "").strip() or "https://api.openai.com/v1"
    return MimoMiddleware(host_app(upstream), **found.state(), api_key=None, base_url=None,
                          transport=found.transport)


app = build()
