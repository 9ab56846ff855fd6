"""Each MiMo exchange is one span in the GenAI conventions, continuing the client's trace, with a
child span per attempt on an account; MiMo receives the attempt's context; errors, failovers and
clients that leave end the spans as they ended the exchange."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from support import TEST_KEY, wait_for
from tracing.spans import ATTEMPT_SPAN, PARENT_ID, TRACE_ID, TRACEPARENT, hex_id, traceparent_ids

from mimo_asgi import Account, AccountPool, Limits, RouteRequest
from mimo_asgi._sse import SSEDecoder
from mimo_asgi._tracing import CAPTURE_ENV, PROVIDER
from mimo_asgi.testing import Answer, ToolCall, Usage, key_fingerprint

KEY_B = "sk-test-bbbbbbbbbbbbbbbb"
MODELS = {"gpt-5*": "mimo-v2.5-pro"}
PATHS = {"responses": "/v1/responses", "chat": "/v1/chat/completions"}


def body(route: str, stream: bool, text: str = "hi", **extra) -> dict:
    if route == "chat":
        return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}], "stream": stream, **extra}
    return {"model": "gpt-5.5", "input": text, "stream": stream, **extra}


def events(response: httpx.Response) -> list[dict]:
    return [json.loads(e.data) for e in SSEDecoder().feed(response.content) if e.data != "[DONE]"]


def two_accounts(serve_gateway, fake_url, **options):
    accounts = [Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS),
                Account("b", KEY_B, base_url=fake_url, upstream="mimo", models=MODELS)]
    return serve_gateway(accounts=accounts, api_key=None, seal_key="k", **options)


def test_a_responses_stream_is_one_client_span_in_the_conventions(gateway, fake, fake_url, traces):
    url, _ = gateway
    fake.queue(Answer(usage=Usage(prompt_tokens=100, completion_tokens=50, cached_tokens=40, reasoning_tokens=20)))
    response = httpx.post(url + "/v1/responses", json=body("responses", True), headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    completed = events(response)[-1]
    assert completed["type"] == "response.completed"

    [span] = traces.wait()
    assert span.kind is SpanKind.CLIENT and span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes)
    assert attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": "gpt-5.5", "gen_ai.request.stream": True,
        "gen_ai.response.model": "mimo-v2.5-pro", "gen_ai.response.id": completed["response"]["id"],
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.output_tokens": 50, "gen_ai.usage.reasoning.output_tokens": 20,
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "127.0.0.1", "server.port": httpx.URL(fake_url).port,
        "mimo_asgi.route": "responses", "mimo_asgi.account": "main", "mimo_asgi.attempts": 1,
        "mimo_asgi.status_code": 200,
    }
    # the client's trace continues: same trace, the client's span as parent
    assert hex_id(span.context.trace_id, 32) == TRACE_ID and hex_id(span.parent.span_id) == PARENT_ID
    assert span.parent.is_remote

    [attempt] = traces.children(span)
    assert attempt.kind is SpanKind.INTERNAL and attempt.status.status_code is StatusCode.UNSET
    assert dict(attempt.attributes) == {"mimo_asgi.account": "main", "mimo_asgi.attempt": 1,
                                        "mimo_asgi.upstream_model": "mimo-v2.5-pro",
                                        "server.address": "127.0.0.1", "server.port": httpx.URL(fake_url).port}
    # MiMo is asked within the attempt: its traceparent names the attempt's span
    assert traceparent_ids(fake.requests[-1].headers["traceparent"]) == (TRACE_ID, hex_id(attempt.context.span_id))

    [first_byte] = [e for e in span.events if e.name == "mimo_asgi.first_byte"]
    assert span.start_time < first_byte.timestamp < span.end_time
    assert first_byte.attributes["mimo_asgi.ttfb_ms"] == pytest.approx((first_byte.timestamp - span.start_time) / 1e6,
                                                                       abs=0.01)


def test_without_an_incoming_traceparent_the_span_starts_a_trace(gateway, fake, traces):
    url, _ = gateway
    response = httpx.post(url + "/v1/chat/completions", json=body("chat", False))
    assert response.status_code == 200
    [span] = traces.wait()
    assert span.parent is None
    assert traceparent_ids(fake.requests[-1].headers["traceparent"])[0] == hex_id(span.context.trace_id, 32)


@pytest.mark.parametrize("route,stream,answer,reasons", [
    ("chat", True, Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), ("tool_calls",)),
    ("chat", True, Answer(finish_reason="length"), ("length",)),
    ("responses", False, Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), ("tool_calls",)),
    ("responses", True, Answer(finish_reason="length"), ("length",)),
    ("responses", False, Answer(), ("stop",)),
])
def test_finish_reasons(gateway, fake, traces, route, stream, answer, reasons):
    url, _ = gateway
    fake.queue(answer)
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}] if route == "responses" \
        else [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = httpx.post(url + PATHS[route], json=body(route, stream, tools=tools))
    assert response.status_code == 200
    [span] = traces.wait()
    assert span.attributes["gen_ai.response.finish_reasons"] == reasons
    assert span.attributes["mimo_asgi.route"] == route
    assert "error.type" not in span.attributes and span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_a_failover_is_one_span_with_an_attempt_per_account(serve_gateway, fake, fake_url, traces, route):
    url, _ = two_accounts(serve_gateway, fake_url)
    fake.queue(Answer(status=429, headers={"retry-after": "30"}), Answer(text="from b"))
    response = httpx.post(url + PATHS[route], json=body(route, True), headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200 and "from b" in response.text

    [span] = traces.wait()
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in span.attributes
    assert span.attributes["mimo_asgi.attempts"] == 2 and span.attributes["mimo_asgi.account"] == "b"
    left, served = traces.children(span)
    assert left.attributes["mimo_asgi.account"] == "a" and left.attributes["mimo_asgi.attempt"] == 1
    assert left.status.status_code is StatusCode.ERROR
    assert left.attributes["mimo_asgi.status_code"] == 429 and left.attributes["error.type"]
    assert left.end_time <= served.start_time  # left before the next account was tried
    assert served.attributes["mimo_asgi.account"] == "b" and served.attributes["mimo_asgi.attempt"] == 2
    assert served.status.status_code is StatusCode.UNSET and "error.type" not in served.attributes
    # each MiMo request carried its own attempt's context
    sent = [traceparent_ids(r.headers["traceparent"]) for r in fake.requests]
    assert sent == [(TRACE_ID, hex_id(left.context.span_id)), (TRACE_ID, hex_id(served.context.span_id))]
    assert [r.key_fingerprint for r in fake.requests] == [key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)]


def test_an_upstream_error_answer_is_an_error_span(gateway, fake, traces):
    url, _ = gateway
    fake.queue(Answer.error_status(400, "bad things"))
    response = httpx.post(url + "/v1/chat/completions", json=body("chat", True))
    assert response.status_code == 400
    error = response.json()["error"]
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == (error["code"] or error["type"])
    assert span.attributes["mimo_asgi.status_code"] == 400
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    [attempt] = traces.children(span)
    assert attempt.status.status_code is StatusCode.ERROR and attempt.attributes["error.type"] == span.attributes["error.type"]


def test_every_account_failing_ends_every_attempt_and_the_exchange_in_error(serve_gateway, fake, fake_url, traces):
    url, _ = two_accounts(serve_gateway, fake_url)
    fake.queue(Answer(status=503), Answer(status=503))
    response = httpx.post(url + "/v1/responses", json=body("responses", False))
    assert response.status_code == 502
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["mimo_asgi.status_code"] == 502
    assert span.attributes["error.type"] == (response.json()["error"]["code"] or "502")
    attempts = traces.children(span)
    assert [a.attributes["mimo_asgi.account"] for a in attempts] == ["a", "b"]
    assert all(a.status.status_code is StatusCode.ERROR and a.attributes["error.type"] for a in attempts)


def test_a_stream_failing_after_it_started_is_an_error_span(gateway, fake, traces):
    url, _ = gateway
    fake.queue(Answer(text="a long answer " * 10, reasoning="", chunk_size=4, cut_after=6))
    response = httpx.post(url + "/v1/responses", json=body("responses", True))
    assert response.status_code == 200
    failed = events(response)[-1]
    assert failed["type"] == "response.failed"
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == failed["response"]["error"]["code"]
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert span.attributes["gen_ai.response.id"] == failed["response"]["id"]


def test_a_request_refused_for_busy_accounts_is_an_error_span(serve_gateway, fake, fake_url, traces):
    account = Account("solo", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS, max_concurrency=1)
    pool = AccountPool([account])
    url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k")
    lease = pool(RouteRequest("chat", "gpt-5.5", {}, {}, {}))
    try:
        response = httpx.post(url + "/v1/chat/completions", json=body("chat", False))
    finally:
        lease.release()
    assert response.status_code == 503 and response.json()["error"]["code"] == "accounts_busy"
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "accounts_busy"
    assert span.attributes["gen_ai.request.model"] == "gpt-5.5" and traces.children(span) == []
    assert fake.requests == []


def test_a_request_refused_for_too_many_in_flight_is_an_error_span(serve_gateway, fake, fake_url, traces):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(max_streams=0))
    response = httpx.post(url + "/v1/responses", json=body("responses", True))
    assert response.status_code == 503
    [span] = traces.wait()
    assert span.attributes["error.type"] == "overloaded" and span.attributes["mimo_asgi.status_code"] == 503
    assert span.attributes["server.address"] == "127.0.0.1"


def _leave_after(url: str, route: str, marker: bytes | None) -> None:
    """Stream a request and leave once `marker` arrived (None: as soon as the answer started)."""
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", url + PATHS[route], json=body(route, True)) as response:
            assert response.status_code == 200
            seen = b""
            for part in response.iter_bytes():
                seen += part
                if marker is None or marker in seen:
                    return
    raise AssertionError("the marker never came")


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_a_client_leaving_mid_stream_ends_the_span_as_cancelled(gateway, fake, traces, route):
    url, _ = gateway
    fake.queue(Answer(text="a slow answer " * 8, reasoning="", chunk_size=4, stall_after=(4, 30)))
    _leave_after(url, route, b"a sl")
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 5)
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "cancelled"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert span.attributes["mimo_asgi.status_code"] == 200  # the stream had started
    assert [e.name for e in span.events] == ["mimo_asgi.first_byte"]
    [attempt] = traces.children(span)
    assert attempt.status.status_code is StatusCode.ERROR and attempt.attributes["error.type"] == "cancelled"


def test_a_client_leaving_before_the_first_byte_ends_the_span_as_cancelled(gateway, fake, traces):
    url, _ = gateway
    fake.queue(Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json=body("chat", False), timeout=0.5)
    [span] = traces.wait()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "cancelled"
    assert "mimo_asgi.status_code" not in span.attributes and span.events == ()


SECRET_PROMPT = "prompt-sentinel-7d1c"
SECRET_ANSWER = "answer-sentinel-93fa"
SECRET_REASONING = "reasoning-sentinel-5b2e"
SECRET_INSTRUCTIONS = "instructions-sentinel-c0de"
SECRET_ARGUMENT = "argument-sentinel-4410"


def _sentinel_round(url: str, fake, route: str) -> None:
    fake.queue(Answer(status=429),  # account a fails over to b: both keys were in use
               Answer(text=SECRET_ANSWER, reasoning=SECRET_REASONING,
                      tool_calls=[ToolCall("lookup", {"q": SECRET_ARGUMENT})], chunk_size=100, whole_tool_calls=True))
    extra = {"instructions": SECRET_INSTRUCTIONS, "reasoning": {"effort": "high"}} if route == "responses" else {}
    response = httpx.post(url + PATHS[route], json=body(route, True, text=f"{SECRET_PROMPT} {TEST_KEY}", **extra),
                          headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200 and SECRET_ANSWER in response.text


@pytest.mark.parametrize("route", ["chat", "responses"])
@pytest.mark.parametrize("capture", [None, "false", "NO_CONTENT", "EVENT_ONLY"])
def test_no_text_and_no_key_in_any_span_by_default(serve_gateway, fake, fake_url, traces, monkeypatch, route, capture):
    if capture is None:
        monkeypatch.delenv(CAPTURE_ENV, raising=False)
    else:
        monkeypatch.setenv(CAPTURE_ENV, capture)
    url, _ = two_accounts(serve_gateway, fake_url)
    _sentinel_round(url, fake, route)
    [span] = traces.wait()
    assert len(traces.children(span)) == 2
    recorded = traces.recorded_text()
    for secret in (SECRET_PROMPT, SECRET_ANSWER, SECRET_REASONING, SECRET_INSTRUCTIONS, SECRET_ARGUMENT,
                   TEST_KEY, KEY_B, key_fingerprint(TEST_KEY), key_fingerprint(KEY_B), "Bearer"):
        assert secret not in recorded
    assert "gen_ai.input.messages" not in span.attributes and "gen_ai.output.messages" not in span.attributes


@pytest.mark.parametrize("capture", ["true", "SPAN_ONLY", "span_and_event"])
def test_content_is_recorded_when_the_operator_opts_in_never_a_key(serve_gateway, fake, fake_url, traces, monkeypatch,
                                                                   capture):
    monkeypatch.setenv(CAPTURE_ENV, capture)
    url, _ = two_accounts(serve_gateway, fake_url)
    _sentinel_round(url, fake, "responses")
    [span] = traces.wait()
    sent = json.loads(span.attributes["gen_ai.input.messages"])
    user = [m for m in sent if m["role"] == "user"]
    assert user[-1]["parts"] == [{"type": "text", "content": f"{SECRET_PROMPT} [redacted]"}]
    assert any(m["role"] in ("system", "developer") and SECRET_INSTRUCTIONS in json.dumps(m) for m in sent)
    [answer] = json.loads(span.attributes["gen_ai.output.messages"])
    assert answer["role"] == "assistant" and answer["finish_reason"] == "tool_calls"
    assert {"type": "text", "content": SECRET_ANSWER} in answer["parts"]
    assert {"type": "reasoning", "content": SECRET_REASONING} in answer["parts"]
    [call] = [p for p in answer["parts"] if p["type"] == "tool_call"]
    assert call["name"] == "lookup" and call["arguments"] == {"q": SECRET_ARGUMENT}
    recorded = traces.recorded_text()
    for secret in (TEST_KEY, KEY_B, key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)):
        assert secret not in recorded
