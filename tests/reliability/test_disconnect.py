"""A client that leaves cancels its upstream request at once (nobody pays for tokens nobody
reads), returns its lease, and is reported once to `on_usage` as cancelled with the usage
seen so far."""

from __future__ import annotations

import httpx
import pytest
from reliability.outcomes import PATHS, request_body
from reliability.rawupstream import RawUpstream, Stall, chunk, sse_head
from support import TEST_KEY, wait_for

from mimo_asgi import Account
from mimo_asgi.testing import Answer, Usage

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
         "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}


def _gateway(serve_gateway, base_url: str, events: list):
    account = Account("main", TEST_KEY, base_url=base_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    return serve_gateway(accounts=[account], api_key=None, seal_key="k", on_usage=events.append)


def _read_until(url: str, route: str, marker: bytes, **extra) -> bytes:
    """Stream a request, stop reading once `marker` arrived, and leave (closing the connection)."""
    seen = b""
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", url + PATHS[route], json=request_body(route, True, **extra)) as response:
            assert response.status_code == 200
            for part in response.iter_bytes():
                seen += part
                if marker in seen:
                    break
    assert marker in seen
    return seen


def _one_cancelled_event(mw, events: list):
    assert wait_for(lambda: mw.pool.in_flight() == 0, 5), "the lease was not returned"
    assert len(events) == 1, events
    event = events[0]
    assert event.outcome == "cancelled" and event.route in ("chat", "responses")
    return event


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_leaving_mid_stream_cancels_the_upstream(serve_gateway, fake, fake_url, route):
    events: list = []
    url, mw = _gateway(serve_gateway, fake_url, events)
    # events: role, then "a sl", "ow a", "nswe", then the stall
    fake.respond_with(lambda body: Answer(text="a slow answer " * 8, reasoning="", chunk_size=4, stall_after=(4, 30)))
    _read_until(url, route, b"a sl")
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 1.0), "upstream still running"
    _one_cancelled_event(mw, events)
    assert wait_for(lambda: fake.in_flight == 0, 1.0)


@pytest.mark.parametrize("route,stream", [("chat", False), ("chat", True), ("responses", False), ("responses", True)])
def test_leaving_before_the_first_byte_cancels_the_upstream(serve_gateway, fake, fake_url, route, stream):
    events: list = []
    url, mw = _gateway(serve_gateway, fake_url, events)
    fake.respond_with(lambda body: Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + PATHS[route], json=request_body(route, stream), timeout=0.5)
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 1.0), "upstream still running"
    event = _one_cancelled_event(mw, events)
    assert event.usage["input_tokens"] == 0 and event.usage["output_tokens"] == 0


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_cancelled_request_reports_the_usage_seen_so_far(serve_gateway, route):
    # usage rides an early chunk (some upstreams send it on every chunk), then MiMo goes silent
    upstream = RawUpstream(lambda body: [sse_head(), chunk({"content": "partial"}, usage=USAGE), Stall(30)])
    events: list = []
    with upstream.serve() as base_url:
        url, mw = _gateway(serve_gateway, base_url, events)
        _read_until(url, route, b"partial", **({"stream_options": {"include_usage": True}} if route == "chat" else {}))
        assert wait_for(lambda: upstream.requests and upstream.requests[-1].disconnected, 1.0)
        event = _one_cancelled_event(mw, events)
    assert event.usage == {"input_tokens": 11, "cached_tokens": 3, "output_tokens": 7, "reasoning_tokens": 2,
                           "total_tokens": 18}


def test_cancelled_chat_stream_after_mimo_sent_its_usage(serve_gateway, fake, fake_url):
    """The faithful fake sends usage last; a client leaving right after it still has it billed."""
    events: list = []
    url, mw = _gateway(serve_gateway, fake_url, events)
    # events: role, content, finish, usage; then the stall holds back [DONE]
    fake.respond_with(lambda body: Answer(text="ok", reasoning="", usage=Usage(prompt_tokens=5, completion_tokens=2),
                                          stall_after=(4, 30)))
    _read_until(url, "chat", b'"usage"', stream_options={"include_usage": True})
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 1.0)
    event = _one_cancelled_event(mw, events)
    assert (event.usage["input_tokens"], event.usage["output_tokens"]) == (5, 2)
