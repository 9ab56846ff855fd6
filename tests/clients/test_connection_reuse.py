"""The upstream connection is reused across MiMo requests (a closed-unread response would drop it)."""

import httpx
import pytest

from mimo_asgi.testing import Answer


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], "stream": True}),
    ("/v1/responses", {"model": "gpt-5.5", "input": "hi", "stream": True}),
    ("/v1/responses", {"model": "gpt-5.5", "input": "hi"}),
])
def test_sequential_requests_share_one_upstream_connection(gateway, fake, path, body):
    url, mw = gateway
    opened = []
    original = mw.upstream.client._transport._pool.create_connection

    def counting(*args, **kwargs):
        opened.append(1)
        return original(*args, **kwargs)

    mw.upstream.client._transport._pool.create_connection = counting
    for _ in range(5):
        fake.queue(Answer(text="again"))
        assert httpx.post(url + path, json=body).status_code == 200
    assert len(opened) <= 1
