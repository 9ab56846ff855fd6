"""Benchmark 2: CPU per upstream chunk of the same recorded MiMo stream through (a) a raw relay
forwarding the upstream's bytes untouched, (b) the middleware's Chat Completions path, (c) its
Responses path.

Rows 2a-2c, the ones the targets are read from: all three are whole ASGI apps called in-process
(`_asgi.call`, a no-op `send`), each reading the stream from its upstream through httpx, httpcore
and h11, i.e. real HTTP/1.1 chunked parsing, over httpcore's mock network backend instead of a
socket (one recorded read per socket read). (a) is `_apps.Relay`, the minimal raw-ASGI proxy (one
`send` per read); (b) and (c) are `MimoMiddleware` with one MiMo account, default options, on the
Chat and Responses routes (the Responses request is Codex-like, reasoning sealed). What a proxy pays
per chunk is all there except the kernel: no socket syscalls and no scheduling, so the figures are
stable to a few % between runs. The figure: `time.process_time` per stream / its chunk count,
median over rounds (each round runs a, b and c once, in rotating order).

Rows 2a'-2c' are the end-to-end check: the same three served by one uvicorn process
(`_apps:served`), the stand-in MiMo (`_apps:upstream`) in another and this process as the client,
reading every byte; the figure is the gateway process's CPU (`GET /__cpu`) per upstream chunk.
They add what the kernel and the event loop cost, which moves with how the three processes share
two cores: the stand-in writes as fast as it can, so a slower gateway reads more chunks per socket
read and pays fewer wake-ups per chunk. Their ratios moved by +-0.15 between runs (see the README).

The note "translation alone" is the old in-process harness (`PATHS`, also what `profiling chat` /
`responses` run): an `httpx.MockTransport` upstream, so no HTTP parsing at all, and the
translation steps inlined instead of the middleware.
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

from ._apps import Relay, gateway_for, host
from ._asgi import call
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


def _read(decoder: SSEDecoder, raw: bytes, forward: Any, feed: Any) -> tuple[list[bytes], bool]:
    """One upstream read as the relay's pump takes it: whole plain events through `forward`, the
    rest through the decoder and `feed`; (the client's bytes, whether `[DONE]` came)."""
    answered = decoder.whole(raw, forward)
    if answered is not None:
        return [answered], False
    parts: list[bytes] = []
    data, frames = decoder.split(raw)
    taken = 0
    for frame in frames:
        part = forward(frame)
        if part is None:
            break
        taken += len(frame)
        if part:
            parts.append(part)
    raw = data[taken:]
    for event in decoder.feed(raw):
        if event.data == "[DONE]":
            return parts, True
        parts.append(feed(_json.loads(event.data)))
    return parts, False


async def chat(client: httpx.AsyncClient, payload: bytes, context: dict[str, Any], send: Send) -> None:
    machine = ChatStream(model="gpt-5.5", include_usage=True)
    decoder = SSEDecoder()
    saw_done = False
    response = await _open(client, payload)
    try:
        async for raw in response.aiter_bytes():
            parts, done = _read(decoder, raw, machine.forward, machine.feed)
            saw_done = saw_done or done
            if parts:
                await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
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
            parts, done = _read(decoder, raw, stream.forward, lambda chunk: _encoded(stream.feed(chunk)))
            saw_done = saw_done or done
            if parts:
                await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
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


async def measure_translation(rounds: int, stream: Recorded | None = None) -> dict[str, list[float]]:
    """Translation alone (`PATHS`, no HTTP parsing): CPU µs per upstream chunk, per path, per round."""
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


def mock_upstream(stream: Recorded) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection reads the recorded stream as a chunked HTTP/1.1
    response, one recorded read per socket read: httpcore and h11 do the parsing they do on a
    socket. (One connection per request: a mock connection's bytes are read once.)"""
    import httpcore

    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    buffer = [head, *(b"%x\r\n%b\r\n" % (len(read), read) for read in stream.reads), b"0\r\n\r\n"]
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(network_backend=httpcore.AsyncMockBackend(buffer),
                                                   max_keepalive_connections=0)
    return transport


async def measure(rounds: int, stream: Recorded | None = None) -> dict[str, list[float]]:
    """Rows 2a-2c: whole apps in-process over real HTTP parsing; CPU µs per upstream chunk."""
    stream = stream or recorded()
    url = "http://mimo.test/v1"
    relay = Relay(host(), url)
    relay.client = httpx.AsyncClient(transport=mock_upstream(stream), timeout=60)
    gateway = gateway_for(url, transport=mock_upstream(stream))
    requests = {
        "floor": (relay, "/relay", context_for(stream)["payload"]),
        "chat": (gateway, "/v1/chat/completions", _json.dumps(chat_request())),
        "responses": (gateway, "/v1/responses", _json.dumps(responses_request())),
    }
    results: dict[str, list[float]] = {name: [] for name in requests}
    names = list(requests)

    async def one(name: str) -> None:
        app, path, payload = requests[name]
        outcome = await call(app, path, payload)
        if outcome.status != 200 or outcome.bytes < len(stream.body) // 2:
            raise RuntimeError(f"{path}: status {outcome.status}, {outcome.bytes} bytes")

    try:
        for name in names:  # warm-up
            await one(name)
        for i in range(rounds):
            for name in names[i % 3:] + names[:i % 3]:
                start = time.process_time()
                await one(name)
                results[name].append((time.process_time() - start) * 1e6 / stream.chunks)
    finally:
        await relay.client.aclose()
        await gateway.aclose()
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


def _rows(results: dict[str, list[float]], prime: str, floor_label: str, judged: bool) -> list[Row]:
    base = median(results["floor"])
    rows = []
    for key, name, target in (("chat", f"2b{prime} Chat path CPU/chunk", 1.2),
                              ("responses", f"2c{prime} Responses path CPU/chunk", 1.5)):
        ours = median(results[key])
        ratio = ours / base
        rows.append(Row(name, f"{ours:.2f} µs/chunk", f"{base:.2f} µs/chunk ({floor_label})", ratio,
                        f"<= {target}x" if judged else f"- ({target}x in 2)", ratio <= target if judged else None))
    return rows


def run(quick: bool) -> list[Row]:
    stream = recorded()
    results = asyncio.run(measure(9 if quick else 30, stream))
    base = median(results["floor"])
    rows = _rows(results, "", "2a relay, in-process", True)
    mins = {name: min(values) for name, values in results.items()}
    rows[0].notes.append(f"2: fastest rounds: relay {mins['floor']:.2f}, Chat {mins['chat']:.2f} "
                         f"({mins['chat'] / mins['floor']:.2f}x), Responses {mins['responses']:.2f} "
                         f"({mins['responses'] / mins['floor']:.2f}x) µs/chunk.")
    alone = asyncio.run(measure_translation(9 if quick else 30, stream))
    alone_base = median(alone["floor"])
    rows[0].notes.append(
        f"2: {stream.chunks} upstream chunks ({len(stream.body):,} bytes in {len(stream.reads)} reads); added over the "
        f"relay: Chat {median(results['chat']) - base:.2f}, Responses {median(results['responses']) - base:.2f} "
        f"µs/chunk. Translation alone (no HTTP parsing, `PATHS`): floor {alone_base:.2f}, Chat "
        f"{median(alone['chat']):.2f}, Responses {median(alone['responses']):.2f} µs/chunk.")
    served = measure_served(5 if quick else 15, 2)
    rows += _rows(served, "'", "2a' served relay", False)
    base = median(served["floor"])
    rows[2].notes.append(f"2': served, gateway CPU added over the relay: Chat {median(served['chat']) - base:.2f} "
                         f"µs/chunk, Responses {median(served['responses']) - base:.2f} µs/chunk.")
    return rows
