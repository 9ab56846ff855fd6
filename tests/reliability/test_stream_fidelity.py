"""What MiMo's streams may hold that is not a failure, and timeouts that measure silence:
`"error": null` is no error, one line that is not JSON does not end an answer, and a long answer
that keeps coming finishes whatever its length, on both routes, stream or not."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from reliability.outcomes import PATHS, request_body
from reliability.rawupstream import RawUpstream, Stall, chunk, data, sse_head
from support import TEST_KEY, wait_for

from mimo_asgi import Account, Timeouts
from mimo_asgi.metrics import PrometheusMetrics
from mimo_asgi.testing import Answer

MODES = [("chat", False), ("chat", True), ("responses", False), ("responses", True)]
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def _account(base_url: str) -> Account:
    return Account("main", TEST_KEY, base_url=base_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})


@pytest.fixture
def raw(serve_gateway):
    """(gateway url, middleware, upstream, metrics) on a RawUpstream whose script each test sets."""
    upstream = RawUpstream(lambda body: [])
    metrics = PrometheusMetrics()
    with upstream.serve() as base_url:
        url, mw = serve_gateway(accounts=[_account(base_url)], api_key=None, seal_key="k", metrics=metrics,
                                timeouts=Timeouts(connect=2, first_byte=1.0, idle=0.5))
        yield url, mw, upstream, metrics


def _text(route: str, stream: bool, response: httpx.Response) -> str:
    """The answer's text, from whichever shape the route and mode give."""
    assert response.status_code == 200, response.text
    if not stream:
        body = response.json()
        if route == "chat":
            return body["choices"][0]["message"]["content"]
        return "".join(p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"])
    events = [json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: {")]
    if route == "chat":
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    [done] = [e for e in events if e["type"] == "response.completed"]
    return "".join(p["text"] for item in done["response"]["output"] if item["type"] == "message" for p in item["content"])


def _post(url: str, route: str, stream: bool) -> httpx.Response:
    return httpx.post(url + PATHS[route], json=request_body(route, stream), timeout=20)


@pytest.mark.parametrize("route,stream", MODES)
def test_error_null_is_not_an_error(raw, route, stream):
    url, mw, upstream, _ = raw
    with_null = {"id": "raw1", "object": "chat.completion.chunk", "created": 1, "model": "mimo-v2.5-pro",
                 "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}], "error": None}
    upstream.script = lambda body: [sse_head(), data(with_null), chunk({"content": " there"}, "stop", USAGE),
                                    b"data: [DONE]\n\n"]
    assert _text(route, stream, _post(url, route, stream)) == "Hello there"
    assert not mw.pool.cooling_down("main")  # no strike against the account


@pytest.mark.parametrize("route,stream", MODES)
def test_a_line_that_is_not_json_is_skipped_logged_once_and_counted(raw, route, stream, caplog):
    url, mw, upstream, metrics = raw
    caplog.set_level(logging.WARNING, logger="mimo_asgi")
    upstream.script = lambda body: [sse_head(), chunk({"content": "Hello"}), b"data: {not json\n\n",
                                    b"data: nor this\n\n", chunk({"content": " world"}, "stop", USAGE),
                                    b"data: [DONE]\n\n"]
    assert _text(route, stream, _post(url, route, stream)) == "Hello world"
    warnings = [r.getMessage() for r in caplog.records if "not JSON" in r.getMessage()]
    assert len(warnings) == 1 and "not json" not in warnings[0]  # once per stream; the line itself is not logged
    assert metrics.skipped_lines._value.get() == 2


@pytest.mark.parametrize("route,stream", MODES)
def test_a_long_answer_that_keeps_coming_finishes_past_every_timeout(raw, route, stream):
    """2 s of answer, a chunk every 0.2 s: longer than the first-byte (1 s) and idle (0.5 s)
    timeouts together, never silent for longer than either."""
    url, _, upstream, _ = raw
    steps: list = [sse_head()]
    for n in range(10):
        steps += [Stall(0.2), chunk({"content": f"{n}"})]
    upstream.script = lambda body: [*steps, chunk({}, "stop", USAGE), b"data: [DONE]\n\n"]
    assert _text(route, stream, _post(url, route, stream)) == "0123456789"


@pytest.mark.parametrize("route,stream", MODES)
def test_no_answer_is_a_504_naming_the_first_byte_timeout(raw, route, stream):
    url, _, upstream, _ = raw
    upstream.script = lambda body: [Stall(3)]
    response = _post(url, route, stream)
    assert response.status_code == 504
    assert "within 1s (the first-byte timeout)" in response.json()["error"]["message"]


@pytest.mark.parametrize("route,stream", MODES)
def test_silence_mid_answer_names_the_idle_timeout(raw, route, stream):
    url, _, upstream, _ = raw
    upstream.script = lambda body: [sse_head(), chunk({"content": "Hel"}), Stall(3)]
    response = _post(url, route, stream)
    assert "silent for 0.5s (the idle timeout)" in response.text
    assert response.status_code == (200 if stream else 504)  # a started stream ends with a failure instead


def test_a_non_stream_chat_request_is_streamed_upstream(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Whole.", reasoning=""))
    answer = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": [
        {"role": "user", "content": "hi"}]}, timeout=20).json()
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "Whole."
    assert answer["model"] == "gpt-5.5" and answer["usage"]["total_tokens"] > 0
    sent = fake.requests[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert wait_for(lambda: fake.in_flight == 0)
