"""Benchmark 7: what a `SharedAccountPool` on Redis costs a MiMo request.

A request's pool work is the pick (`pool(request)`: one script that chooses and leases an
account) and its end (`lease.finish(error, remember=key)`: one script that frees the slot,
records the account's health and the conversation's affinity). Measured in one process on one
event loop against a redis-server on loopback (started here, no persistence), µs of wall clock
per request, median of interleaved rounds, with:

- 7a: pick + finish on Redis; the round trips counted at the client (each command, script or
  pipeline sent is one), the target being at most two per MiMo request. Baseline: the same
  calls on `MemoryLeases` (one process, no I/O).
- 7b: the same work as separate calls, as a middleware that calls `report`, `remember` and
  `release` one by one does: pick, remember, release (a success: `report` then costs nothing).
- 7c: a failed attempt (a 503 from MiMo), pick + finish(error) against pick + report + release.
- 7d: `AccountPool` (in-process, sync) pick + finish, for scale.

Needs redis-server on PATH (scripts/redis.sh) and redis-py (the `redis` extra); without either
the rows say so.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import Row, free_port, wait_for_port

REQUESTS = 2000
MODELS = {"gpt-5*": "mimo-v2.5-pro"}


def _accounts() -> list[Any]:
    from mimo_asgi import Account

    return [Account(name, f"sk-bench-{name}-0123456789", base_url="http://127.0.0.1:9/v1", upstream="mimo",
                    models=MODELS, max_concurrency=64) for name in ("a", "b")]


def _request(i: int) -> Any:
    from mimo_asgi import RouteRequest

    body = {"model": "gpt-5.5", "prompt_cache_key": f"conv-{i % 50}"}
    return RouteRequest("responses", "gpt-5.5", body, {}, {})


class _Counter:
    sends = 0


def _counting_client(url: str, counter: _Counter) -> Any:
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.connection import Connection

    class Counting(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter.sends += 1  # one per command, script or pipeline sent: one round trip
            await super().send_packed_command(command, check_health)

    return Redis(connection_pool=ConnectionPool.from_url(url, connection_class=Counting, socket_timeout=5))


async def _together(pool: Any, i: int, error: Any) -> None:
    lease = await pool(_request(i))
    pending = lease.finish(error, remember=f"prev:resp_{i}")
    if pending is not None:
        await pending


async def _apart(pool: Any, i: int, error: Any) -> None:
    lease = await pool(_request(i))
    await pool.report(lease.account, error)
    if error is None:
        await pool.remember(f"prev:resp_{i}", lease.account.name)
    pending = lease.release()
    if pending is not None:
        await pending


async def _per_request(work: Callable[[int], Awaitable[None]], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await work(i)
    return (time.perf_counter() - t0) / n * 1e6


async def _measure(url: str, rounds: int, n: int) -> dict[str, Any]:
    from mimo_asgi import AccountPool, SharedAccountPool
    from mimo_asgi.pool import MemoryLeases, RedisLeases
    from mimo_asgi.translate.errors import from_upstream

    counter = _Counter()
    client = _counting_client(url, counter)
    failure = from_upstream(503, b"{}")
    redis_pool = SharedAccountPool(_accounts(), RedisLeases(client, "bench:"))
    memory_pool = SharedAccountPool(_accounts(), MemoryLeases())
    local = AccountPool(_accounts())

    async def local_work(i: int) -> None:
        local(_request(i)).finish(None, remember=f"prev:resp_{i}")

    cases: dict[str, Callable[[int], Awaitable[None]]] = {
        "redis": lambda i: _together(redis_pool, i, None),
        "redis_apart": lambda i: _apart(redis_pool, i, None),
        "redis_failed": lambda i: _together(redis_pool, i, failure),
        "redis_failed_apart": lambda i: _apart(redis_pool, i, failure),
        "memory": lambda i: _together(memory_pool, i, None),
        "local": local_work,
    }
    trips: dict[str, float] = {}
    for name in ("redis", "redis_apart", "redis_failed", "redis_failed_apart"):
        await cases[name](0)  # loads the scripts: a first call may cost an EVAL after NOSCRIPT
        before = counter.sends
        for i in range(1, 101):
            await cases[name](i)
        trips[name] = (counter.sends - before) / 100
        await client.flushdb()  # no cooldown left to change the next case's picks
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds):
        names = list(cases)
        for name in names[r % len(names):] + names[:r % len(names)]:  # interleaved, order rotating
            times[name].append(await _per_request(cases[name], n))
            await client.flushdb()
    await redis_pool.aclose()
    await client.aclose()
    return {"us": {name: statistics.median(v) for name, v in times.items()}, "trips": trips}


def run(quick: bool) -> list[Row]:
    names = ("7a shared pool on Redis: pick + finish per request", "7b ... as separate calls",
             "7c a failed attempt on Redis", "7d AccountPool in process")
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        return [Row(names[0], "skipped", "-", None, "<= 2 round trips", None,
                    ["7: redis-py is not installed (the `redis` extra; add it to benchmarks/requirements.txt)"])]
    if binary is None:
        return [Row(names[0], "skipped", "-", None, "<= 2 round trips", None,
                    ["7: redis-server is not on PATH (scripts/redis.sh installs it)"])]
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                   "no", "--dir", workdir, "--loglevel", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, server)
            result = asyncio.run(_measure(f"redis://127.0.0.1:{port}/0", 5 if quick else 9,
                                          REQUESTS // 2 if quick else REQUESTS))
        finally:
            server.terminate()
            server.wait(10)
    us, trips = result["us"], result["trips"]
    rows = [
        Row(names[0], f"{us['redis']:.0f} µs, {trips['redis']:g} round trips", f"{us['memory']:.1f} µs MemoryLeases",
            None, "<= 2 round trips", trips["redis"] <= 2),
        Row(names[1], f"{us['redis_apart']:.0f} µs, {trips['redis_apart']:g} round trips",
            f"{us['redis']:.0f} µs pick + finish", us["redis_apart"] / us["redis"], "- (informational)", None),
        Row(names[2], f"{us['redis_failed']:.0f} µs, {trips['redis_failed']:g} round trips",
            f"{us['redis_failed_apart']:.0f} µs, {trips['redis_failed_apart']:g} as separate calls", None,
            "<= 2 round trips", trips["redis_failed"] <= 2),
        Row(names[3], f"{us['local']:.1f} µs", "-", None, "- (informational)", None),
    ]
    rows[0].notes.append("7: one process, asyncio's loop, redis-server on loopback; wall clock per request, median "
                         "of interleaved rounds; round trips counted at the redis-py connection.")
    return rows
