"""`python -m benchmarks.profiling CASE [--top N]`: cProfile one benchmark's hot path in-process.

Cases:
- `passthrough`: 20,000 `POST /v1/responses` (non-MiMo model) to the Starlette host, in-process
  (scope/receive/send): bare, wrapped (no accounts: passed straight through) and routed (one MiMo
  account: peeked, offered to the pool, replayed), each timed;
- `chat`, `responses`: 40 replays of the recorded stream through benchmark 2's in-process path;
- `middleware-chat`, `middleware-responses`: 10 replays of the recorded stream through the whole
  `MimoMiddleware` in-process (its upstream on `httpx.MockTransport`): benchmark 2's path plus the
  relay, the responder's writes and the per-request work (2 only measures the translation);
- `streams`: 500 concurrent slow streams (benchmark 5's ramp) against a stalling fake MiMo.
Prints the top functions by own time, then by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time



async def _passthrough(n: int) -> None:
    from ._apps import gateway_for, host, _wrapped
    from ._asgi import call
    from .passthrough import body

    payload = body()
    for label, app in (("bare", host()), ("wrapped", _wrapped()), ("routed", gateway_for("http://127.0.0.1:9/v1"))):
        for _ in range(500):
            await call(app, "/v1/responses", payload)
        start = time.process_time()
        for _ in range(n):
            outcome = await call(app, "/v1/responses", payload)
        print(f"{label}: {(time.process_time() - start) * 1e6 / n:.1f} µs CPU per request in-process "
              f"(status {outcome.status})")


async def _stream(path: str, n: int) -> None:
    from . import translation
    from ._streams import recorded

    stream = recorded()
    context = translation.context_for(stream)
    async with translation.client_for(stream) as client:
        for _ in range(n):
            await translation.PATHS[path](client, context["payload"], context, translation.noop_send)


async def _middleware(route: str, n: int) -> None:
    import httpx

    from mimo_asgi import _json

    from . import translation
    from ._apps import gateway_for
    from ._asgi import call
    from ._streams import chat_request, recorded, responses_request

    stream = recorded()
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=translation._Reads(stream.reads)))
    app = gateway_for("http://mimo.test/v1", transport=transport, keepalive_seconds=0)
    path, body = (("/v1/responses", responses_request()) if route == "responses"
                  else ("/v1/chat/completions", chat_request()))
    payload = _json.dumps(body)
    start = time.process_time()
    for _ in range(n):
        outcome = await call(app, path, payload)
    print(f"{(time.process_time() - start) * 1e6 / (n * stream.chunks):.2f} µs CPU per upstream chunk "
          f"(status {outcome.status}, profiler included)")


def _streams_case() -> None:
    from . import concurrency
    from ._common import uvicorn_server

    concurrency.raise_fd_limit(4000)
    with uvicorn_server("benchmarks._apps:stalling", env={"BENCH_STALL": "60"},
                        extra=["--timeout-graceful-shutdown", "1"]) as upstream:
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(concurrency.measure(upstream.url + "/v1", 500, 250.0, 0.5))
        profile.disable()
    _print(profile, ARGS.top)


def _print(profile: cProfile.Profile, top: int) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(out.getvalue())


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("case", choices=["passthrough", "chat", "responses", "middleware-chat",
                                         "middleware-responses", "streams"])
    parser.add_argument("--top", type=int, default=25)
    ARGS = parser.parse_args()
    if ARGS.case == "streams":
        _streams_case()
        return
    if ARGS.case == "passthrough":
        work = _passthrough(20_000)
    elif ARGS.case.startswith("middleware-"):
        work = _middleware(ARGS.case.removeprefix("middleware-"), 10)
    else:
        work = _stream(ARGS.case, 40)
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(work)
    profile.disable()
    _print(profile, ARGS.top)


ARGS: argparse.Namespace

if __name__ == "__main__":
    main()
