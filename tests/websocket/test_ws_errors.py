"""Failures over a WebSocket: before the response starts an `error` frame with the status (and
Retry-After) an HTTP client would get; after it, `response.failed`; failover before the first
event as on HTTP. The connection serves the next frame after each."""

from __future__ import annotations

import json
import logging

import pytest
from support import TEST_KEY, wait_for
from websocket.wsclient import Frames, completed, error_of, output_text

from mimo_asgi import Account, AccountPool, Limits
from mimo_asgi.testing import Answer, error_body, key_fingerprint
from unit.invariants import check_responses_stream

KEY_B = "sk-test-bbbbbbbbbbbbbbbb"
MODELS = {"gpt-5*": "mimo-v2.5-pro"}


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert TEST_KEY not in record.getMessage() and KEY_B not in record.getMessage()


@pytest.fixture
def one_account(serve_gateway, fake_url):
    """A gateway whose resolver always picks one account: no cooldown after an error, so the
    next frame shows the connection, not the pool."""
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(resolver=lambda request: account, api_key=None, seal_key="k")
    return url


def _next_is_served(ws: Frames, fake) -> None:
    fake.queue(Answer(text="served again", reasoning=""))
    assert output_text(completed(ws.create(model="gpt-5.5", input="again"))) == "served again"


def _no_key_in(events) -> None:
    text = json.dumps(events)
    assert TEST_KEY not in text and KEY_B not in text


def test_mimo_429_is_an_error_frame_keeping_retry_after(one_account, fake, open_ws):
    url = one_account
    ws = open_ws(url)
    fake.queue(Answer.rate_limited(headers={"retry-after": "7"}))
    events = ws.create(model="gpt-5.5", input="hi")
    frame = error_of(events, 429, "rate_limit_exceeded")
    assert frame["headers"] == {"retry-after": "7"}
    _no_key_in(events)
    _next_is_served(ws, fake)


def test_mimo_400_is_an_error_frame_with_its_detail(one_account, fake, open_ws):
    url = one_account
    ws = open_ws(url)
    fake.queue(Answer.error_status(400, "something specific is wrong"))
    frame = error_of(ws.create(model="gpt-5.5", input="hi"), 400)
    assert "something specific is wrong" in frame["error"]["message"]
    assert frame["error"]["type"] == "invalid_request_error"
    _next_is_served(ws, fake)


def test_mimo_5xx_is_an_error_frame_codex_retries(one_account, fake, open_ws):
    url = one_account
    ws = open_ws(url)
    fake.queue(Answer.error_status(503))
    frame = error_of(ws.create(model="gpt-5.5", input="hi"), 502)
    assert frame["error"]["type"]
    _next_is_served(ws, fake)


@pytest.mark.parametrize("first", [Answer.error_status(500), Answer.rate_limited(headers={"retry-after": "30"}),
                                   Answer.in_band(after=0)], ids=["500", "429", "in-band-error"])
def test_failover_before_the_first_event_serves_one_answer(serve_gateway, fake, fake_url, open_ws, first):
    pool = AccountPool([Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS),
                        Account("b", KEY_B, base_url=fake_url, upstream="mimo", models=MODELS)])
    url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k")
    ws = open_ws(url)
    fake.queue(first, Answer(text="from b", reasoning=""))
    events = ws.create(model="gpt-5.5", input="hi")
    assert output_text(completed(events)) == "from b"  # one whole stream: one created, one terminal
    assert sum(e["type"] == "response.created" for e in events) == 1
    assert [r.key_fingerprint for r in fake.requests] == [key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)]
    assert wait_for(lambda: pool.in_flight() == 0, 5)
    _next_is_served(ws, fake)


@pytest.mark.parametrize("answer", [
    Answer(text="this answer is cut short", reasoning="", chunk_size=3, cut_after=4),
    Answer(text="an error comes after some text", reasoning="", chunk_size=3, error=error_body(500), error_after=4),
], ids=["cut", "in-band-error"])
def test_a_failure_after_the_start_is_response_failed(gateway, fake, open_ws, answer):
    url, mw = gateway
    ws = open_ws(url)
    fake.queue(answer)
    events = ws.create(model="gpt-5.5", input="hi")
    assert events[-1]["type"] == "response.failed"
    response = check_responses_stream(events)
    assert response["status"] == "failed" and response["error"]["code"]
    assert any(e["type"] == "response.output_text.delta" for e in events)
    _no_key_in(events)
    assert wait_for(lambda: mw.pool.in_flight() == 0, 5)
    _next_is_served(ws, fake)


def test_a_failed_response_cannot_be_chained_from(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(text="cut short", reasoning="", chunk_size=2, cut_after=3))
    failed = ws.create(model="gpt-5.5", store=False, input="hi")[-1]["response"]
    error_of(ws.create(model="gpt-5.5", store=False, input="and?", previous_response_id=failed["id"]), 404,
             "previous_response_not_found")


def test_too_many_streams_is_an_error_frame_with_retry_after(serve_gateway, fake, fake_url, open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(max_streams=1))
    busy, other = open_ws(url), open_ws(url)
    fake.queue(Answer(text="slow", reasoning="", silence_before=1.0))
    busy.send({"type": "response.create", "model": "gpt-5.5", "input": "slow"})
    assert wait_for(lambda: fake.in_flight == 1, 5)  # the first holds the one stream, MiMo silent
    frame = error_of(other.create(model="gpt-5.5", input="hi"), 503, "overloaded")
    assert frame["headers"] == {"retry-after": "1"}
    assert output_text(completed(busy.answer())) == "slow"
    _next_is_served(other, fake)
