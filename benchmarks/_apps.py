"""The ASGI apps the benchmarks serve under uvicorn (`benchmarks._apps:<name>`).

- `bare`: a plain Starlette host (`GET /health`, `POST /v1/responses` answered by the host).
- `wrapped`: the same host wrapped in `MimoMiddleware` with no accounts and `api_key=None`,
  so every request passes through (with nothing that could route to MiMo, unread).
- `routed`: the same host wrapped in `MimoMiddleware` with one MiMo account (`gpt-5*` ->
  `mimo-v2.5-pro`, at an unreachable URL): the configuration of a real deployment, where a
  request for another model is peeked, offered to the account pool, and replayed to the host.
- `peek`: the host behind a minimal pure-ASGI middleware that reads the body of `POST` on the
  inspected paths, `orjson.loads` it, and replays the same messages: the floor of any
  body-peeking middleware.
- `upstream`: a stand-in MiMo that answers every POST with the recorded stream, one ASGI
  message per recorded read (`BENCH_CHUNKS` sets its length; default 2,400 chunks).
- `gateway`: the host wrapped in `MimoMiddleware` with one MiMo account pointing at
  `BENCH_UPSTREAM` (the `upstream` app above), mapping `gpt-5*` to `mimo-v2.5-pro`.
- `stalling`: `mimo_asgi.testing.FakeMimo` answering with reasoning and text that stall after
  20 events for `BENCH_STALL` seconds (a request mentioning "warm-up" gets a quick answer).
- `served`: `gateway` whose host also has `POST /relay`, a minimal raw-ASGI proxy that forwards
  the upstream's bytes untouched (pooled httpx client, one ASGI send per read), and, outermost,
  `GET /__cpu` answering the process's `time.process_time()` (ns precision, unlike /proc ticks).
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BENCH_KEY = "sk-bench-0123456789abcdef"


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _host_responses(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"id": "resp_host", "object": "response", "status": "completed", "bytes": len(body)})


def host() -> Starlette:
    return Starlette(routes=[Route("/health", _health), Route("/v1/responses", _host_responses, methods=["POST"]),
                             Route("/v1/chat/completions", _host_responses, methods=["POST"])])


bare = host()


def _wrapped() -> Any:
    from mimo_asgi import MimoMiddleware

    return MimoMiddleware(host(), api_key=None, seal_key="benchmark seal key")


def gateway_for(url: str, app: Any = None, **options: Any) -> Any:
    """`app` (default: the host) wrapped in MimoMiddleware with one MiMo account at `url`."""
    from mimo_asgi import Account, MimoMiddleware

    account = Account("bench", BENCH_KEY, base_url=url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"},
                      max_concurrency=100_000)
    return MimoMiddleware(app or host(), accounts=[account], seal_key="benchmark seal key", **options)


def _upstream_url() -> str:
    return os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9/v1")


class Peek:
    """Read, parse and replay the body of inspected POSTs; nothing else."""

    paths = frozenset({"/v1/responses", "/responses", "/v1/chat/completions", "/chat/completions"})

    def __init__(self, app: Any) -> None:
        import orjson

        self.app = app
        self.loads = orjson.loads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.loads(b"".join(m.get("body", b"") for m in messages))

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class Relay:
    """`POST /relay`: the floor of a Python ASGI proxy; other requests go to `app`."""

    def __init__(self, app: Any, upstream: str) -> None:
        self.app = app
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.client: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/relay":
            await self.app(scope, receive, send)
            return
        import httpx

        if self.client is None:
            self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200))
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {"content-type": "application/json", "authorization": f"Bearer {BENCH_KEY}"}
        async with self.client.stream("POST", self.url, content=b"".join(parts), headers=headers) as response:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(b"content-type", b"text/event-stream")]})
            async for raw in response.aiter_bytes():
                await send({"type": "http.response.body", "body": raw, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Probe:
    """`GET /__cpu`: this process's CPU seconds so far, as text."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__cpu":
            import time

            body = repr(time.process_time()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class Upstream:
    """Replays the recorded stream to any POST (after reading the request body)."""

    def __init__(self, chunks: int) -> None:
        from ._streams import recorded

        self.reads = recorded(chunks).reads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        for read in self.reads:
            await send({"type": "http.response.body", "body": read, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stalling() -> Any:
    from mimo_asgi import _json
    from mimo_asgi.testing import Answer, FakeMimo

    stall = float(os.environ.get("BENCH_STALL", "30"))
    fake = FakeMimo(keys=[BENCH_KEY])

    def answer(body: dict) -> Answer:
        if b"warm-up" in _json.dumps(body):
            return Answer(reasoning="warm", text="up")
        return Answer(reasoning="thinking " * 20, text="hello " * 40, chunk_size=4, stall_after=(20, stall))

    fake.respond_with(answer)
    return fake


def __getattr__(name: str) -> Any:  # built on first use, so `bare` alone never imports mimo_asgi
    if name == "wrapped":
        return _wrapped()
    if name == "peek":
        return Peek(host())
    if name == "routed":
        return gateway_for("http://127.0.0.1:9/v1")
    if name == "gateway":
        return gateway_for(_upstream_url())
    if name == "stalling":
        return _stalling()
    if name == "served":
        return Probe(gateway_for(_upstream_url(), Relay(host(), _upstream_url())))
    if name == "upstream":
        return Upstream(int(os.environ.get("BENCH_CHUNKS", "2400")))
    raise AttributeError(name)
