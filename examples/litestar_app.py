"""Example: a Litestar app wrapped by MimoMiddleware.

    uvicorn examples.litestar_app:app --port 8000

Litestar runs app-level middleware (`Litestar(middleware=[DefineMiddleware(...)])`) only after
routing, as part of the matched handler. A `POST /v1/responses` that Litestar has no handler for
is answered 404 before any such middleware is called, so MiMo would never see it. Wrapping the
application object puts MimoMiddleware in front of the router instead.

Configured like examples/gateway.py: MIMO_ASGI_CONFIG, else MIMO_API_KEY (+ MIMO_BASE_URL,
MIMO_MODEL_MAP); with neither it runs in demo mode, answering MiMo requests from the fake MiMo in
this process (a warning says so). MIMO_ASGI_REDIS_URL shares stored responses and account limits
between workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from litestar import Litestar, Request, get, post

from examples._config import setup
from mimo_asgi import MimoMiddleware



@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/v1/chat/completions", status_code=200)
async def chat(request: Request) -> dict[str, Any]:
    """The host's own answer: every chat request MiMo does not take ends here."""
    model = (await request.json()).get("model")
    return {
        "id": "chatcmpl-host", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": f"answered by the Litestar app for {model!r}"}}],
    }


def build(env: Mapping[str, str] = os.environ) -> MimoMiddleware:
    """The Litestar app behind MimoMiddleware (outside it, not in `middleware=`: see above)."""
    found = setup(env)
    return MimoMiddleware(Litestar(route_handlers=[health, chat]), **found.state(), api_key=None, base_url=None,
                          transport=found.transport)


app = build()
