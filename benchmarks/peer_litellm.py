"""Benchmark 3: CPU per stream, mimo_asgi vs LiteLLM's Responses-over-chat-completions bridge.

Both read the same recorded stream from the stand-in MiMo (`_apps:upstream`, its own uvicorn
process) over loopback and turn it into Responses SSE bytes, in this process, one stream at a
time, alternating which goes first each round:

- ours: `MimoMiddleware` called as an ASGI app (in-process scope/receive/send, no server) on
  `POST /v1/responses` with the Codex-like request; its pooled httpx client reads the upstream.
- LiteLLM: `litellm.aresponses(model="xiaomi_mimo/mimo-v2.5-pro", api_base=<upstream>, stream=True)`
  (LiteLLM's own MiMo provider; it has no native Responses config, so LiteLLM routes it through
  `litellm/responses/litellm_completion_transformation/`: `acompletion` + CustomStreamWrapper +
  LiteLLMCompletionStreamingIterator). Every event is serialised the way LiteLLM's proxy does on
  its fast path (`model_dump_json(exclude_none=True, exclude_unset=True)` framed as `data: ...`).
  LiteLLM needs `allowed_openai_params` for the tools on this provider. No callbacks are set,
  and its proxy's per-request work (auth, hooks, routing) is not included: a lower bound.

CPU is `time.process_time()` (all threads of this process) from the request to 0.2 s after the
last event, so work LiteLLM defers to background tasks and threads (logging, cost) is counted;
both sides get the same idle tail. Figure: median CPU ms per stream; ratio LiteLLM / ours.
Must run where LiteLLM is installed (the benchmark venv; see README).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ._apps import BENCH_KEY, gateway_for
from ._asgi import call
from ._common import Row, median, uvicorn_server
from ._streams import recorded, responses_request

SETTLE = 0.2


async def _ours(app: Any, body: bytes) -> int:
    outcome = await call(app, "/v1/responses", body)
    if outcome.status != 200:
        raise RuntimeError(f"gateway answered {outcome.status}")
    return outcome.messages


async def _litellm(url: str) -> int:
    import litellm

    request = responses_request()
    stream = await litellm.aresponses(
        model="xiaomi_mimo/mimo-v2.5-pro", api_base=url, api_key=BENCH_KEY, input=request["input"],
        instructions=request["instructions"], tools=request["tools"], tool_choice="auto", parallel_tool_calls=False,
        reasoning=request["reasoning"], include=request["include"], store=False, stream=True,
        allowed_openai_params=["tools", "tool_choice", "parallel_tool_calls", "reasoning_effort"],
    )
    events = 0
    async for event in stream:
        out = f"data: {event.model_dump_json(exclude_none=True, exclude_unset=True)}\n\n".encode()
        events += bool(out)
    return events


async def _timed(work: Any) -> tuple[float, int]:
    start = time.process_time()
    count = await work
    await asyncio.sleep(SETTLE)
    return (time.process_time() - start) * 1e3, count


async def measure(url: str, rounds: int) -> dict[str, Any]:
    from mimo_asgi._json import dumps

    app = gateway_for(url)
    body = dumps(responses_request())
    counts = {}
    for _ in range(2):  # warm-up: imports, pools, caches
        counts["ours"] = await _ours(app, body)
        counts["litellm"] = await _litellm(url)
    cpu: dict[str, list[float]] = {"ours": [], "litellm": []}
    for i in range(rounds):
        order = ("ours", "litellm") if i % 2 == 0 else ("litellm", "ours")
        for name in order:
            work = _ours(app, body) if name == "ours" else _litellm(url)
            ms, _ = await _timed(work)
            cpu[name].append(ms)
    await app.aclose()
    return {"cpu": cpu, "counts": counts}


def run(quick: bool) -> list[Row]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        import litellm
    except ImportError:
        return [Row("3 Responses CPU/stream vs LiteLLM", "-", "LiteLLM not installed", None, ">= 5x less", None,
                    ["3: skipped: run inside benchmarks/.venv (python -m benchmarks.run does this)"])]
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    stream = recorded()
    with uvicorn_server("benchmarks._apps:upstream") as upstream:
        result = asyncio.run(measure(upstream.url + "/v1", 5 if quick else 15))
    ours, theirs = median(result["cpu"]["ours"]), median(result["cpu"]["litellm"])
    ratio = theirs / ours
    row = Row("3 Responses CPU/stream vs LiteLLM", f"{ours:.1f} ms/stream",
              f"{theirs:.1f} ms/stream (LiteLLM {litellm_version()})", ratio, ">= 5x less", ratio >= 5)
    row.notes.append(f"3: {stream.chunks} upstream chunks per stream; per chunk: ours {ours * 1e3 / stream.chunks:.1f} "
                     f"µs, LiteLLM {theirs * 1e3 / stream.chunks:.1f} µs (HTTP client, translation and SSE encoding, "
                     f"{SETTLE}s idle tail included for both).")
    return [row]


def litellm_version() -> str:
    from importlib.metadata import version

    return version("litellm")
