"""Benchmark 8: gateway CPU per turn of a long Codex-like session, against the conversation's
length: over HTTP (the whole input every turn, as Codex sends it after falling back to HTTPS) and
over the WebSocket (only the new items; the connection keeps the rest).

Everything runs in this process: the middleware driven as an ASGI server would drive it, MiMo an
`httpx.MockTransport` answering every turn with the same short stream (reasoning, one tool call,
usage). A history of N turns is Codex's own first request (its instructions, context and tools,
from tests/fixtures/codex-0.171) followed by N tool turns: a reasoning item sealed by the gateway,
an `exec_command` call and its output of about 1.2 KB. Figures are `time.process_time()` per turn,
median of the measured turns. `benchmarks.run` draws both curves into benchmarks/session.png
(alone: `python -m benchmarks.session --plot`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ._asgi import call, scope_for
from ._common import ROOT, Row, median

sys.path.insert(0, str(ROOT / "tests"))

from mimo_asgi import Account, MimoMiddleware  # noqa: E402
from mimo_asgi._seal import ReasoningSealer  # noqa: E402

LENGTHS = (10, 50, 200, 400, 800)
TARGET = 1.5  # the WebSocket's 800-turn turn costs at most this many times its 10-turn turn
KEY = "sk-bench-0123456789abcdef"
SEAL_KEY = "benchmark seal key"
CAPTURE = ROOT / "tests" / "fixtures" / "codex-0.171" / "http-compaction-request.json"
PLOT = ROOT / "benchmarks" / "session.png"
OUTPUT = ("Chunk ID: 0b6bf9\nWall time: 0.0012 seconds\nProcess exited with code 0\nOriginal token count: 311\n"
          "Output:\n" + "".join(f"    {n:4d}  def handler_{n}(request):  # returns the parsed body\n" for n in range(20)))


def codex_request() -> dict[str, Any]:
    """Codex 0.171's request, cut back to its instructions, context and first user prompt."""
    body = json.loads(CAPTURE.read_text())["body"]
    body["input"] = [item for item in body["input"] if item.get("type") == "message"][:4]
    return body


def tool_turn(n: int, sealer: ReasoningSealer) -> list[dict[str, Any]]:
    thought = f"I need to look at module {n} before changing its handler; the last output showed the imports."
    return [
        {"type": "reasoning", "id": f"rs_{n}", "summary": [{"type": "summary_text", "text": thought}],
         "encrypted_content": sealer.seal(thought)},
        {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "exec_command",
         "arguments": json.dumps({"cmd": f"sed -n 1,40p src/module_{n}.py", "workdir": "/repo"})},
        {"type": "function_call_output", "call_id": f"call_{n}", "output": OUTPUT},
    ]


def history(turns: int, sealer: ReasoningSealer) -> dict[str, Any]:
    body = codex_request()
    for n in range(turns):
        body["input"].extend(tool_turn(n, sealer))
    return body


