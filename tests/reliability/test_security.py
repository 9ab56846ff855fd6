"""Where requests go, what reaches MiMo, and what never leaves the gateway."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from urllib.parse import urlsplit

import httpx
import pytest
from reliability.outcomes import PATHS, check_outcome, request_body
from support import TEST_KEY, wait_for

from mimo_asgi import Account, AccountPool, RouteRequest, Secret
from mimo_asgi.testing import Answer, FakeMimo, ToolCall, key_fingerprint, serve_in_thread
from mimo_asgi.translate._items import PLACEHOLDER_REASONING

CLIENT_KEY = "sk-client-9f8e7d6c5b4a3210"
MODES = [("chat", False), ("chat", True), ("responses", False), ("responses", True)]


def _account(base_url: str, key: str = TEST_KEY) -> Account:
    return Account("main", key, base_url=base_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})


# -- where the request goes ---------------------------------------------------------------------


@pytest.fixture
def decoy():
    """A second MiMo that no request may ever reach."""
    other = FakeMimo()
    with serve_in_thread(other) as url:
        yield other, url


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_the_upstream_comes_only_from_configuration(serve_gateway, fake, fake_url, decoy, route):
    decoy_fake, decoy_url = decoy
    decoy_host = urlsplit(decoy_url).netloc
    url, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="k",
                           forward_headers=["x-forwarded-host", "forwarded", "x-request-id"])
    steering = {key: decoy_url + "/v1" for key in ("base_url", "api_base", "baseURL", "url", "endpoint", "upstream")}
    headers = {"host": decoy_host, "x-forwarded-host": decoy_host, "x-forwarded-proto": "http",
               "x-forwarded-port": decoy_host.rsplit(":", 1)[1], "forwarded": f"host={decoy_host};proto=http",
               "x-original-url": decoy_url + "/v1/chat/completions", "x-rewrite-url": "/v1/chat/completions",
               "x-request-id": "r1"}
    response = httpx.post(url + PATHS[route], json={**request_body(route, False), **steering}, headers=headers)
    assert response.status_code == 200, response.text
    assert decoy_fake.requests == []
    sent = fake.requests[-1]
    assert sent.headers["host"] == urlsplit(fake_url).netloc
    assert sent.headers["x-request-id"] == "r1"  # forwarding works, and still decides nothing
    assert not set(steering) & set(sent.body)
    assert decoy_url.encode() not in sent.raw


@pytest.mark.parametrize("route,stream", MODES)
def test_the_clients_credentials_never_reach_mimo(serve_gateway, fake, fake_url, route, stream):
    # even an operator listing them in forward_headers cannot send them on
    url, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="k",
                           forward_headers=["Authorization", "api-key", "x-request-id"])
    client_headers = {"authorization": f"Bearer {CLIENT_KEY}", "api-key": CLIENT_KEY, "x-api-key": CLIENT_KEY,
                      "cookie": f"session={CLIENT_KEY}", "proxy-authorization": f"Basic {CLIENT_KEY}",
                      "x-request-id": "r2"}
    response = httpx.post(url + PATHS[route], json=request_body(route, stream), headers=client_headers)
    assert response.status_code == 200
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {key_fingerprint(TEST_KEY)}"
    assert sent.key_fingerprint == key_fingerprint(TEST_KEY)
    # (trace context, when a tracer provider is set in this process, is no credential)
    assert set(sent.headers) <= {"host", "accept", "accept-encoding", "connection", "user-agent", "content-type",
                                 "content-length", "authorization", "x-request-id", "traceparent", "tracestate"}, \
        sent.headers
    assert CLIENT_KEY.encode() not in sent.raw and CLIENT_KEY not in json.dumps(sent.headers)


# -- header injection ---------------------------------------------------------------------------

NASTY = ["gpt-5.5\r\nx-injected: 1", "gpt-5.5\n", "gpt-5.5\x00", "gpt-5.5\x7f\x1b[31m", "gpt-5.5\u2028x-injected: 1",
         "mimo-v2.5-pro\r\nx-injected: 1", "mimo-v2.5-pro\nmimo_asgi route=forged"]


@pytest.mark.parametrize("route", ["chat", "responses"])
@pytest.mark.parametrize("model", NASTY)
def test_control_characters_in_model_names_cannot_inject_headers(serve_gateway, fake, fake_url, route, model):
    url, _ = serve_gateway(accounts=[_account(fake_url)], api_key=TEST_KEY, base_url=fake_url, seal_key="k")
    baseline = set(httpx.post(url + PATHS[route], json=request_body(route, False)).headers)
    response = httpx.post(url + PATHS[route], json={**request_body(route, False), "model": model})
    names = set(response.headers)
    assert "x-injected" not in names and names <= baseline | {"retry-after"}, names
    assert not any("\n" in v or "\r" in v or "injected" in v for v in response.headers.values())
    assert response.status_code in (200, 400, 404), response.text
    body = response.json()
    if "error" not in body and body.get("answered_by") != "host":
        assert body["model"] == model  # echoed as JSON data, nothing else
    for sent in fake.requests:
        assert "x-injected" not in sent.headers


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_control_characters_in_model_names_never_reach_a_log_line(serve_gateway, fake, fake_url, route, caplog):
    caplog.set_level(logging.INFO, logger="mimo_asgi")
    url, _ = serve_gateway(accounts=[], api_key=TEST_KEY, base_url=fake_url, seal_key="k")
    model = "mimo-v2.5-pro\nmimo_asgi route=forged\r"
    fake.respond_with(lambda body: Answer(text="fine"))
    forged_field = "x\nmimo_asgi route=forged\r"  # unknown fields are named in a warning
    httpx.post(url + PATHS[route], json={**request_body(route, False), "model": model, forged_field: 1})
    # the request's summary line comes after the response was sent
    assert wait_for(lambda: any("outcome=" in r.getMessage() for r in caplog.records if r.name == "mimo_asgi"), 2)
    for record in caplog.records:
        if record.name.startswith("mimo_asgi"):
            message = record.getMessage()
            assert "\n" not in message and "\r" not in message, message


def test_ids_and_names_with_control_characters_stay_inside_json(serve_gateway, fake, fake_url):
    url, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="k")
    nasty = "call\r\nx-injected: 1"
    body = {"model": "gpt-5.5", "input": [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": nasty, "name": "run\r\nx-injected: 1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": nasty, "output": "ok"}],
        "tools": [{"type": "function", "name": "run\r\nx-injected: 1"}], "metadata": {"k\r\nx-injected": "v\r\n"}}
    response = httpx.post(url + "/v1/responses", json=body)
    assert check_outcome("responses", False, response.status_code, response.content) == "completed"
    assert "x-injected" not in response.headers
    sent = fake.requests[-1]
    assert "x-injected" not in sent.headers
    assert all("\n" not in t["function"]["name"] for t in sent.body["tools"])


# -- sealed reasoning ---------------------------------------------------------------------------

REASONING = "SECRET REASONING: the user is in Oslo."


def _first_turn(url: str, fake) -> tuple[list[dict], str]:
    fake.queue(Answer(reasoning=REASONING, tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_w1")]))
    first = httpx.post(url + "/v1/responses", json={
        "model": "gpt-5.5", "input": "Weather?", "include": ["reasoning.encrypted_content"], "store": False,
        "tools": [{"type": "function", "name": "get_weather"}]}).json()
    reasoning = first["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("mimo1:")
    return first["output"], reasoning["encrypted_content"]


def _flip(blob: str, at: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(blob[len("mimo1:"):]))
    raw[at] ^= 0x01
    return "mimo1:" + base64.urlsafe_b64encode(bytes(raw)).decode()


TAMPER = {
    "nonce_byte": lambda blob: _flip(blob, 3),
    "ciphertext_byte": lambda blob: _flip(blob, 14),
    "tag_byte": lambda blob: _flip(blob, -1),
    "truncated": lambda blob: blob[:-8],
    "prefix_only": lambda blob: "mimo1:",
    "openai_blob": lambda blob: "gAAAAABo" + blob[6:],
    "plain_text": lambda blob: REASONING,
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_tampered_reasoning_never_reaches_mimo(serve_gateway, fake, fake_url, how):
    url, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="k")
    output, blob = _first_turn(url, fake)
    output[0]["encrypted_content"] = TAMPER[how](blob)
    fake.queue(Answer(text="Cold."))
    history = [{"role": "user", "content": "Weather?"}, *output,
               {"type": "function_call_output", "call_id": "call_w1", "output": "-5C"}]
    response = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": history,
                                                       "tools": [{"type": "function", "name": "get_weather"}]})
    assert response.status_code == 200, response.text
    sent = fake.requests[-1]
    assistant = next(m for m in sent.body["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == PLACEHOLDER_REASONING
    assert b"SECRET REASONING" not in sent.raw


def test_reasoning_sealed_by_another_gateway_never_reaches_mimo(serve_gateway, fake, fake_url):
    url_a, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="key-a")
    url_b, _ = serve_gateway(accounts=[_account(fake_url)], api_key=None, seal_key="key-b")
    output, _ = _first_turn(url_a, fake)
    history = [{"role": "user", "content": "Weather?"}, *output,
               {"type": "function_call_output", "call_id": "call_w1", "output": "-5C"}]
    for url, restored in ((url_b, False), (url_a, True)):
        fake.queue(Answer(text="Cold."))
        assert httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": history}).status_code == 200
        assert (b"SECRET REASONING" in fake.requests[-1].raw) is restored


# -- what leaves the gateway --------------------------------------------------------------------

ODD_KEY = "sk-live.Q7/x+Zr=9fK2"  # a key the key-shaped pattern does not catch: only redaction by value does
ECHOES = {  # name -> (MiMo's answer echoing the key, the part of its message the client must still see)
    "http_400": (lambda key: Answer.error_status(400, f"bad key {key}"), "bad key"),
    "http_401": (lambda key: Answer(status=401, error={"error": {"message": f"Invalid API Key {key}", "param": key,
                                                                 "code": "401", "type": "invalid_key"}}),
                 "Invalid API Key"),
    "http_429": (lambda key: Answer.error_status(429, f"slow down, {key}"), "slow down"),
    "http_503": (lambda key: Answer.error_status(503, f"overloaded for {key}"), "overloaded for"),
    "in_band_first": (lambda key: Answer.in_band(0, message=f"failed for {key}"), "failed for"),
    "in_band_mid": (lambda key: Answer.in_band(3, message=f"failed for {key}"), "failed for"),
}


@pytest.mark.parametrize("key", [TEST_KEY, ODD_KEY], ids=["key_shaped", "odd_key"])
@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("echo", list(ECHOES))
def test_upstream_errors_pass_on_without_the_key(serve_gateway, fake, fake_url, echo, route, stream, key):
    url, _ = serve_gateway(accounts=[_account(fake_url, key)], api_key=None, seal_key="k")
    answer, fragment = ECHOES[echo]
    fake.respond_with(lambda body: answer(key))
    response = httpx.post(url + PATHS[route], json=request_body(route, stream),
                          headers={"authorization": f"Bearer {CLIENT_KEY}"})
    outcome = check_outcome(route, stream, response.status_code, response.content,
                            response.headers.get("content-type", ""))
    assert outcome == "failed" or outcome.startswith("http "), outcome
    assert key not in response.text and CLIENT_KEY not in response.text
    assert fragment in response.text  # the upstream's message itself is passed on


# -- reprs --------------------------------------------------------------------------------------


def test_no_repr_or_str_shows_a_key():
    secret = Secret(TEST_KEY)
    account = Account("a", TEST_KEY, base_url="https://api.xiaomimimo.com/v1", models={"gpt-5*": "mimo-v2.5-pro"})
    pool = AccountPool([account])
    lease = pool(RouteRequest("chat", "gpt-5.5", {}, {}, {}))
    shown = [repr(secret), str(secret), f"{secret}", "%s %r" % (secret, secret), repr(account), str(account),
             f"{account!s} {account!r}", repr(dataclasses.asdict(account)), repr(vars(account)), repr(lease),
             repr([account, secret, lease]), repr({"a": account})]
    for text in shown:
        assert TEST_KEY not in text, text
    assert account.key == TEST_KEY and secret.get() == TEST_KEY  # still usable


def test_a_route_request_repr_does_not_show_the_clients_credentials():
    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {CLIENT_KEY}".encode())]}
    request = RouteRequest("chat", "gpt-5.5", {"model": "gpt-5.5"},
                           {"authorization": f"Bearer {CLIENT_KEY}", "api-key": CLIENT_KEY}, scope)
    assert CLIENT_KEY not in repr(request) and CLIENT_KEY not in str(request)
