"""The MiMo client on its own: what goes out with each request."""

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
