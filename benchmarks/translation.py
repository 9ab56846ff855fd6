"""Benchmark 2: translation CPU per upstream chunk, in-process, `time.process_time`.

All three paths run through one harness: the recorded stream's reads come out of an
`httpx.AsyncClient` on an `httpx.MockTransport` (`client.send(..., stream=True)` then
`response.aiter_bytes()`), and whatever a path produces goes to a no-op ASGI `send` as
`{"type": "http.response.body", "body": ..., "more_body": True}` messages.

(a) floor: each read is sent on untouched. This is what any Python ASGI proxy pays per chunk:
    building the httpx request and response, httpx's async byte iteration, one message dict
    and one awaited `send` per read. It does not include sockets, httpcore/h11 parsing or the
    server's write (those are the same for every proxy and are in benchmarks 1, 4 and 5).
(b) Chat path: (a) + `SSEDecoder.feed`, `orjson.loads` per event, `ChatStream.feed` (which
    re-encodes the chunk with the client's model name) and one `send` per output.
(c) Responses path: (a) + `SSEDecoder.feed`, `orjson.loads`, `ResponsesStream.feed`, and
    `encode_event` per Responses event, joined and sent once per upstream chunk (the work
    `mimo_asgi._relay` does per chunk), plus `start()` and `finish()`; the request translation is
    done once outside the timed region, the reasoning is sealed (Codex asks for it).
The figure is CPU µs per upstream chunk: the median over rounds (each round runs a, b and c
once, in rotating order) of one stream's CPU time / its chunk count.

The same three paths are also measured served (rows 2a'-2c'): one uvicorn process (`_apps:served`)
with the stand-in MiMo (`_apps:upstream`) in another and this process as the client, reading
every byte. (a') is `POST /relay`, a minimal raw-ASGI proxy forwarding the upstream's reads
untouched over a pooled httpx client; (b') and (c') are the middleware's Chat and Responses
routes. The figure is the server process's CPU (`time.process_time()` read through `GET /__cpu`)
per upstream chunk: sockets, httpcore/h11 reads, uvicorn writes and the ASGI plumbing included,
i.e. the floor a Python ASGI proxy really pays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from mimo_asgi import _json
from mimo_asgi._seal import ReasoningSealer
from mimo_asgi._sse import SSEDecoder, encode_events
from mimo_asgi.translate.chat_stream import ChatStream
from mimo_asgi.translate.responses_request import chat_request_from_responses
from mimo_asgi.translate.responses_stream import ResponsesStream

from ._common import Row, median, uvicorn_server
from ._streams import UPSTREAM_MODEL, Recorded, chat_request, recorded, responses_request

Send = Callable[[dict[str, Any]], Awaitable[None]]
MESSAGES = 0


class _Reads(httpx.AsyncByteStream):
    def __init__(self, reads: tuple[bytes, ...]) -> None:
        self.reads = reads

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


def client_for(stream: Recorded) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Reads(stream.reads))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://mimo.test")


async def noop_send(message: dict[str, Any]) -> None:
    pass


async def _open(client: httpx.AsyncClient, payload: bytes) -> httpx.Response:
    request = client.build_request("POST", "/v1/chat/completions", content=payload,
                                   headers={"content-type": "application/json"})
    return await client.send(request, stream=True)


async def floor(client: httpx.AsyncClient, payload: bytes, context: dict[str, Any], send: Send) -> None:
    response = await _open(client, payload)
    try:
        async for raw in response.aiter_bytes():
            await send({"type": "http.response.body", "body": raw, "more_body": True})
    finally:
        await response.aclose()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def chat(client: httpx.AsyncClient, payload: bytes, context: dict[str, Any], send: Send) -> None:
    machine = ChatStream(model="gpt-5.5", include_usage=True)
    decoder = SSEDecoder()
    saw_done = False
    response = await _open(client, payload)
    try:
        async for raw in response.aiter_bytes():
            for event in decoder.feed(raw):
                if event.data == "[DONE]":
                    saw_done = True
                    break
                out = machine.feed(_json.loads(event.data))
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
    finally:
        await response.aclose()
    await send({"type": "http.response.body", "body": machine.finish(saw_done=saw_done), "more_body": False})


def _encoded(events: list[dict[str, Any]]) -> bytes:
    return encode_events(events)


async def responses(client: httpx.AsyncClient, payload: bytes, context: dict[str, Any], send: Send) -> None:
    stream = ResponsesStream(context["request"], response_id="resp_" + "0" * 48, model="gpt-5.5",
                             tool_map=context["tool_map"], sealer=context["sealer"], include_encrypted=True,
                             created_at=int(time.time()))
    decoder = SSEDecoder()
    saw_done = False
    response = await _open(client, payload)
    try:
        await send({"type": "http.response.body", "body": _encoded(stream.start()), "more_body": True})
        async for raw in response.aiter_bytes():
            for event in decoder.feed(raw):
                if event.data == "[DONE]":
                    saw_done = True
                    break
                out = _encoded(stream.feed(_json.loads(event.data)))
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
    finally:
        await response.aclose()
    tail = _encoded(stream.finish(saw_done=saw_done))
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def context_for(stream: Recorded) -> dict[str, Any]:
    sealer = ReasoningSealer("benchmark seal key")
    translation = chat_request_from_responses(stream.responses_request, upstream_model=UPSTREAM_MODEL, sealer=sealer)
    return {"request": stream.responses_request, "tool_map": translation.tool_map, "sealer": sealer,
            "payload": _json.dumps(translation.body)}


PATHS = {"floor": floor, "chat": chat, "responses": responses}


async def measure(rounds: int, stream: Recorded | None = None) -> dict[str, list[float]]:
    """CPU µs per upstream chunk of one stream, per path, for each round."""
    stream = stream or recorded()
    context = context_for(stream)
    results: dict[str, list[float]] = {name: [] for name in PATHS}
    names = list(PATHS)
    async with client_for(stream) as client:
        for name in names:  # warm-up
            await PATHS[name](client, context["payload"], context, noop_send)
        for i in range(rounds):
            for name in names[i % 3:] + names[:i % 3]:
                start = time.process_time()
                await PATHS[name](client, context["payload"], context, noop_send)
                results[name].append((time.process_time() - start) * 1e6 / stream.chunks)
    return results


def measure_served(rounds: int, streams_per_round: int) -> dict[str, list[float]]:
    """Server CPU µs per upstream chunk, per served path, for each round."""
    stream = recorded()
    relay_body = context_for(stream)["payload"]  # the MiMo request the Responses path would send
    requests = {
        "floor": ("/relay", relay_body),
        "chat": ("/v1/chat/completions", _json.dumps(chat_request())),
        "responses": ("/v1/responses", _json.dumps(responses_request())),
    }
    results: dict[str, list[float]] = {name: [] for name in requests}
    names = list(requests)
    with uvicorn_server("benchmarks._apps:upstream") as upstream, \
            uvicorn_server("benchmarks._apps:served", env={"BENCH_UPSTREAM": upstream.url + "/v1"}) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:

        def one(name: str) -> None:
            path, payload = requests[name]
            with client.stream("POST", path, content=payload, headers={"content-type": "application/json"}) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.read()[:300]!r}")
                for _ in r.iter_raw():
                    pass

        def cpu() -> float:
            return float(client.get("/__cpu").text)

        for name in names:
            one(name)
        for i in range(rounds):
            for name in names[i % 3:] + names[:i % 3]:
                start = cpu()
                for _ in range(streams_per_round):
                    one(name)
                results[name].append((cpu() - start) * 1e6 / (stream.chunks * streams_per_round))
    return results


def _rows(results: dict[str, list[float]], prime: str, floor_label: str) -> list[Row]:
    base = median(results["floor"])
    rows = []
    for key, name, target in (("chat", f"2b{prime} Chat path CPU/chunk", 1.2),
                              ("responses", f"2c{prime} Responses path CPU/chunk", 1.5)):
        ours = median(results[key])
        ratio = ours / base
        rows.append(Row(name, f"{ours:.2f} µs/chunk", f"{base:.2f} µs/chunk ({floor_label})", ratio,
                        f"<= {target}x", ratio <= target))
    return rows


def run(quick: bool) -> list[Row]:
    stream = recorded()
    results = asyncio.run(measure(15 if quick else 60, stream))
    base = median(results["floor"])
    rows = _rows(results, "", "2a in-process floor")
    rows[0].notes.append(f"2: {stream.chunks} upstream chunks ({len(stream.body):,} bytes in {len(stream.reads)} "
                         f"reads); translation added in-process: Chat {median(results['chat']) - base:.2f} µs/chunk, "
                         f"Responses {median(results['responses']) - base:.2f} µs/chunk.")
    served = measure_served(5 if quick else 15, 2)
    rows += _rows(served, "'", "2a' served relay floor")
    base = median(served["floor"])
    rows[2].notes.append(f"2': served, server CPU added over the relay: Chat {median(served['chat']) - base:.2f} "
                         f"µs/chunk, Responses {median(served['responses']) - base:.2f} µs/chunk.")
    return rows
