"""Whatever the upstream does, the client gets exactly one terminal: a Responses stream ends with
one of completed / incomplete / failed, a Chat stream with a final or error chunk and one
`[DONE]`, a non-stream request with its answer or an OpenAI-shaped error. The lease always
comes back. And a lone account is never locked out: once the upstream is healthy again, the
next request is served (after the Retry-After a rate limit was answered with)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from pool_support import FakeClock, SyncView, local_pool, memory_pool
from reliability.outcomes import PATHS, check_outcome, is_failure, request_body
from reliability.rawupstream import RESET, RawUpstream, chunk, data, json_response, sse_head
from support import TEST_KEY, wait_for

from mimo_asgi import Account, Timeouts
from mimo_asgi.testing import Answer, ToolCall, error_body

TIMEOUTS = Timeouts(connect=2, first_byte=1.5, idle=0.3)
MODES = [("chat", False), ("chat", True), ("responses", False), ("responses", True)]
FAIL, OK, ANY = "fail", "ok", "any"

FAKE_FAULTS = {
    "http_400": (Answer.error_status(400, "something is wrong"), FAIL),
    "http_401": (Answer.error_status(401), FAIL),
    "http_402": (Answer.insufficient_funds(), FAIL),
    "http_429": (Answer.rate_limited(headers={"retry-after": "1"}), FAIL),
    "http_500": (Answer.error_status(500), FAIL),
    "http_503": (Answer.error_status(503), FAIL),
    "cut_before_first_event": (Answer(cut_after=0), FAIL),
    "cut_mid_text": (Answer(text="a longer answer that is cut", chunk_size=2, cut_after=5), FAIL),
    "cut_mid_tool_call": (Answer(tool_calls=[ToolCall("exec_command", {"cmd": "ls -la /tmp"})], chunk_size=3,
                                 cut_after=7), FAIL),
    "no_done_after_finish": (Answer(done=False), OK),
    "length_finish": (Answer(text="cut by length", finish_reason="length"), OK),
    "in_band_error_first": (Answer.in_band(0), FAIL),
    "in_band_error_mid": (Answer.in_band(3), FAIL),
    "in_band_rate_limit": (Answer(error=error_body(429), error_after=2), FAIL),
    "stall_past_idle": (Answer(text="a stalling answer", chunk_size=3, stall_after=(2, 5)), FAIL),
    "silent_past_first_byte": (Answer(silence_before=5), FAIL),
}


def _completion(text: str) -> bytes:
    return json_response(200, (
        b'{"id":"r","object":"chat.completion","created":1,"model":"mimo-v2.5-pro","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}' % text.encode()))


def _sse(*steps):
    return [sse_head(), *steps]


# name -> (steps for a streamed upstream request, steps for a non-stream one, expected)
RAW_FAULTS = {
    "garbage_line": (_sse(chunk({"content": "hi"}), b"data: {not json\n\n", chunk(finish="stop")), None, OK),
    "oversize_line": (_sse(chunk({"content": "hi"}), b"data: " + b"x" * (8 * 1024 * 1024 + 64)), None, FAIL),
    "non_object_chunks": (_sse(data(b"[1, 2]"), data(b"null"), data(b'"text"'), chunk({"content": "x"}, "stop")),
                          None, ANY),
    "reset_mid_stream": (_sse(chunk({"content": "partial"}), RESET), [b"HTTP/1.1 200 OK\r\n", RESET], FAIL),
    "reset_before_head": ([RESET], [RESET], FAIL),
    "half_head_then_close": ([b"HTTP/1.1 200 OK\r\ncontent-"], [b"HTTP/1.1 200 OK\r\ncontent-"], FAIL),
    "html_with_200": ([json_response(200, b"<html>busy</html>", b"text/html")],) * 2 + (FAIL,),
    "garbage_error_body": ([json_response(503, b"\x00\xff not json")],) * 2 + (FAIL,),
    "odd_but_valid_framing": (_sse(b": ping\r\n\r\n", b"data:" + chunk({"content": "hi"})[6:-2] + b"\r\n\r\n",
                                   chunk(finish="stop"), b"data: [DONE]"), [_completion("hi")], OK),
    "close_after_finish_without_done": (_sse(chunk({"content": "hi"}), chunk(finish="stop")),
                                        [_completion("hi")], OK),
}


def _account(base_url: str) -> Account:
    return Account("main", TEST_KEY, base_url=base_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})


@pytest.fixture
def fake_gateway(serve_gateway, fake_url):
    """A fresh gateway per test: cooldowns a fault leaves behind must not reach the next test."""
    return serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="k", timeouts=TIMEOUTS)


@pytest.fixture
def raw_gateway(serve_gateway):
    """A gateway on a RawUpstream whose script each test sets."""
    upstream = RawUpstream(lambda body: [RESET])
    with upstream.serve() as base_url:
        url, mw = serve_gateway(accounts=[_account(base_url)], api_key=None, seal_key="k", timeouts=TIMEOUTS)
        yield url, mw, upstream


def _call(url: str, route: str, stream: bool) -> tuple[int, bytes, str]:
    response = _post(url, route, stream)
    return response.status_code, response.content, response.headers.get("content-type", "")


def _post(url: str, route: str, stream: bool) -> httpx.Response:
    with httpx.Client(timeout=20) as client:
        return client.post(url + PATHS[route], json=request_body(route, stream))


def _expect(outcome: str, expected: str) -> None:
    if expected == FAIL:
        assert is_failure(outcome), f"expected a failure, got {outcome}"
    elif expected == OK:
        assert not is_failure(outcome), f"expected an answer, got {outcome}"


def _lease_back(mw) -> None:
    assert wait_for(lambda: mw.pool.in_flight() == 0, 5), f"leases still held: {mw.pool.in_flight()}"


@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("fault", list(FAKE_FAULTS))
def test_fake_fault_ends_with_one_terminal(fake_gateway, fake, fault, route, stream):
    answer, expected = FAKE_FAULTS[fault]
    fake.respond_with(lambda body: answer)  # every attempt, should the gateway retry
    url, mw = fake_gateway
    status, body, content_type = _call(url, route, stream)
    _expect(check_outcome(route, stream, status, body, content_type), expected)
    assert TEST_KEY.encode() not in body
    _lease_back(mw)
    assert wait_for(lambda: fake.in_flight == 0, 5)


@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("fault", list(RAW_FAULTS))
def test_raw_fault_ends_with_one_terminal(raw_gateway, fault, route, stream):
    streamed, whole, expected = RAW_FAULTS[fault]
    url, mw, upstream = raw_gateway

    def script(body):
        upstream_streams = isinstance(body, dict) and body.get("stream") is True
        return streamed if upstream_streams or whole is None else whole

    upstream.script = script
    status, body, content_type = _call(url, route, stream)
    _expect(check_outcome(route, stream, status, body, content_type), expected)
    _lease_back(mw)
    assert upstream.requests, "the upstream was never reached"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("route,stream", MODES)
def test_connection_refused_is_an_error_before_any_stream(serve_gateway, route, stream):
    url, mw = serve_gateway(accounts=[_account(f"http://127.0.0.1:{_closed_port()}/v1")], api_key=None,
                            seal_key="k", timeouts=TIMEOUTS)
    status, body, content_type = _call(url, route, stream)
    assert check_outcome(route, stream, status, body, content_type) == "http 502"
    _lease_back(mw)


# -- a lone account (the default setup: one key) after every fault -----------------------------

POOLS = {"AccountPool": local_pool, "SharedAccountPool": memory_pool}
HEALTHY_STREAM = _sse(chunk({"content": "healthy"}), chunk(finish="stop"), b"data: [DONE]\n\n")
HEALTHY_WHOLE = [_completion("healthy")]


def _lone(serve_gateway, base_url: str, pool_kind: str):
    """A gateway whose pool has one account, on a clock that moves only when the test says."""
    clock = FakeClock()
    pool = POOLS[pool_kind]([_account(base_url)], clock)
    url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k", timeouts=TIMEOUTS)
    view = pool if pool_kind == "AccountPool" else SyncView(pool)
    return url, view, clock


def _code(response: httpx.Response) -> str | None:
    try:
        return json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _then_served(url, route, stream, first: httpx.Response, clock: FakeClock, asked) -> None:
    """After `first` (the fault's answer), with a healthy upstream: the next request is served.

    Two answers are the gateway's own until their condition ends, without MiMo being asked: a
    key MiMo rejected (503 `accounts_disabled`: the gateway's operator has to fix the account),
    and a rate limit or lack of quota (429 with Retry-After, MiMo's answer as the gateway
    gives it while the account rests; served once that time has passed)."""
    before = asked()
    if _code(first) == "upstream_account_rejected":
        refused = _post(url, route, stream)
        assert (refused.status_code, _code(refused)) == (503, "accounts_disabled")
        assert asked() == before
        return
    if first.status_code == 429:
        refused = _post(url, route, stream)
        if refused.status_code == 429:
            assert _code(refused) in ("rate_limit_exceeded", "insufficient_quota") and asked() == before
            clock.advance(int(refused.headers["retry-after"]))
        else:  # MiMo's own Retry-After had passed already
            assert not is_failure(check_outcome(route, stream, refused.status_code, refused.content,
                                                refused.headers.get("content-type", "")))
            return
    served = _post(url, route, stream)
    outcome = check_outcome(route, stream, served.status_code, served.content, served.headers.get("content-type", ""))
    assert not is_failure(outcome), f"the next request after the fault got {outcome}: {served.text[:300]}"
    assert asked() == before + 1


@pytest.mark.parametrize("pool_kind", list(POOLS))
@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("fault", list(FAKE_FAULTS))
def test_lone_account_after_fake_fault(serve_gateway, fake, fake_url, fault, route, stream, pool_kind):
    url, pool, clock = _lone(serve_gateway, fake_url, pool_kind)
    fake.queue(FAKE_FAULTS[fault][0])  # then the fake's healthy default answer
    first = _post(url, route, stream)
    _then_served(url, route, stream, first, clock, lambda: len(fake.requests))
    assert wait_for(lambda: pool.in_flight() == 0, 5)


@pytest.mark.parametrize("pool_kind", list(POOLS))
@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("fault", list(RAW_FAULTS))
def test_lone_account_after_raw_fault(serve_gateway, fault, route, stream, pool_kind):
    streamed, whole, _ = RAW_FAULTS[fault]
    upstream = RawUpstream(lambda body: [RESET])

    def script(body):
        upstream_streams = isinstance(body, dict) and body.get("stream") is True
        if len(upstream.requests) > 1:  # the fault was the first answer
            return HEALTHY_STREAM if upstream_streams else HEALTHY_WHOLE
        return streamed if upstream_streams or whole is None else whole

    upstream.script = script
    with upstream.serve() as base_url:
        url, pool, clock = _lone(serve_gateway, base_url, pool_kind)
        first = _post(url, route, stream)
        _then_served(url, route, stream, first, clock, lambda: len(upstream.requests))
        assert wait_for(lambda: pool.in_flight() == 0, 5)
