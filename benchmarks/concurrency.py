"""Benchmark 5: 1,000 concurrent slow streams through the middleware in one process.

The upstream is `mimo_asgi.testing.FakeMimo` under uvicorn in its own process (`_apps:stalling`),
answering reasoning + text that stalls after 20 events for longer than the test holds. This
process runs the middleware as an ASGI app (in-process scope/receive/send: no server, so the
figures are the middleware's and its httpx pool's, not uvicorn's), opens 1,000
`POST /v1/responses` streams at 500 per second, waits until every one has sent its first body
bytes, holds while all are stalled, measures, then cancels them (1,000 clients leaving).

- 5c: the same with 200 streams of a 114 KB Codex-like request (a long history), to show what
  per-stream memory is made of in practice: the request, not the stream.
- RSS per open stream: (RSS with all streams open - RSS after one warm-up stream, before
  opening them) / streams, `gc.collect()` before each reading; includes each stream's driver
  task and its in-process receive/send closures (a few hundred bytes).
- event-loop lag: a ticker sleeps 5 ms in a loop and records how late it wakes, over the ramp
  and the hold; p99 of those oversleeps (wall clock: the pass/fail figure). Also reported: the
  part of each oversleep during which this process was on the CPU, i.e. lag caused by our own
  work rather than by other processes on a shared machine.
The middleware gets `transport=httpx.AsyncHTTPTransport(limits=...)` raising httpx's pool to
1,100 connections: its own pool default (200) would queue streams 201+ (see README).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mimo_asgi._json import dumps

from ._apps import gateway_for
from ._asgi import Outcome, call
from ._common import ROOT, Row, percentile, uvicorn_server
from ._streams import long_responses_request, responses_request

TICK = 0.005
STREAMS, RATE, LONG_STREAMS = 1000, 500.0, 200


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


async def _ticker(lags: list[float], busy: list[float], stop: asyncio.Event) -> None:
    """`lags`: how late each 5 ms sleep woke (ms). `busy`: the part of that lateness this
    process spent on the CPU (the rest is the OS running something else: steal, not us)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start, cpu = loop.time(), time.process_time()
        await asyncio.sleep(TICK)
        late = loop.time() - start - TICK
        lags.append(late * 1e3)
        busy.append(max(0.0, min(late, time.process_time() - cpu)) * 1e3)


async def measure(url: str, streams: int, rate: float, hold: float, request: dict | None = None) -> dict:
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=streams + 100,
                                                             max_keepalive_connections=streams + 100))
    app = gateway_for(url, transport=transport)
    warm_request = responses_request()
    warm_request["input"] = "warm-up"
    warm = await call(app, "/v1/responses", dumps(warm_request))
    if warm.status != 200:
        raise RuntimeError(f"warm-up answered {warm.status}")
    body = dumps(request or responses_request())
    gc.collect()
    idle = rss_kib()
    lags: list[float] = []
    busy: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, busy, stop))
    cpu0 = time.process_time()
    outcomes = [Outcome() for _ in range(streams)]
    tasks = []
    start = time.monotonic()
    for i, outcome in enumerate(outcomes):
        tasks.append(asyncio.create_task(call(app, "/v1/responses", body, outcome)))
        await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    await asyncio.wait_for(asyncio.gather(*(o.first_body.wait() for o in outcomes)), 60)
    ramp = time.monotonic() - start
    await asyncio.sleep(hold)
    gc.collect()
    open_rss = rss_kib()
    measured, measured_busy = list(lags), list(busy)
    cpu = time.process_time() - cpu0
    messages = sorted(o.messages for o in outcomes)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await ticker
    await app.aclose()
    return {"idle_kib": idle, "open_kib": open_rss, "per_stream_kib": (open_rss - idle) / streams,
            "lag_p99_ms": percentile(measured, 99), "lag_max_ms": max(measured), "ticks": len(measured),
            "busy_p99_ms": percentile(measured_busy, 99), "busy_max_ms": max(measured_busy),
            "cpu_per_stream_ms": cpu * 1e3 / streams,
            "statuses": sorted({o.status for o in outcomes}), "ramp_s": ramp,
            "messages_min": messages[0], "messages_max": messages[-1]}


