"""Example gateway: a FastAPI host app with routes of its own, wrapped by MimoMiddleware.

    uvicorn examples.gateway:app --port 8000

Configuration, in this order:
- MIMO_ASGI_CONFIG: a TOML file of [[accounts]] (see README);
- MIMO_API_KEY (+ MIMO_BASE_URL, MIMO_MODEL_MAP such as "gpt-5*=mimo-v2.5-pro,o3=mimo-v2-pro");
- neither: demo mode, answering from the fake MiMo in this process (a warning says so).
With MIMO_ASGI_REDIS_URL (or `redis_url` in the file) the stored responses and the accounts'
leases, cooldowns and affinity live in that Redis, shared by every worker:

    MIMO_ASGI_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.gateway:app --workers 4
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from examples._config import setup
from mimo_asgi import MimoMiddleware
from mimo_asgi.metrics import PrometheusMetrics

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is ours


def host_app() -> FastAPI:
    """The gateway's own app: stands in for its other upstreams (OpenAI accounts and so on)."""
    host = FastAPI(title="example gateway")

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @host.post("/v1/responses")
    async def host_responses(request: Request) -> dict[str, object]:
        body = await request.json()
        text = _host_text(body.get("model"))
        return {
            "id": "resp_host", "object": "response", "created_at": int(time.time()), "status": "completed",
            "model": body.get("model"),
            "output": [{"type": "message", "id": "msg_host", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        }

    @host.post("/v1/chat/completions")
    async def host_chat(request: Request) -> dict[str, object]:
        body = await request.json()
        return {
            "id": "chatcmpl-host", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": _host_text(body.get("model"))}}],
        }

    return host


def _host_text(model: object) -> str:
    return f"answered by the host app for {model!r}, not by MiMo"


def build(env: Mapping[str, str] = os.environ) -> MimoMiddleware:
    """The host app wrapped by the middleware, configured from `env`."""
    found = setup(env)
    host = host_app()
    metrics = PrometheusMetrics()
    host.add_route("/metrics", lambda request: Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST))
    return MimoMiddleware(host, **found.state(), api_key=None, base_url=None, transport=found.transport,
                          metrics=metrics, keepalive_seconds=float(env.get("MIMO_KEEPALIVE_SECONDS", "15")),
                          websocket=env.get("MIMO_ASGI_WEBSOCKET", "bridge"))


app = build()
