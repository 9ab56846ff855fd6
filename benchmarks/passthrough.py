"""Benchmark 1: what wrapping a host in MimoMiddleware costs requests that pass through.

Two uvicorn processes run side by side (1 worker, no access log, 127.0.0.1): the bare Starlette
host and the same host wrapped in `MimoMiddleware` (no accounts, `api_key=None`). A load
generator in a third process (`wrk -t1 -c16` when installed, else `benchmarks._loadgen`) hits
one server at a time, alternating A B / B A across rounds.

Two figures per case, from the same rounds:
- requests/s as the load generator saw them (median over rounds);
- server CPU per request (the server process's user+system time over the round / responses),
  whose inverse is the requests/s one dedicated core sustains. On a shared machine this one is
  robust to other processes stealing the CPU, so the pass/fail ratio is taken from it: bare
  CPU/request divided by wrapped CPU/request, each the median over rounds.
(a) `GET /health` never enters the middleware's inspection; (b) `POST /v1/responses` with a
non-MiMo model, to a middleware that can route nothing (no accounts, no key), so it passes on
unread; (c) as (b), but the middleware has a MiMo account configured (`_apps:routed`), so the body
is read, parsed, offered to the account pool and replayed: a real deployment's configuration.
(b) and (c) interleave with the same bare rounds.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import ROOT, Row, Server, median, uvicorn_server
from ._streams import responses_request

CONNECTIONS = 16


def body() -> bytes:
    """A ~1.6 KB Codex-like Responses request for a model MiMo does not serve."""
    request = responses_request(stream=True)
    request["model"] = "claude-sonnet-4"
    return json.dumps(request).encode()


def _lua(payload: bytes, directory: Path) -> Path:
    script = directory / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(payload.decode())}\n")
    return script


def _load(url: str, seconds: float, body_file: Path | None, lua: Path | None) -> tuple[int, float]:
    """(responses, requests/s) of one load-generator run."""
    if shutil.which("wrk"):
        cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", url]
        if lua is not None:
            cmd += ["-s", str(lua)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"load generator saw errors:\n{out}")
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        return requests, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    cmd = [sys.executable, "-m", "benchmarks._loadgen", url, str(seconds), str(CONNECTIONS)]
    if body_file is not None:
        cmd.append(str(body_file))
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    return out["requests"], out["rps"]


def _round(server: Server, path: str, seconds: float, body_file: Path | None, lua: Path | None) -> tuple[float, float]:
    """(requests/s, server CPU µs per request)."""
    cpu0 = server.cpu()
    requests, rps = _load(server.url + path, seconds, body_file, lua)
    return rps, (server.cpu() - cpu0) * 1e6 / max(requests, 1)


async def _in_process(rounds: int, per_round: int) -> dict[str, dict[str, float]]:
    """CPU µs per request with the apps called in-process (no server, no sockets): precise to a
    fraction of a µs, unlike the served figures, but hot-cache and so an underestimate."""
    from . import _apps
    from ._asgi import call

    apps = {"bare": _apps.host(), "peek": _apps.Peek(_apps.host()), "wrapped": _apps._wrapped(),
            "routed": _apps.gateway_for("http://127.0.0.1:9/v1")}
    cases = {"/health": ("GET", b""), "/v1/responses": ("POST", body())}
    out: dict[str, dict[str, list[float]]] = {p: {a: [] for a in apps} for p in cases}
    for path, (method, payload) in cases.items():
        for _ in range(rounds):
            for name, app in apps.items():
                start = time.process_time()
                for _ in range(per_round):
                    await call(app, path, payload, method=method)
                out[path][name].append((time.process_time() - start) * 1e6 / per_round)
    return {p: {a: median(v) for a, v in d.items()} for p, d in out.items()}


def run(quick: bool) -> list[Row]:
    rounds, seconds = (4, 2) if quick else (9, 4)
    tool = "wrk -t1 -c16" if shutil.which("wrk") else "benchmarks._loadgen (16 connections)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, uvicorn_server("benchmarks._apps:bare") as bare, \
            uvicorn_server("benchmarks._apps:wrapped") as wrapped, uvicorn_server("benchmarks._apps:routed") as routed, \
            uvicorn_server("benchmarks._apps:peek") as peek:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body())
        lua = _lua(body(), Path(tmp))
        cases = [("/health", None, None, {"1a pass-through GET /health": wrapped}, 0.97),
                 ("/v1/responses", body_file, lua, {"1b pass-through POST /v1/responses": wrapped,
                                                    "1c pass-through POST, account configured": routed}, 0.90)]
        floors = {"/v1/responses": peek}  # measured in the same rotation, reported in the notes
        for path, bf, script, variants, target in cases:
            servers = [bare, *variants.values(), *([floors[path]] if path in floors else [])]
            for server in servers:  # warm up
                _round(server, path, 1, bf, script)
            rps: dict[Server, list[float]] = {s: [] for s in servers}
            cpu: dict[Server, list[float]] = {s: [] for s in servers}
            for i in range(rounds):
                k = i % len(servers)
                for server in servers[k:] + servers[:k]:
                    r, c = _round(server, path, seconds, bf, script)
                    rps[server].append(r)
                    cpu[server].append(c)
            bare_cpu = median(cpu[bare])
            for name, server in variants.items():
                ours_cpu = median(cpu[server])
                ratio = bare_cpu / ours_cpu
                row = Row(name, f"{1e6 / ours_cpu:,.0f} req/s/core ({ours_cpu:.0f} µs CPU/req)",
                          f"{1e6 / bare_cpu:,.0f} req/s/core ({bare_cpu:.0f} µs) bare", ratio, f">= {target:.2f}x",
                          ratio >= target)
                wall = median(rps[server]) / median(rps[bare])
                row.notes.append(f"{name}: {tool}, {rounds} x {seconds}s rounds, servers rotating. Wall-clock "
                                 f"req/s median: wrapped {median(rps[server]):,.0f}, bare {median(rps[bare]):,.0f} "
                                 f"({wall:.3f}x; noisy on a shared machine). Added server CPU: "
                                 f"{ours_cpu - bare_cpu:+.1f} µs/request.")
                rows.append(row)
            if path in floors:
                peek_cpu = median(cpu[floors[path]])
                rows[-1].notes.append(f"1b/1c floor: a minimal pure-ASGI middleware that only reads, orjson-parses and "
                                      f"replays the body (`_apps:peek`) costs {peek_cpu:.0f} µs CPU/req "
                                      f"({peek_cpu - bare_cpu:+.1f} µs, {bare_cpu / peek_cpu:.2f}x of bare) in the "
                                      f"same rounds.")
    local = asyncio.run(_in_process(5 if quick else 15, 2000))
    h, p = local["/health"], local["/v1/responses"]
    rows[0].notes.append(f"1 in-process (no server; µs CPU/request): GET /health bare {h['bare']:.1f}, wrapped "
                         f"{h['wrapped']:.1f} ({h['wrapped'] - h['bare']:+.2f}); POST bare {p['bare']:.1f}, minimal peek "
                         f"{p['peek']:.1f} ({p['peek'] - p['bare']:+.1f}), wrapped {p['wrapped']:.1f} "
                         f"({p['wrapped'] - p['bare']:+.1f}), account configured {p['routed']:.1f} "
                         f"({p['routed'] - p['bare']:+.1f}).")
    return rows