async def _parked(scope: dict, receive: object, send: object) -> None:
    await receive()  # type: ignore[operator]
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"x", "more_body": True})  # type: ignore[operator]
    await asyncio.Event().wait()


async def driver_baseline(streams: int) -> float:
    """KiB per stream of this harness alone: the same driver parked on a trivial ASGI app."""
    gc.collect()
    before = rss_kib()
    outcomes = [Outcome() for _ in range(streams)]
    tasks = [asyncio.create_task(call(_parked, "/v1/responses", b"{}", o)) for o in outcomes]
    await asyncio.gather(*(o.first_body.wait() for o in outcomes))
    gc.collect()
    after = rss_kib()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return (after - before) / streams


def _child(kind: str, quick: bool) -> dict:
    """One measurement in a fresh process: memory freed by an earlier one would hide growth."""
    code = f"import json, benchmarks.concurrency as c; print(json.dumps(c.measure_kind({kind!r}, {quick})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_kind(kind: str, quick: bool) -> dict:
    if kind == "harness":
        return {"per_stream_kib": asyncio.run(driver_baseline(STREAMS))}
    streams, rate, hold, request = (STREAMS, RATE, 2.0 if quick else 5.0, None) if kind == "short" else \
        (LONG_STREAMS, 100.0, 1.0, long_responses_request())
    raise_fd_limit(4 * streams + 256)
    stall = streams / rate + hold + 30
    with uvicorn_server("benchmarks._apps:stalling", env={"BENCH_STALL": str(stall)},
                        extra=["--timeout-graceful-shutdown", "1"]) as upstream:
        result = asyncio.run(measure(upstream.url + "/v1", streams, rate, hold, request))
    return result | {"rate": rate, "hold": hold, "limit": raise_fd_limit(0)}


def run(quick: bool) -> list[Row]:
    result, big, harness = _child("short", quick), _child("long", quick), _child("harness", quick)["per_stream_kib"]
    per, lag = result["per_stream_kib"], result["lag_p99_ms"]
    long_kb = len(dumps(long_responses_request())) / 1024
    rows = [Row("5a RSS per open stream (1,000 streams)", f"{per:.1f} KiB", "-", None, "< 64 KiB", per < 64),
            Row("5b event-loop lag p99 (1,000 streams)", f"{lag:.1f} ms (max {result['lag_max_ms']:.1f})", "-", None,
                "< 20 ms", lag < 20),
            Row(f"5c RSS per open stream, {long_kb:.0f} KB request", f"{big['per_stream_kib']:.0f} KiB", "-", None,
                "- (informational)", None)]
    rows[0].notes.append(f"5: RSS {result['idle_kib'] / 1024:.1f} MiB idle -> {result['open_kib'] / 1024:.1f} MiB "
                         f"with {STREAMS} open; ramp {result['ramp_s']:.1f}s (asked {STREAMS / RATE:.0f}s), hold "
                         f"{result['hold']:.0f}s; {result['cpu_per_stream_ms']:.1f} ms CPU per stream (ramp + hold); "
                         f"lag from our own CPU work p99 {result['busy_p99_ms']:.1f} ms, max {result['busy_max_ms']:.1f} "
                         f"ms; {result['ticks']} ticks of {TICK * 1e3:.0f} ms; client messages per stream "
                         f"{result['messages_min']}-{result['messages_max']}; statuses {result['statuses']}; "
                         f"RLIMIT_NOFILE {result['limit']}. The harness alone (driver task, receive/send closures, a "
                         f"trivial app parked) is {harness:.1f} KiB/stream, so the middleware's own share is about "
                         f"{per - harness:.1f} KiB.")
    rows[2].notes.append(f"5c: {LONG_STREAMS} streams of a {long_kb:.0f} KB Responses request (60 earlier tool turns), "
                         f"otherwise as 5a ({big['per_stream_kib'] / long_kb:.1f}x the request size per stream); every "
                         f"stream here shares one request bytes object, so a real server also holds each request's "
                         f"raw bytes.")
    return rows