class MiMo:
    """Answers every chat completion with a short stream: reasoning, one `exec_command` call
    (a fresh call id each time), usage."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        call_id = f"call_up_{self.calls}"
        head = '{"id":"cmpl","object":"chat.completion.chunk","created":1,"model":"mimo-v2.5-pro","choices":[{"index":0,'
        chunks = [f'{head}"delta":{{"role":"assistant","reasoning_content":"Look"}},"finish_reason":null}}]}}']
        chunks += [f'{head}"delta":{{"reasoning_content":" at part {i}"}},"finish_reason":null}}]}}' for i in range(8)]
        chunks.append(f'{head}"delta":{{"tool_calls":[{{"index":0,"id":"{call_id}","type":"function","function":'
                      f'{{"name":"exec_command","arguments":"{{\\"cmd\\":\\"ls\\"}}"}}}}]}},"finish_reason":null}}]}}')
        chunks.append(f'{head}"delta":{{}},"finish_reason":"tool_calls"}}],"usage":{{"prompt_tokens":1000,'
                      '"completion_tokens":20,"total_tokens":1020}}')
        body = "".join(f"data: {c}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def gateway(mimo: MiMo) -> MimoMiddleware:
    async def host(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("every request of this benchmark is MiMo's")

    account = Account("bench", KEY, base_url="http://mimo.test/v1", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    return MimoMiddleware(host, accounts=[account], api_key=None, seal_key=SEAL_KEY, store=None, web_search=None,
                          transport=httpx.MockTransport(mimo), keepalive_seconds=0)


async def http_turn(app: MimoMiddleware, payload: bytes) -> float:
    """CPU seconds the gateway spent on one whole-input request."""
    start = time.process_time()
    outcome = await call(app, "/v1/responses", payload)
    spent = time.process_time() - start
    assert outcome.status == 200, outcome.status
    return spent


async def http_costs(turns: int, rounds: int) -> float:
    sealer = ReasoningSealer(SEAL_KEY)
    body = history(turns, sealer)
    payload = json.dumps(body).encode()
    app = gateway(MiMo())
    await http_turn(app, payload)  # warm: connection pool, caches
    return median([await http_turn(app, payload) for _ in range(rounds)])


class Socket:
    """One WebSocket driven in-process: frames in through a queue, the terminal of each response
    awaited; returns the final response of each."""

    def __init__(self, app: MimoMiddleware) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is not None and text.startswith(('{"type":"response.completed"', '{"type":"response.failed"',
                                                 '{"type":"error"')):
            self.ended.put_nowait(json.loads(text))

    async def turn(self, frame: dict[str, Any]) -> tuple[dict[str, Any], float]:
        start = time.process_time()
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(frame)})
        event = await self.ended.get()
        spent = time.process_time() - start
        assert event["type"] == "response.completed", event
        return event["response"], spent


async def ws_costs(turns: int, rounds: int) -> float:
    sealer = ReasoningSealer(SEAL_KEY)
    app = gateway(MiMo())
    sock = Socket(app)
    sock.inbox.put_nowait({"type": "websocket.connect"})
    task = asyncio.ensure_future(app({**scope_for("/v1/responses"), "type": "websocket"}, sock.receive, sock.send))
    first = history(turns, sealer)
    response, _ = await sock.turn({"type": "response.create", **first})  # the whole input, as after a reconnect
    costs = []
    for _ in range(rounds + 1):
        call = next(item for item in response["output"] if item["type"] == "function_call")
        frame = {"type": "response.create", **{k: v for k, v in first.items() if k != "input"},
                 "previous_response_id": response["id"],
                 "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": OUTPUT}]}
        response, spent = await sock.turn(frame)
        costs.append(spent)
    sock.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await task
    return median(costs[1:])  # the first increment after the whole input warms the connection's caches


def measure(quick: bool) -> dict[str, dict[int, float]]:
    rounds = 5 if quick else 15
    curves: dict[str, dict[int, float]] = {"HTTP": {}, "WebSocket": {}}
    for n in LENGTHS:
        curves["HTTP"][n] = asyncio.run(http_costs(n, rounds))
        curves["WebSocket"][n] = asyncio.run(ws_costs(n, rounds))
    return curves


def run(quick: bool) -> list[Row]:
    curves = measure(quick)
    try:
        plot(curves)
    except ImportError:  # matplotlib is in benchmarks/requirements.txt; without it, no picture
        pass
    ws, http = curves["WebSocket"], curves["HTTP"]
    small, large = LENGTHS[0], LENGTHS[-1]
    ratio = ws[large] / ws[small]
    shape = ", ".join(f"{n}: {http[n] * 1000:.2f} / {ws[n] * 1000:.2f}" for n in LENGTHS)
    return [Row(
        f"8 CPU per turn, {large} vs {small} turns (WebSocket)",
        f"{ws[large] * 1000:.2f} ms vs {ws[small] * 1000:.2f} ms", f"HTTP {http[large] * 1000:.2f} ms vs "
        f"{http[small] * 1000:.2f} ms ({http[large] / http[small]:.1f}x)", ratio, f"<= {TARGET}x", ratio <= TARGET,
        notes=[f"8 ms per turn by conversation length, HTTP / WebSocket: {shape}"])]


def plot(curves: dict[str, dict[int, float]], path: Path = PLOT) -> None:
    import matplotlib  # benchmarks/requirements.txt

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for label, style in (("HTTP", "o-"), ("WebSocket", "s-")):
        points = curves[label]
        ax.plot(list(points), [v * 1000 for v in points.values()], style, label=label)
    ax.set_xlabel("conversation length (tool turns)")
    ax.set_ylabel("gateway CPU per turn (ms)")
    ax.set_title("One more turn of a Codex-like session")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    measured = measure(quick)
    for name, points in measured.items():
        print(name, {n: round(v * 1000, 2) for n, v in points.items()})
    if "--plot" in sys.argv:
        plot(measured)
        print("wrote", PLOT.relative_to(ROOT))
