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


class RecordingHost:
    """A host app that records every message it receives and answers 200 'host'."""

    def __init__(self):
        self.scopes = []
        self.received = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            self.received.append(await receive())
            await send({"type": "websocket.accept"})
            return
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-host", b"1")]})
        await send({"type": "http.response.body", "body": b"host"})


def http_scope(method="POST", path="/v1/responses", headers=()):
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


# examples/custom_resolver.py's two callers: alice and bob, each with a MiMo account and a gateway key
ALICE_KEY, BOB_KEY = "sk-alice-0123456789abcdef", "sk-bob-0123456789abcdef"
GW_ALICE, GW_BOB = "gw-alice-secret-0001", "gw-bob-secret-0002"


def custom_resolver_env(config_path, fake_url: str) -> dict[str, str]:
    """The environment examples/custom_resolver.py reads, for alice and bob on the fake MiMo (two
    concurrent requests per account); the accounts file is written to `config_path`."""
    config_path.write_text("".join(f"""
[[accounts]]
name = "{name}"
api_key_env = "{name.upper()}_MIMO_KEY"
base_url = "{fake_url}"
max_concurrency = 2
[accounts.models]
"gpt-5*" = "mimo-v2.5-pro"
""" for name in ("alice", "bob")))
    return {"MIMO_ASGI_CONFIG": str(config_path), "ALICE_MIMO_KEY": ALICE_KEY, "BOB_MIMO_KEY": BOB_KEY,
            "GATEWAY_KEYS": f"{GW_ALICE}=alice, {GW_BOB}=bob"}
