"""examples/layered_gateway.py: non-MiMo requests reach a second (fake OpenAI) upstream byte for byte;
MiMo-mapped models go to the fake MiMo and never reach it."""

import json
import socket

import httpx
import pytest
from example_clients import mimo_env, sdk, sdk_mimo_round, short_circuits
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from examples import layered_gateway
from mimo_asgi.testing import serve_in_thread

UPSTREAM_TEXT = "answered by the fake OpenAI upstream"


class FakeOpenAI:
    """Records each request (method, path, headers, raw body) and answers like OpenAI would."""

    def __init__(self):
        self.requests = []
        self.app = Starlette(routes=[Route(p, self.answer, methods=["POST"])
                                     for p in ("/v1/responses", "/v1/chat/completions")])

    async def answer(self, request: Request):
        raw = await request.body()
        self.requests.append((request.method, request.url.path, dict(request.headers), raw))
        body = json.loads(raw)
        if body["model"] == "rate-limited":
            return JSONResponse({"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}},
                                status_code=429)
        if body.get("stream"):
            chunks = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                       "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                      for word in ("answered ", "upstream")]

            async def events():
                for chunk in chunks:
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": UPSTREAM_TEXT}}]})


@pytest.fixture
def layered(fake_url):
    """(gateway url, FakeOpenAI) with the example between them."""
    upstream = FakeOpenAI()
    with serve_in_thread(upstream.app) as upstream_url:
        env = mimo_env(fake_url, UPSTREAM_BASE_URL=upstream_url + "/v1")
        with serve_in_thread(layered_gateway.build(env)) as url:
            yield url, upstream


def test_sdk_against_the_layered_example(layered, fake):
    url, upstream = layered
    client = sdk(url)
    sdk_mimo_round(client)
    assert len(fake.requests) == 2

    host = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert host.choices[0].message.content == UPSTREAM_TEXT
    assert [path for _, path, _, _ in upstream.requests] == ["/v1/chat/completions"]
    assert httpx.get(url + "/health").json()["status"] == "ok"
    assert len(fake.requests) == 2


def test_non_mimo_requests_reach_the_upstream_byte_for_byte(layered, fake):
    url, upstream = layered
    # Odd spacing, key order and escapes: any re-encoding would change these bytes.
    raw = b'{"messages": [{"content": "h\\u00e9llo",   "role":"user"}],\n "model":"gpt-4o", "temperature": 1.50}'
    response = httpx.post(url + "/v1/chat/completions?trace=1", content=raw,
                          headers={"content-type": "application/json", "authorization": "Bearer sk-openai-client"})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == UPSTREAM_TEXT
    method, path, headers, body = upstream.requests[-1]
    assert (method, path, body) == ("POST", "/v1/chat/completions", raw)
    assert headers["authorization"] == "Bearer sk-openai-client"  # the proxy's clients bring their own keys

    stream = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": [], "stream": True})
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.content.endswith(b"data: [DONE]\n\n") and b'"content": "answered "' in stream.content

    limited = httpx.post(url + "/v1/responses", json={"model": "rate-limited", "input": "hi"})
    assert limited.status_code == 429 and limited.headers["content-type"] == "application/json"
    assert limited.json()["error"]["code"] == "rate_limit"
    assert upstream.requests[-1][1] == "/v1/responses"
    assert fake.requests == []


def test_mimo_models_never_reach_the_upstream(layered, fake):
    url, upstream = layered
    short_circuits(url, fake)
    assert upstream.requests == []


def test_unreachable_upstream_is_a_502(fake_url):
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = mimo_env(fake_url, UPSTREAM_BASE_URL=f"http://127.0.0.1:{port}/v1")
    with serve_in_thread(layered_gateway.build(env)) as url:
        response = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unreachable"
