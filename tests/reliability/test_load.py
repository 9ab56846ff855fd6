"""Many concurrent clients, random upstream faults and random client disconnects, both routes,
stream and not, and Responses WebSocket clients among them (chained turns, tool outputs sent as
increments, some leaving mid-response). Afterwards nothing is held: no lease, no upstream
connection in use, no fake request still running, no socket counted, and every client that
stayed got exactly one terminal (over a socket: one per `response.create`).

CI size by default (50 clients, 500 requests); `MIMO_LOAD_FULL=1` runs 200 clients over
10,000 requests. Latency added over calling the fake directly is printed, never asserted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import statistics
import time
from typing import Any

import httpx
import pytest
from reliability.outcomes import PATHS, check_outcome, request_body
from support import TEST_KEY, wait_for
from websocket.wsclient import ENDS, outcome_of, ws_url
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from mimo_asgi import Account, Timeouts
from mimo_asgi.testing import Answer, ToolCall, error_body

FULL = os.environ.get("MIMO_LOAD_FULL") == "1"
CLIENTS = 200 if FULL else 50
WS_CLIENTS = CLIENTS // 5  # of the CLIENTS, those that hold a Responses WebSocket
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
        self.ws_outcomes: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []
        self.left = 0
        self.ws_left = 0
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


class Socket:
    """One WebSocket client's conversation: each request is a `response.create`, chained to the
    last answer when it completed (tool calls answered with their outputs, as increments), else
    sent afresh; sometimes it leaves mid-response and opens a new socket for the next."""

    def __init__(self, url: str, rng: random.Random, tally: Tally) -> None:
        self.url, self.rng, self.tally = url, rng, tally
        self.ws: ClientConnection | None = None
        self.previous: dict[str, Any] | None = None  # the last completed response

    async def _open(self) -> ClientConnection:
        if self.ws is None:
            headers = {"OpenAI-Beta": "responses_websockets=2026-02-06"} if self.rng.random() < 0.5 else None
            self.ws = await ws_connect(ws_url(self.url), additional_headers=headers, open_timeout=CLIENT_TIMEOUT)
            warm = await self._create({"model": "gpt-5.5", "generate": False, "store": False, "input": "warm"})
            if outcome_of(warm) == "completed":  # else an error frame: the pool's 503 while every account cools down
                assert [e["type"] for e in warm] == ["response.created", "response.completed"], warm
                self.previous = warm[-1]["response"]
        return self.ws

    async def _create(self, body: dict[str, Any], leave_after: int | None = None) -> list[dict[str, Any]]:
        """Send a `response.create`; its frames up to its terminal or error frame (keepalives
        left out), or, leaving after `leave_after` frames, the frames read until then."""
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "response.create", **body}))
        events: list[dict[str, Any]] = []
        while leave_after is None or len(events) < leave_after:
            message = await asyncio.wait_for(self.ws.recv(), CLIENT_TIMEOUT)
            assert isinstance(message, str), "a binary frame"
            event = json.loads(message)
            if event.get("type") == "keepalive":
                continue
            events.append(event)
            if event.get("type") in ENDS:
                return events
        return events

    def _input(self, tag: str) -> list[dict[str, Any]] | str:
        text = f"load test fault={tag}"
        calls = [i for i in (self.previous or {}).get("output", ()) if i.get("type") == "function_call"]
        if calls:
            return [{"type": "function_call_output", "call_id": c["call_id"], "output": text} for c in calls]
        return text

    async def one(self, tag: str) -> None:
        leave = self.rng.random() < 0.1
        try:
            await self._open()
            chained = self.previous is not None
            body = {"model": "gpt-5.5", "store": False, "input": self._input(tag) if chained else f"fault={tag}"}
            if chained:
                body["previous_response_id"] = self.previous["id"]
            events = await self._create(body, self.rng.randint(0, 4) if leave else None)
            if leave and not (events and events[-1]["type"] in ENDS):
                await self.close()
                self.tally.ws_left += 1
                return
            outcome = outcome_of(events)
        except (AssertionError, WebSocketException, OSError, TimeoutError, ValueError) as exc:
            self.tally.violations.append(f"websocket {tag}: {type(exc).__name__} {exc}"[:500])
            await self.close()
            return
        self.tally.ws_outcomes[outcome] += 1
        self.previous = events[-1]["response"] if outcome in ("completed", "incomplete") else None

    async def close(self) -> None:
        ws, self.ws, self.previous = self.ws, None, None
        if ws is None:
            return
        await ws.close()


async def _finish(sock: Socket, tally: Tally) -> None:
    """Nothing follows a socket's last answer (a warm-up is answered as exactly its two frames),
    then the socket is closed."""
    if sock.ws is not None:
        try:
            warm = await sock._create({"model": "gpt-5.5", "generate": False, "store": False, "input": "bye"})
            if [e["type"] for e in warm] not in (["response.created", "response.completed"], ["error"]):
                tally.violations.append(f"websocket: the last answer was followed by {warm[0]['type']}")
        except (WebSocketException, OSError, TimeoutError) as exc:
            tally.violations.append(f"websocket at the end: {type(exc).__name__} {exc}")
    await sock.close()


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

        async def ws_worker() -> None:
            sock = Socket(url, rng, tally)
            try:
                while not queue.empty():
                    queue.get_nowait()
                    await sock.one(rng.choices(_TAGS, _WEIGHTS)[0])
            finally:
                await _finish(sock, tally)

        workers = [ws_worker() for _ in range(WS_CLIENTS)] + [worker() for _ in range(CLIENTS - WS_CLIENTS)]
        await asyncio.wait_for(asyncio.gather(*workers), DEADLINE)


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

    settled = wait_for(lambda: mw.pool.in_flight() == 0 and fake.in_flight == 0 and _busy_upstream_connections(mw) == 0
                       and mw.runtime.websockets == 0, 10)
    by_outcome = collections.Counter(e.outcome for e in usage_events)
    print(f"\nload: {TOTAL} requests from {CLIENTS} clients ({WS_CLIENTS} over WebSockets) in {elapsed:.1f}s; "
          f"client outcomes {dict(tally.outcomes)}; websocket outcomes {dict(tally.ws_outcomes)}; "
          f"left early {tally.left} (websocket {tally.ws_left}); violations {len(tally.violations)}; "
          f"fake max in flight {fake.max_in_flight}; "
          f"upstream requests {len(fake.requests)}; on_usage outcomes {dict(by_outcome)}")
    if tally.latencies:
        print(f"load: successful 'ok' requests end to end p50 {_percentile(tally.latencies, .5) * 1000:.1f} ms, "
              f"p99 {_percentile(tally.latencies, .99) * 1000:.1f} ms")
    assert settled, (f"after the load: leases {mw.pool.in_flight()}, fake in flight {fake.in_flight}, "
                     f"busy upstream connections {_busy_upstream_connections(mw)}, sockets {mw.runtime.websockets}")
    assert tally.violations == [], tally.violations[:10]
    stayed = TOTAL - tally.left - tally.ws_left
    assert sum(tally.outcomes.values()) + sum(tally.ws_outcomes.values()) == stayed
    assert tally.outcomes["completed"] + tally.outcomes["finished"] + tally.outcomes["ok"] > 0
    assert tally.ws_outcomes["completed"] > 0 and tally.ws_left > 0
    assert "" not in by_outcome

    fresh_url, _ = serve_gateway(accounts=accounts[:1], api_key=None, seal_key="k", timeouts=TIMEOUTS)
    direct, through = asyncio.run(_added_latency(fresh_url, fake_url))
    added = [b - a for a, b in zip(direct, through)]
    print(f"latency over {LATENCY_ROUNDS} interleaved rounds (chat stream): direct p50 "
          f"{statistics.median(direct) * 1000:.2f} ms, "
          f"through the gateway p50 {statistics.median(through) * 1000:.2f} ms; "
          f"added p50 {_percentile(added, .5) * 1000:.2f} ms, p99 {_percentile(added, .99) * 1000:.2f} ms")
