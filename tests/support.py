"""Helpers shared by the tests (importable as `support`: tests/ is on sys.path)."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TEST_KEY = "sk-test-0123456789abcdef"  # never a real key; asserted absent from bodies and logs
TEST_TP_KEY = "tp-test-0123456789abcdef"


async def _host_answer(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"answered_by": "host", "model": body.get("model")})


def host_app() -> Starlette:
    """A host app with its own answers on the inspected paths, and /health."""
    return Starlette(routes=[Route("/v1/responses", _host_answer, methods=["POST"]),
                             Route("/v1/chat/completions", _host_answer, methods=["POST"]),
                             Route("/health", lambda r: JSONResponse({"status": "ok"}))])


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
