"""Example: a Starlette app with routes of its own and MimoMiddleware in its middleware list.

    uvicorn examples.starlette_app:app --port 8000

Configured like examples/gateway.py: MIMO_ASGI_CONFIG (a TOML file of [[accounts]]), else
MIMO_API_KEY (+ MIMO_BASE_URL, MIMO_MODEL_MAP such as "gpt-5*=mimo-v2.5-pro"); with neither it runs
in demo mode, answering MiMo requests from the fake MiMo in this process (a warning says so).
MIMO_ASGI_REDIS_URL shares stored responses and account limits between workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples._config import setup
from mimo_asgi import MimoMiddleware



async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def chat(request: Request) -> JSONResponse:
    """The host's own answer: every chat request MiMo does not take ends here."""
    body = await request.json()
    model = body.get("model")
    return JSONResponse({
        "id": "chatcmpl-host", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": f"answered by the Starlette app for {model!r}"}}],
    })


def build(env: Mapping[str, str] = os.environ) -> Starlette:
    """The Starlette app, with MiMo requests short-circuited by its first middleware."""
    found = setup(env)
    return Starlette(
        routes=[Route("/health", health), Route("/v1/chat/completions", chat, methods=["POST"])],
        # api_key=None: only the accounts above decide, never a MIMO_API_KEY left in os.environ.
        middleware=[Middleware(MimoMiddleware, **found.state(), api_key=None, base_url=None,
                               transport=found.transport)],
    )


app = build()
