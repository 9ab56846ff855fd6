"""Responses over a WebSocket: each `response.create` is its own span, continuing the trace
context its frame carries in `client_metadata` (Codex's key, or a plain `traceparent`), else the
handshake's; a client closing the socket mid-answer ends the span as cancelled."""

from __future__ import annotations

import json

from opentelemetry.trace import SpanKind, StatusCode
from support import wait_for
from tracing.spans import ATTEMPT_SPAN, CHAT_SPAN, PARENT_ID, TRACE_ID, TRACEPARENT, hex_id, traceparent_ids
from websockets.sync.client import connect

from mimo_asgi.testing import Answer

TERMINALS = {"response.completed", "response.failed", "response.incomplete", "error"}
FRAME_TRACE, FRAME_PARENT = "11111111111111111111111111111111", "2222222222222222"
PLAIN_TRACE, PLAIN_PARENT = "33333333333333333333333333333333", "4444444444444444"


def _answer(ws) -> list[dict]:
    frames = []
    while not frames or frames[-1]["type"] not in TERMINALS:
        frames.append(json.loads(ws.recv(timeout=30)))
    return frames


def _create(ws, **fields) -> dict:
    ws.send(json.dumps({"type": "response.create", "model": "gpt-5.5", "store": False, **fields}))
    frames = _answer(ws)
    assert frames[-1]["type"] == "response.completed", frames[-1]
    return frames[-1]["response"]


def test_each_response_on_a_socket_is_a_span_under_its_own_trace_context(gateway, fake, traces):
    url, _ = gateway
    ws_url = "ws" + url.removeprefix("http") + "/v1/responses"
    with connect(ws_url, additional_headers={"traceparent": TRACEPARENT}, open_timeout=10) as ws:
        codex = _create(ws, input="one", client_metadata={
            "ws_request_header_traceparent": f"00-{FRAME_TRACE}-{FRAME_PARENT}-01",
            "ws_request_header_tracestate": "vendor=codex", "thread_id": "t-1"})
        plain = _create(ws, input="two", client_metadata={"traceparent": f"00-{PLAIN_TRACE}-{PLAIN_PARENT}-01"})
        handshake = _create(ws, input="three", client_metadata={"traceparent": "not a traceparent"})
        chained = _create(ws, input=[{"role": "user", "content": "four"}], previous_response_id=handshake["id"])

    spans = sorted(traces.wait(CHAT_SPAN, 4), key=lambda s: s.start_time)
    parents = [(hex_id(s.context.trace_id, 32), hex_id(s.parent.span_id)) for s in spans]
    assert parents == [(FRAME_TRACE, FRAME_PARENT), (PLAIN_TRACE, PLAIN_PARENT), (TRACE_ID, PARENT_ID),
                       (TRACE_ID, PARENT_ID)]
    assert [s.attributes["gen_ai.response.id"] for s in spans] == [r["id"] for r in (codex, plain, handshake, chained)]
    assert spans[0].parent.trace_state.get("vendor") == "codex"
    for span in spans:
        assert span.kind is SpanKind.CLIENT and span.status.status_code is StatusCode.UNSET
        assert span.attributes["gen_ai.operation.name"] == "chat" and span.attributes["mimo_asgi.route"] == "responses"
        assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    # each MiMo request carried its own response's trace and attempt
    attempts = [traces.children(s) for s in spans]
    assert all(len(a) == 1 for a in attempts)
    assert [traceparent_ids(r.headers["traceparent"]) for r in fake.requests] == \
        [(hex_id(s.context.trace_id, 32), hex_id(a[0].context.span_id)) for s, a in zip(spans, attempts)]


def test_closing_the_socket_mid_answer_ends_the_span_as_cancelled(gateway, fake, traces):
    url, _ = gateway
    fake.queue(Answer(text="a slow answer " * 8, reasoning="", chunk_size=4, stall_after=(4, 30)))
    with connect("ws" + url.removeprefix("http") + "/v1/responses", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-5.5", "input": "hi", "store": False}))
        while "a sl" not in json.dumps(json.loads(ws.recv(timeout=30))):
            pass
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 5)
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "cancelled"
    [attempt] = traces.children(span)
    assert attempt.name == ATTEMPT_SPAN and attempt.attributes["error.type"] == "cancelled"
