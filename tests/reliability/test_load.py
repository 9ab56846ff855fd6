"""Many concurrent clients, random upstream faults and random client disconnects, both routes,
stream and not. Afterwards nothing is held: no lease, no upstream connection in use, no fake
request still running, and every client that stayed got exactly one terminal.

CI size by default (50 clients, 500 requests); `MIMO_LOAD_FULL=1` runs 200 clients over
10,000 requests. Latency added over calling the fake directly is printed, never asserted.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import statistics
import time
from typing import Any

import httpx
import pytest
from reliability.outcomes import PATHS, check_outcome, request_body
from support import TEST_KEY, wait_for

from mimo_asgi import Account, Timeouts
from mimo_asgi.testing import Answer, ToolCall, error_body

FULL = os.environ.get("MIMO_LOAD_FULL") == "1"
CLIENTS = 200 if FULL else 50
TOTAL = 10_000 if FULL else 500
DEADLINE = 1800.0 if FULL else 90.0  # a hang fails the test instead of holding CI
LATENCY_ROUNDS = 300 if FULL else 40
TIMEOUTS = Timeouts(connect=2, first_byte=5, idle=0.5)
# Clients, gateway and fake share one process and two cores: under the full load a request can
# queue for many seconds, which is not what this test is about.
CLIENT_TIMEOUT = 120.0 if FULL else 30.0

# tag -> (weight, answer); the tag travels in the prompt so every attempt of a request gets it
FAULTS: dict[str, tuple[int, Answer]] = {
    "ok": (55, Answer(text="a fine answer of some length", chunk_size=4)),
    "tool": (8, Answer(tool_calls=[ToolCall("exec_command", {"cmd": "ls -la"})], chunk_size=5)),
    "length": (3, Answer(text="cut by length", finish_reason="length")),
    "no_done": (4, Answer(done=False)),
    "http_429": (4, Answer.rate_limited(headers={"retry-after": "0"})),
    "http_500": (4, Answer.error_status(500, headers={"retry-after": "0"})),
    "cut": (7, Answer(text="this answer is cut short", chunk_size=2, cut_after=4)),
    "in_band": (5, Answer(error=error_body(500), error_after=3)),
    "stall": (3, Answer(text="stalls past the idle timeout", chunk_size=4, stall_after=(3, 2.0))),
    "slow": (7, Answer(text="slow to start", silence_before=0.4)),
}
_TAGS = list(FAULTS)
_WEIGHTS = [FAULTS[t][0] for t in _TAGS]


def _respond(body: dict[str, Any]) -> Answer:
    text = str(body["messages"][-1].get("content", ""))
    tag = text.rsplit("fault=", 1)[-1] if "fault=" in text else "ok"
    return FAULTS.get(tag, FAULTS["ok"])[1]


class Tally:
    def __init__(self) -> None:
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []
        self.left = 0
        self.latencies: list[float] = []


async def _one(client: httpx.AsyncClient, url: str, rng: random.Random, tally: Tally) -> None:
    route = rng.choice(("chat", "responses"))
    stream = rng.random() < 0.6
    tag = rng.choices(_TAGS, _WEIGHTS)[0]
    leave_mid_stream = stream and rng.random() < 0.1
    leave_early = not stream and tag == "slow" and rng.random() < 0.5  # gives up while MiMo is silent
    body = request_body(route, stream, text=f"load test fault={tag}")
    started = time.perf_counter()
    try:
        if stream:
            async with client.stream("POST", url + PATHS[route], json=body, timeout=CLIENT_TIMEOUT) as response:
                if leave_mid_stream:
                    async for _ in response.aiter_bytes():
                        if rng.random() < 0.5:
                            break
                    tally.left += 1
                    return
                raw = await response.aread()
        else:
            response = await client.post(url + PATHS[route], json=body, timeout=0.1 if leave_early else CLIENT_TIMEOUT)
            raw = response.content
    except httpx.TimeoutException:
        if leave_early:
            tally.left += 1
            return
        tally.violations.append(f"{route} stream={stream} {tag}: client timed out")
        return
    except httpx.HTTPError as exc:
        tally.violations.append(f"{route} stream={stream} {tag}: {type(exc).__name__} {exc}")
        return
    try:
        outcome = check_outcome(route, stream, response.status_code, raw, response.headers.get("content-type", ""))
    except AssertionError as exc:
        tally.violations.append(f"{route} stream={stream} {tag}: {exc}")
        return
    tally.outcomes[outcome] += 1
    if tag == "ok" and response.status_code == 200:
        tally.latencies.append(time.perf_counter() - started)


async def _run_load(url: str, tally: Tally) -> None:
    rng = random.Random(int(os.environ.get("MIMO_LOAD_SEED", "20240611")))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(TOTAL):
        queue.put_nowait(i)
    # idle connections are dropped well before uvicorn's 5 s keep-alive timeout closes them, so a
    # request never races the server's close (that race resets the connection, a client matter)
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS, keepalive_expiry=2.0)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                await _one(client, url, rng, tally)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CLIENTS))), DEADLINE)


def _busy_upstream_connections(mw) -> int:
    """Connections of the middleware's httpx pool that are neither idle nor closed."""
    client = mw.upstream._client
    if client is None:
        return 0
    return sum(1 for c in client._transport._pool.connections if not c.is_idle() and not c.is_closed())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _added_latency(url: str, fake_url: str) -> tuple[list[float], list[float]]:
    """Interleaved rounds: the same streamed answer straight from the fake, then through the gateway."""
    direct, through = [], []
    mimo_body = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "fault=ok"}], "stream": True}
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(LATENCY_ROUNDS):
            t0 = time.perf_counter()
            response = await client.post(fake_url + "/chat/completions", json=mimo_body,
                                         headers={"authorization": f"Bearer {TEST_KEY}"})
            t1 = time.perf_counter()
            assert response.status_code == 200
            response = await client.post(url + PATHS["chat"], json=request_body("chat", True, text="fault=ok"))
            t2 = time.perf_counter()
            assert response.status_code == 200
            direct.append(t1 - t0)
            through.append(t2 - t1)
    return direct, through


