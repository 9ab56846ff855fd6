"""Every error row: status, OpenAI shape, Retry-After, stream endings, and no key anywhere."""

import json
import logging
import socket

import httpx
import openai
import pytest

from mimo_asgi import Account, Timeouts
from mimo_asgi.testing import Answer, error_body

from support import TEST_KEY

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}


def assert_openai_error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    if code is not None:
        assert body["error"]["code"] == code
    assert TEST_KEY not in response.text
    return body["error"]


def sse_data(text):
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert TEST_KEY not in record.getMessage()


@pytest.mark.parametrize("path,body", [("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES)])
def test_upstream_429_keeps_status_and_retry_after(gateway, fake, path, body):
    url, _ = gateway
    fake.queue(Answer(status=429, headers={"retry-after": "7"}))
    response = httpx.post(url + path, json=body)
    assert_openai_error(response, 429, "rate_limit_exceeded")
    assert response.headers["retry-after"] == "7"


def test_upstream_400_detail_from_param_reaches_client(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(status=400, error={"error": {"code": "400", "message": "Param Incorrect",
                                                   "param": "something specific is wrong", "type": ""}}))
    error = assert_openai_error(httpx.post(url + "/v1/chat/completions", json=CHAT), 400)
    assert "something specific is wrong" in error["message"] and error["type"] == "invalid_request_error"


def test_upstream_5xx_is_502(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(status=503))
    assert_openai_error(httpx.post(url + "/v1/chat/completions", json=CHAT), 502, "upstream_error")


def test_upstream_error_echoing_the_key_is_redacted(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(status=401, error={"error": {"code": "401", "message": f"Invalid key {TEST_KEY}", "param": "", "type": ""}}))
    error = assert_openai_error(httpx.post(url + "/v1/chat/completions", json=CHAT), 502, "upstream_account_rejected")
    assert "[redacted]" in error["message"]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("path,body", [("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES)])
def test_connection_refused_is_502(serve_gateway, path, body):
    account = Account("dead", TEST_KEY, base_url=f"http://127.0.0.1:{_closed_port()}/v1", upstream="mimo",
                      models={"gpt-5*": "mimo-v2.5-pro"})
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k")
    assert_openai_error(httpx.post(url + path, json=body), 502, "upstream_unreachable")


def test_first_byte_timeout_is_504(serve_gateway, fake, fake_url):
    account = Account("slow", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", timeouts=Timeouts(first_byte=0.3, idle=5))
    fake.queue(Answer(silence_before=3))
    assert_openai_error(httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}), 504, "upstream_timeout")


def test_idle_timeout_mid_stream_ends_chat_stream_with_error_chunk_and_done(serve_gateway, fake, fake_url):
    account = Account("slow", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", timeouts=Timeouts(first_byte=5, idle=0.3))
    fake.queue(Answer(text="partial answer that stalls", stall_after=(3, 3)))
    response = httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=10)
    data = sse_data(response.text)
    assert response.status_code == 200 and data[-1] == "[DONE]" and data.count("[DONE]") == 1
    assert json.loads(data[-2])["error"]["code"] == "upstream_timeout"


def test_cut_mid_stream_ends_chat_stream_with_error_chunk_and_done(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="a long answer that gets cut", chunk_size=2, cut_after=4))
    response = httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True})
    data = sse_data(response.text)
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    assert json.loads(data[-2])["error"]["code"] == "stream_truncated"
    assert all(json.loads(d)["model"] == "gpt-5.5" for d in data[:-2])


def test_in_band_error_ends_chat_stream(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(error={"error": {"code": "500", "message": "internal", "param": "", "type": ""}}, error_after=2))
    data = sse_data(httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}).text)
    assert data[-1] == "[DONE]" and "error" in json.loads(data[-2])


def test_413_and_400(gateway):
    url, _ = gateway
    assert_openai_error(httpx.post(url + "/v1/responses", content=b"{nope", headers={"content-type": "application/json"}),
                        400, "invalid_json")
    big = {"model": "gpt-5.5", "input": "x" * (16 * 1024 * 1024 + 10)}
    assert_openai_error(httpx.post(url + "/v1/responses", json=big), 413, "request_too_large")


def test_wrong_types_on_a_mimo_request_are_400(gateway, fake):
    url, _ = gateway
    error = assert_openai_error(httpx.post(url + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": "hi"}), 400)
    assert error["param"] and error["param"].startswith("messages")
    assert fake.requests == []


def test_unmapped_model_on_a_mimo_account_is_404(serve_gateway, fake_url):
    url, _ = serve_gateway(resolver=lambda r: Account("m", TEST_KEY, base_url=fake_url, upstream="mimo"), api_key=None, seal_key="k")
    assert_openai_error(httpx.post(url + "/v1/chat/completions", json={**CHAT, "model": "claude-3"}), 404, "model_not_found")


def _sdk(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0, timeout=20)


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_421_is_a_400_content_filter(gateway, fake, stream):
    """MiMo's 421 would reach HTTP stacks as "Misdirected Request", which they retry elsewhere."""
    url, _ = gateway
    client = _sdk(url)
    fake.queue(Answer.error_status(421, "The request was blocked by the content filter"))
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], stream=stream)
    assert blocked.value.status_code == 400 and blocked.value.body["code"] == "content_filter"
    assert "blocked by the content filter" in blocked.value.body["message"]
    fake.queue(Answer.error_status(421))
    with pytest.raises(openai.BadRequestError) as again:
        client.responses.create(model="gpt-5.5", input="hi", stream=stream)
    assert again.value.body["code"] == "content_filter"
    # the request's own fault, not the account's: the next request is answered at once
    assert client.responses.create(model="gpt-5.5", input="hi").output_text == "Hello from fake MiMo."


def test_content_filter_in_band_before_any_content_is_a_400(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(error=error_body(421, "sensitive"), error_after=0))
    with pytest.raises(openai.BadRequestError) as blocked:
        _sdk(url).responses.create(model="gpt-5.5", input="hi", stream=True).close()
    assert blocked.value.body["code"] == "content_filter"


def test_content_filter_in_band_mid_stream_ends_the_stream_with_content_filter(gateway, fake):
    url, _ = gateway
    blocked = Answer(text="the start of an answer", chunk_size=3, error=error_body(421, "sensitive"),
                     error_after=4)
    fake.queue(blocked)
    data = sse_data(httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}).text)
    assert data[-1] == "[DONE]" and json.loads(data[-2])["error"]["code"] == "content_filter"
    fake.queue(blocked)
    events = [json.loads(d) for d in sse_data(httpx.post(url + "/v1/responses", json={**RESPONSES, "stream": True}).text)]
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "content_filter"


def test_mimo_out_of_quota_is_a_429_insufficient_quota(gateway, fake):
    url, _ = gateway
    fake.queue(Answer.insufficient_funds())
    with pytest.raises(openai.RateLimitError) as broke:
        _sdk(url).responses.create(model="gpt-5.5", input="hi")
    assert broke.value.body["code"] == "insufficient_quota" and broke.value.body["type"] == "insufficient_quota"
    assert "Insufficient account funds" in broke.value.body["message"]
