"""The example gateway under `opentelemetry-instrument` with the console exporter (as
docs/tracing.md runs it): a MiMo request prints its `chat` span, nested under the ASGI server's
span, in the client's trace. Demo mode: MiMo is the fake in the gateway's process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tracing.spans import CHAT_SPAN, PARENT_ID, TRACE_ID, TRACEPARENT

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spans(text: str) -> list[dict]:
    """The console exporter's output: one indented JSON object per span, one after another."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        try:
            obj, at = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            break  # a span still being written
        spans.append(obj)
    return spans


def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def instrumented_gateway(tmp_path):
    """`opentelemetry-instrument ... uvicorn examples.otel_gateway:app` on 127.0.0.1; (url, stdout file)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "MIMO_")) and k not in ("SEARXNG_URL", "TAVILY_API_KEY", "BRAVE_API_KEY")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", OTEL_SERVICE_NAME="mimo-gateway",
               OTEL_BSP_SCHEDULE_DELAY="100")  # the batch processor prints every 100 ms
    out = tmp_path / "stdout"
    with out.open("w") as stdout:
        proc = subprocess.Popen(
            [str(BIN / "opentelemetry-instrument"), "--traces_exporter", "console", "--metrics_exporter", "none",
             "--logs_exporter", "none", "uvicorn", "examples.otel_gateway:app", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, out.read_text()[-3000:]
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        assert _wait(up, 60), "the gateway did not start: " + out.read_text()[-3000:]
        yield url, out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_the_example_gateway_under_opentelemetry_instrument_prints_a_mimo_span(instrumented_gateway):
    url, out = instrumented_gateway
    response = httpx.post(url + "/v1/responses", headers={"traceparent": TRACEPARENT}, timeout=30,
                          json={"model": "gpt-5.5", "input": "Say hello", "stream": True})
    assert response.status_code == 200 and "response.completed" in response.text

    def printed() -> list[dict]:
        spans = _spans(out.read_text())
        return spans if any(s["name"] == CHAT_SPAN for s in spans) else []

    spans = _wait(printed, 30)
    assert spans, "no MiMo span printed: " + out.read_text()[-3000:]
    [chat] = [s for s in spans if s["name"] == CHAT_SPAN]
    [server] = [s for s in spans if s["name"] == "POST /v1/responses"]  # (the others: GET /health)
    [attempt] = [s for s in spans if s["name"] == "mimo_asgi.attempt"]
    assert server["kind"] == "SpanKind.SERVER" and server["parent_id"] == "0x" + PARENT_ID
    assert chat["kind"] == "SpanKind.CLIENT" and chat["parent_id"] == server["context"]["span_id"]
    assert attempt["parent_id"] == chat["context"]["span_id"]
    assert {s["context"]["trace_id"] for s in (chat, server, attempt)} == {"0x" + TRACE_ID}
    attributes = chat["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.provider.name"] == "xiaomi.mimo"
    assert attributes["gen_ai.request.model"] == "gpt-5.5" and attributes["gen_ai.response.model"] == "mimo-v2.5-pro"
    assert attributes["gen_ai.usage.output_tokens"] > 0 and attributes["mimo_asgi.account"] == "demo"
    assert chat["resource"]["attributes"]["service.name"] == "mimo-gateway"
