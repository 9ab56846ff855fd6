"""Failover before the first byte, cooldowns, hold-back of in-band errors, keep-alive, limits,
and what a client is told about the gateway's accounts (the openai SDK, retries off)."""

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


@pytest.fixture
def lone(serve_gateway, fake_url):
    """The default setup: one account (`a`), served; returns (url, pool)."""
    def start(**options):
        pool = AccountPool(accounts(fake_url)[:1])
        url, mw = serve_gateway(resolver=pool, api_key=None, seal_key="k", **options)
        return url, pool

    return start


def sdk(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0, timeout=20)


def ask_chat(client, stream=False):
    if stream:
        with client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}],
                                            stream=True) as chunks:
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}]
                                          ).choices[0].message.content


class StreamFailed(Exception):
    """A Responses stream that ended with `response.failed`."""


def ask_responses(client, stream=False):
    if stream:
        with client.responses.stream(model="gpt-5.5", input="hi") as events:
            for event in events:
                if event.type == "response.failed":
                    raise StreamFailed(event.response.error.code)
            return events.get_final_response().output_text
    return client.responses.create(model="gpt-5.5", input="hi").output_text


ASKS = {"chat": ask_chat, "chat-stream": lambda c: ask_chat(c, True), "responses": ask_responses,
        "responses-stream": lambda c: ask_responses(c, True)}
FAILURES = {  # what MiMo does to the first request: the gateway answers an error and rests the account
    "http_500": Answer(status=500),
    "http_503": Answer(status=503),
    "cut_before_first_event": Answer(cut_after=0),
    "in_band_error_first": Answer.in_band(0),
    "silent_past_first_byte": Answer(silence_before=3),
}


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
    fake.queue(Answer(status=503), Answer(status=429, headers={"retry-after": "9"}), Answer(text="from a"))
    response = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert response.status_code == 429 and response.headers["retry-after"] == "9"
    assert len(fake.requests) == 2
    # Both rest now: a after a failure (the gateway's guess), b after MiMo's rate limit. No account
    # is free, so a takes the next request anyway; b is not asked again before its Retry-After.
    again = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"] == "from a"
    assert keys_used(fake) == [key_fingerprint(TEST_KEY), key_fingerprint(KEY_B), key_fingerprint(TEST_KEY)]


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


# -- a lone account, rate limits, and keys MiMo rejects (issue 19, items 1-3) --------------------

@pytest.mark.parametrize("ask", list(ASKS))
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_lone_account_is_never_locked_out(lone, fake, failure, ask):
    url, pool = lone(timeouts=Timeouts(connect=2, first_byte=0.5, idle=0.5))
    client = sdk(url)
    fake.queue(FAILURES[failure])
    with pytest.raises((openai.APIError, StreamFailed)):  # an error status, or an error ending the stream
        ASKS[ask](client)
    # The account may rest now, which steers traffic to other accounts; there are none, so MiMo
    # is asked, and answers.
    fake.queue(Answer(text="back again"))
    assert ASKS[ask](client) == "back again"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("ask", ["chat", "responses-stream"])
def test_rate_limits_stay_rate_limits(two, fake, ask):
    url, pool = two()
    client = sdk(url)
    fake.queue(Answer.rate_limited(headers={"retry-after": "30"}), Answer.rate_limited(headers={"retry-after": "20"}))
    with pytest.raises(openai.RateLimitError) as first:  # a, then b: both rate limited by MiMo
        ASKS[ask](client)
    assert first.value.body["code"] == "rate_limit_exceeded" and first.value.response.headers["retry-after"] == "20"
    assert len(fake.requests) == 2
    # every account rests after MiMo's rate limit: the gateway answers as MiMo would, without asking
    with pytest.raises(openai.RateLimitError) as again:
        ASKS[ask](client)
    assert again.value.body["code"] == "rate_limit_exceeded"
    assert 15 < int(again.value.response.headers["retry-after"]) <= 20
    assert len(fake.requests) == 2


def test_a_lone_account_out_of_quota_is_a_429_insufficient_quota(lone, fake):
    url, pool = lone()
    client = sdk(url)
    fake.queue(Answer.insufficient_funds())  # MiMo's 402
    for _ in range(2):  # MiMo's answer, then the gateway's own while the account rests
        with pytest.raises(openai.RateLimitError) as broke:
            ask_chat(client)
        assert broke.value.body["code"] == "insufficient_quota"
    assert broke.value.response.headers["retry-after"] == "10"
    assert len(fake.requests) == 1


def test_capacity_is_503_accounts_busy(lone, fake):
    url, pool = lone()
    fake.queue(*[Answer(text="holding", stall_after=(2, 3))] * 8)
    with httpx.Client(timeout=10) as http:
        held = [http.stream("POST", url + "/v1/chat/completions", json={**CHAT, "stream": True}) for _ in range(8)]
        streams = [h.__enter__() for h in held]
        try:
            chunks = [s.iter_bytes() for s in streams]
            for c in chunks:
                next(c)
            with pytest.raises(openai.InternalServerError) as busy:
                ask_chat(sdk(url))
        finally:
            for h in held:
                h.__exit__(None, None, None)
    assert busy.value.status_code == 503 and busy.value.body["code"] == "accounts_busy"
    assert busy.value.response.headers["retry-after"] == "1" and len(fake.requests) == 8


@pytest.mark.parametrize("status", [401, 403])
def test_mimo_rejecting_the_accounts_key_is_the_gateways_fault(lone, fake, status):
    url, pool = lone()
    client = sdk(url)
    fake.queue(Answer.error_status(status))
    with pytest.raises(openai.APIStatusError) as rejected:
        ask_responses(client)
    # not AuthenticationError / PermissionDeniedError: the client's own key was never MiMo's business
    assert type(rejected.value) is openai.InternalServerError and rejected.value.status_code == 502
    assert rejected.value.body["code"] == "upstream_account_rejected"
    assert pool.disabled("a")
    with pytest.raises(openai.APIStatusError) as none_left:  # no usable account is left
        ask_chat(client)
    assert type(none_left.value) is openai.InternalServerError and none_left.value.status_code == 503
    assert none_left.value.body["code"] == "accounts_disabled"
    assert len(fake.requests) == 1
