"""Benchmark 4: time to first byte added by the middleware, on loopback.

Processes: the stand-in MiMo (`_apps:upstream`, a 40-chunk recorded stream), the gateway
(`_apps:served`: the host wrapped in MimoMiddleware with one account pointing at that
upstream), each under uvicorn (1 worker, no access log), and this process as the client: one
keep-alive `httpx.Client` per target. Per sample: from sending the request to the first body
bytes, then the stream is read to its end (so connections are reused).

- direct: `POST /v1/chat/completions` straight to the upstream with the translated MiMo body;
- via Responses: `POST /v1/responses` (Codex-like, stream) to the gateway (first byte:
  `response.created`, written once MiMo's headers arrived);
- via Chat: `POST /v1/chat/completions` (stream) to the gateway (first byte: MiMo's first chunk).
- via relay: `POST /relay` on the same gateway process: a minimal raw-ASGI proxy (pooled httpx,
  bytes forwarded untouched), the floor of any Python proxy hop.
Samples interleave the four (rotating) in rounds. p50 = median of the round medians; p99 over
all samples. Added = via - direct. The gateway's CPU per request per route is read from its
`GET /__cpu` around a batch of 50 requests each, after the rounds.
"""

from __future__ import annotations

import time

import httpx

from mimo_asgi._json import dumps

from ._common import Row, median, percentile, uvicorn_server
from ._streams import chat_request, recorded, responses_request
from .translation import context_for

CHUNKS = 40


def _sample(client: httpx.Client, path: str, body: bytes) -> float:
    start = time.perf_counter()
    first = None
    with client.stream("POST", path, content=body, headers={"content-type": "application/json"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.read()[:300]!r}")
        for _ in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
    return (first if first is not None else time.perf_counter() - start) * 1e3


def run(quick: bool) -> list[Row]:
    rounds, per_round = (10, 20) if quick else (30, 40)
    mimo_body = context_for(recorded(CHUNKS))["payload"]
    env = {"BENCH_CHUNKS": str(CHUNKS)}
    with uvicorn_server("benchmarks._apps:upstream", env=env) as upstream, \
            uvicorn_server("benchmarks._apps:served", env={"BENCH_UPSTREAM": upstream.url + "/v1"}) as gateway, \
            httpx.Client(base_url=upstream.url, timeout=30) as direct, \
            httpx.Client(base_url=gateway.url, timeout=30) as via:
        targets = {
            "direct": (direct, "/v1/chat/completions", mimo_body),
            "responses": (via, "/v1/responses", dumps(responses_request())),
            "chat": (via, "/v1/chat/completions", dumps(chat_request())),
            "relay": (via, "/relay", mimo_body),
        }
        names = list(targets)
        samples: dict[str, list[float]] = {n: [] for n in names}
        medians: dict[str, list[float]] = {n: [] for n in names}
        for name in names * 5:  # warm-up
            _sample(*targets[name])
        for r in range(rounds):
            this: dict[str, list[float]] = {n: [] for n in names}
            for i in range(per_round):
                k = (r + i) % len(names)
                for name in names[k:] + names[:k]:
                    this[name].append(_sample(*targets[name]))
            for name in names:
                samples[name] += this[name]
                medians[name].append(median(this[name]))
        cpu = {}  # the gateway process's CPU per request, by route (one batch each, after the rounds)
        for name in names[1:]:
            start = float(via.get("/__cpu").text)
            for _ in range(50):
                _sample(*targets[name])
            cpu[name] = (float(via.get("/__cpu").text) - start) * 1e6 / 50
    base50, base99 = median(medians["direct"]), percentile(samples["direct"], 99)
    rows = []
    for key, label in (("responses", "4a added TTFB p50, Responses"), ("chat", "4b added TTFB p50, Chat")):
        p50, p99 = median(medians[key]), percentile(samples[key], 99)
        added = p50 - base50
        row = Row(label, f"{p50:.2f} ms (+{added:.2f} ms; p99 {p99:.2f} ms, +{p99 - base99:.2f})",
                  f"{base50:.2f} ms direct (p99 {base99:.2f} ms)", None, "< 1 ms added p50", added < 1.0)
        rows.append(row)
    relay = median(medians["relay"])
    rows[0].notes.append(f"4: a minimal raw-ASGI relay hop in the same gateway process (`/relay`) adds "
                         f"{relay - base50:.2f} ms p50 (p99 {percentile(samples['relay'], 99):.2f} ms): the floor of "
                         f"any Python proxy hop on this machine. Gateway CPU per request ({CHUNKS}-chunk stream): "
                         f"relay {cpu['relay']:.0f} µs, Responses {cpu['responses']:.0f} µs, Chat {cpu['chat']:.0f} µs.")
    rows[0].notes.append(f"4: {rounds} rounds x {per_round} interleaved samples per target, {CHUNKS}-chunk stream; "
                         f"ratio column left empty (the target is an absolute difference).")
    return rows
