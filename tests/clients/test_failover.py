"""Failover before the first byte, cooldowns, hold-back of in-band errors, keep-alive, limits."""

import json
import socket

import httpx
import openai
import pytest
from support import TEST_KEY, wait_for
from unit.invariants import check_responses_stream

from mimo_asgi import Account, AccountPool, Limits, Timeouts
from mimo_asgi._sse import SSEDecoder
from mimo_asgi.testing import Answer, key_fingerprint

KEY_B = "sk-test-bbbbbbbbbbbbbbbb"
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}
ROUTES = [("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES)]


def accounts(fake_url, first_url=None):
    models = {"gpt-5*": "mimo-v2.5-pro"}
    return [Account("a", TEST_KEY, base_url=first_url or fake_url, upstream="mimo", models=models),
            Account("b", KEY_B, base_url=fake_url, upstream="mimo", models=models)]


@pytest.fixture
def two(serve_gateway, fake_url):
    def start(first_url=None, **options):
        pool = AccountPool(accounts(fake_url, first_url))
        url, mw = serve_gateway(resolver=pool, api_key=None, seal_key="k", **options)
        return url, pool

    return start


def keys_used(fake):
    return [r.key_fingerprint for r in fake.requests]


def sse(text):
    return [json.loads(e.data) if e.data != "[DONE]" else "[DONE]" for e in SSEDecoder().feed(text.encode())]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path,body", ROUTES)
@pytest.mark.parametrize("first", [Answer(status=429, headers={"retry-after": "30"}), Answer(status=500), Answer(status=503)])
def test_retryable_status_fails_over_and_cools_down(two, fake, path, body, stream, first):
    url, pool = two()
    fake.queue(first, Answer(text="from b"))
    response = httpx.post(url + path, json={**body, "stream": stream})
    assert response.status_code == 200
    assert "from b" in response.text or "from" in response.text
    assert keys_used(fake) == [key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)]
    assert pool.cooling_down("a") > 0 and pool.cooling_down("b") == 0
    if first.status == 429:
        assert 25 < pool.cooling_down("a") <= 30  # Retry-After honoured
    # the next request goes straight to b: a is cooling down
    fake.queue(Answer(text="again"))
    assert httpx.post(url + path, json=body).status_code == 200
    assert keys_used(fake)[-1] == key_fingerprint(KEY_B)
    assert wait_for(lambda: pool.in_flight() == 0)


def test_auth_failure_disables_the_account(two, fake):
    url, pool = two()
    fake.queue(Answer(status=401), Answer(text="b"))
    assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
    assert pool.disabled("a") and not pool.disabled("b")


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("path,body", ROUTES)
def test_connection_refused_fails_over(two, fake, path, body):
    url, pool = two(first_url=f"http://127.0.0.1:{_closed_port()}/v1")
    fake.queue(Answer(text="from b"))
    assert httpx.post(url + path, json={**body, "stream": True}).status_code == 200
    assert keys_used(fake) == [key_fingerprint(KEY_B)] and pool.cooling_down("a") > 0


@pytest.mark.parametrize("path,body", ROUTES)
def test_in_band_error_before_content_fails_over(two, fake, path, body):
    url, pool = two()
    fake.queue(Answer(error={"error": {"code": "500", "message": "overloaded"}}, error_after=1), Answer(text="from b"))
    response = httpx.post(url + path, json={**body, "stream": True})
    events = sse(response.text)
    assert keys_used(fake) == [key_fingerprint(TEST_KEY), key_fingerprint(KEY_B)]
    if path == "/v1/responses":
        final = check_responses_stream(events)
        assert final["status"] == "completed" and final["output"][-1]["content"][0]["text"] == "from b"
        assert [e["type"] for e in events].count("response.created") == 1
    else:
        assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])


def test_no_retry_once_content_was_sent(two, fake):
    url, pool = two()
    fake.queue(Answer(text="some text then a cut", chunk_size=3, cut_after=6), Answer(text="never"))
    events = sse(httpx.post(url + "/v1/responses", json={**RESPONSES, "stream": True}).text)
    assert check_responses_stream(events)["status"] == "failed"
    assert len(fake.requests) == 1


def test_attempts_are_bounded_and_the_last_error_is_returned(two, fake):
    url, pool = two(limits=Limits(max_attempts=2))
    fake.queue(Answer(status=503), Answer(status=429, headers={"retry-after": "9"}), Answer(text="never"))
    response = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert response.status_code == 429 and response.headers["retry-after"] == "9"
    assert len(fake.requests) == 2
    # both cooling down: a new request is refused with Retry-After, without reaching MiMo
    refused = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert len(fake.requests) == 2 and refused.json()["error"]["code"] == "accounts_busy"


