"""The MiMo client on its own: what goes out with each request."""

import json

import httpx
import pytest

from mimo_asgi import Account
from mimo_asgi._upstream import USER_AGENT, UpstreamClient

pytestmark = pytest.mark.anyio


async def test_no_cookie_of_one_answer_goes_out_with_a_later_request():
    seen = []

    def handler(request):
        seen.append(request.headers)
        return httpx.Response(200, headers={"set-cookie": "lb=node-1; Path=/"}, json={"choices": []})

    client = UpstreamClient(transport=httpx.MockTransport(handler))
    body = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
    try:
        for name in ("a", "b", "a"):
            account = Account(name, f"tp-key-{name}", base_url="http://mimo.test/v1", upstream="mimo")
            async with client.post(account, body) as response:
                assert response.status_code == 200 and response.request.url == "http://mimo.test/v1/chat/completions"
                await response.aread()
    finally:
        await client.aclose()
    assert [h.get("cookie") for h in seen] == [None, None, None]
    assert [h["authorization"] for h in seen] == ["Bearer tp-key-a", "Bearer tp-key-b", "Bearer tp-key-a"]
    assert all(h["user-agent"] == USER_AGENT and h["content-type"] == "application/json" for h in seen)


async def test_the_body_goes_out_whole_with_its_length_and_is_not_kept_with_the_response():
    """The JSON is sent with a Content-Length (never chunked: MiMo sees an ordinary POST) and is
    given to the connection as a one-part stream, so the request kept beside the streaming
    response no longer holds it."""
    got = []

    class Wire(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            got.append((request.headers.get("content-length"), request.headers.get("transfer-encoding"),
                        b"".join([part async for part in request.stream])))
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"data: [DONE]\n\n")

    client = UpstreamClient(transport=Wire())
    body = {"model": "mimo-v2.5-pro", "stream": True, "messages": [{"role": "user", "content": "hé " * 500}]}
    account = Account("a", "tp-key-a", base_url="http://mimo.test/v1", upstream="mimo")
    try:
        async with client.post(account, body) as response:
            with pytest.raises(httpx.StreamConsumed):  # sent: nothing left to hold
                [part async for part in response.request.stream]
            await response.aread()
        async with client.post(account, body, encoded=b'{"given":1}') as response:
            await response.aread()
    finally:
        await client.aclose()
    (length, chunked, sent), (length2, _, sent2) = got
    assert sent == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert (length, chunked) == (str(len(sent)), None)
    assert (length2, sent2) == ("11", b'{"given":1}')