@pytest.mark.e2e
def test_concurrent_clients_with_faults_and_disconnects_leave_nothing_behind(serve_gateway, fake, fake_url):
    accounts = [Account(f"acct-{i}", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"},
                        max_concurrency=CLIENTS) for i in range(8)]
    usage_events: list = []
    url, mw = serve_gateway(accounts=accounts, api_key=None, seal_key="k", timeouts=TIMEOUTS,
                            on_usage=usage_events.append)
    fake.respond_with(_respond)
    tally = Tally()
    started = time.perf_counter()
    asyncio.run(_run_load(url, tally))
    elapsed = time.perf_counter() - started

    settled = wait_for(lambda: mw.pool.in_flight() == 0 and fake.in_flight == 0 and _busy_upstream_connections(mw) == 0,
                       10)
    by_outcome = collections.Counter(e.outcome for e in usage_events)
    print(f"\nload: {TOTAL} requests from {CLIENTS} clients in {elapsed:.1f}s; client outcomes {dict(tally.outcomes)}; "
          f"left early {tally.left}; violations {len(tally.violations)}; fake max in flight {fake.max_in_flight}; "
          f"upstream requests {len(fake.requests)}; on_usage outcomes {dict(by_outcome)}")
    if tally.latencies:
        print(f"load: successful 'ok' requests end to end p50 {_percentile(tally.latencies, .5) * 1000:.1f} ms, "
              f"p99 {_percentile(tally.latencies, .99) * 1000:.1f} ms")
    assert settled, (f"after the load: leases {mw.pool.in_flight()}, fake in flight {fake.in_flight}, "
                     f"busy upstream connections {_busy_upstream_connections(mw)}")
    assert tally.violations == [], tally.violations[:10]
    stayed = TOTAL - tally.left
    assert sum(tally.outcomes.values()) == stayed
    assert tally.outcomes["completed"] + tally.outcomes["finished"] + tally.outcomes["ok"] > 0
    assert "" not in by_outcome

    fresh_url, _ = serve_gateway(accounts=accounts[:1], api_key=None, seal_key="k", timeouts=TIMEOUTS)
    direct, through = asyncio.run(_added_latency(fresh_url, fake_url))
    added = [b - a for a, b in zip(direct, through)]
    print(f"latency over {LATENCY_ROUNDS} interleaved rounds (chat stream): direct p50 "
          f"{statistics.median(direct) * 1000:.2f} ms, "
          f"through the gateway p50 {statistics.median(through) * 1000:.2f} ms; "
          f"added p50 {_percentile(added, .5) * 1000:.2f} ms, p99 {_percentile(added, .99) * 1000:.2f} ms")