@pytest.mark.parametrize("path,body", ROUTES)
def test_keepalive_comments_while_upstream_is_silent(serve_gateway, fake, fake_url, path, body):
    account = accounts(fake_url)[0]
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", keepalive_seconds=0.2,
                           timeouts=Timeouts(first_byte=5, idle=10))
    fake.queue(Answer(text="slow and steady", chunk_size=4, stall_after=(4, 1.2)))
    text = httpx.post(url + path, json={**body, "stream": True}, timeout=10).text
    lines = text.split("\n")
    assert lines.count(": keep-alive") >= 3
    assert not any(line.startswith("event: ping") for line in lines)
    events = sse(text)
    if path == "/v1/responses":
        assert check_responses_stream(events)["status"] == "completed"
    else:
        assert events[-1] == "[DONE]"


def test_keepalive_is_idle_based_and_sdk_parses_unchanged(serve_gateway, fake, fake_url):
    url, _ = serve_gateway(accounts=accounts(fake_url)[:1], api_key=None, seal_key="k", keepalive_seconds=0.2)
    fake.queue(Answer(text="steady", chunk_size=2))  # no silence: no comment
    assert ": keep-alive" not in httpx.post(url + "/v1/responses", json={**RESPONSES, "stream": True}).text
    fake.queue(Answer(text="pause here", chunk_size=3, stall_after=(3, 0.9)))
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    with client.responses.stream(model="gpt-5.5", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "pause here"


def test_keepalive_zero_is_off(serve_gateway, fake, fake_url):
    url, _ = serve_gateway(accounts=accounts(fake_url)[:1], api_key=None, seal_key="k", keepalive_seconds=0)
    fake.queue(Answer(text="pause", stall_after=(3, 0.6)))
    assert ": keep-alive" not in httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}).text


def test_limits(serve_gateway, fake, fake_url):
    url, _ = serve_gateway(accounts=accounts(fake_url)[:1], api_key=None, seal_key="k", limits=Limits(max_items=5, max_depth=8))
    many = {**RESPONSES, "input": [{"role": "user", "content": "x"}] * 6}
    assert httpx.post(url + "/v1/responses", json=many).json()["error"]["param"] == "input"
    deep = {**CHAT, "metadata": {"a": [[[[[[[[["x"]]]]]]]]]}}
    response = httpx.post(url + "/v1/chat/completions", json=deep)
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_deep"
    assert fake.requests == []


def test_max_streams_answers_503(serve_gateway, fake, fake_url):
    url, mw = serve_gateway(accounts=accounts(fake_url)[:1], api_key=None, seal_key="k", limits=Limits(max_streams=1))
    fake.queue(Answer(text="holding", stall_after=(2, 3)))
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", url + "/v1/chat/completions", json={**CHAT, "stream": True}) as held:
            chunks = held.iter_bytes()  # keep the iterator: dropping it would close the stream
            next(chunks)
            refused = http.post(url + "/v1/chat/completions", json=CHAT)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert wait_for(lambda: mw.active_streams == 0)


def test_session_affinity_across_turns_then_cooldown(two, fake):
    url, pool = two()
    for turn in range(4):
        fake.queue(Answer(text=f"turn {turn}"))
        body = {**RESPONSES, "prompt_cache_key": "conv-42"} if turn % 2 else RESPONSES
        headers = {} if turn % 2 else {"session-id": "conv-42-session"}
        assert httpx.post(url + "/v1/responses", json=body, headers=headers).status_code == 200
    pck_turns = [r.key_fingerprint for i, r in enumerate(fake.requests) if i % 2]
    sid_turns = [r.key_fingerprint for i, r in enumerate(fake.requests) if not i % 2]
    assert len(set(pck_turns)) == 1 and len(set(sid_turns)) == 1
    remembered = pool.affinity("pck:conv-42")
    # the remembered account answers 429: the turn moves, and the next turn stays on the new account
    fake.queue(Answer(status=429), Answer(text="moved"), Answer(text="stays"))
    for _ in range(2):
        assert httpx.post(url + "/v1/responses", json={**RESPONSES, "prompt_cache_key": "conv-42"}).status_code == 200
    assert pool.affinity("pck:conv-42") not in (None, remembered)
    assert fake.requests[-1].key_fingerprint == fake.requests[-2].key_fingerprint != pck_turns[0]
