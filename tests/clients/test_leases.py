"""A lease is released exactly once on every path."""

import httpx
import pytest

from mimo_asgi import Account, AccountPool
from mimo_asgi.testing import Answer

from support import TEST_KEY, wait_for


class CountingPool(AccountPool):
    """Counts leases handed out and releases seen, to catch a double release as well as a leak."""

    def __init__(self, accounts):
        super().__init__(accounts)
        self.leased = 0
        self.released = 0

    def __call__(self, request):
        lease = super().__call__(request)
        if lease is None:
            return None
        self.leased += 1
        pool, inner = self, lease

        class Once:
            account = inner.account

            def release(self):
                pool.released += 1
                inner.release()

        return Once()


@pytest.fixture
def pooled(serve_gateway, fake_url):
    def start(accounts=None, **options):
        accounts = accounts or [Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})]
        pool = CountingPool(accounts)
        url, mw = serve_gateway(resolver=pool, api_key=None, seal_key="k", **options)
        return url, pool

    return start


def settled(pool):
    assert wait_for(lambda: pool.in_flight() == 0), f"leases still held: {pool.in_flight()}"
    assert pool.released == pool.leased


CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path,body", [("/v1/chat/completions", CHAT), ("/v1/responses", {"model": "gpt-5.5", "input": "hi"})])
def test_success(pooled, fake, path, body, stream):
    url, pool = pooled()
    fake.queue(Answer(text="fine"))
    assert httpx.post(url + path, json={**body, "stream": stream}).status_code == 200
    settled(pool)
    assert pool.leased == 1


def test_upstream_error(pooled, fake):
    url, pool = pooled()
    fake.queue(Answer(status=500))
    assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 502
    settled(pool)


def test_translation_error(pooled, fake):
    url, pool = pooled()
    assert httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "x", "background": True}).status_code == 400
    assert httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "x", "previous_response_id": "resp_1"}).status_code == 404
    assert httpx.post(url + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": 3}).status_code == 400
    settled(pool)
    assert pool.leased == 3 and fake.requests == []


def test_pass_through_decision(pooled, fake):
    url, pool = pooled()
    response = httpx.post(url + "/v1/chat/completions", json={**CHAT, "model": "claude-3"})
    assert response.json()["answered_by"] == "host"
    settled(pool)


@pytest.mark.parametrize("path,body", [("/v1/chat/completions", CHAT), ("/v1/responses", {"model": "gpt-5.5", "input": "hi"})])
def test_client_disconnect_mid_stream(pooled, fake, path, body):
    url, pool = pooled()
    fake.queue(Answer(text="a slow answer " * 5, stall_after=(3, 30)))
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", url + path, json={**body, "stream": True}) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the stream has started; now leave
    settled(pool)


def test_client_disconnect_before_first_byte(pooled, fake):
    url, pool = pooled()
    fake.queue(Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=0.5)
    settled(pool)


def test_unexpected_exception(serve_gateway, fake_url):
    class Broken(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            raise RuntimeError("boom")

    pool = CountingPool([Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})])
    url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k", transport=Broken())
    assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 500
    settled(pool)


def test_async_resolver_lease_released(serve_gateway, fake, fake_url):
    released = []

    class L:
        account = Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})

        def release(self):
            released.append(1)

    async def resolver(request):
        return L()

    url, _ = serve_gateway(resolver=resolver, api_key=None, seal_key="k")
    fake.queue(Answer(text="ok"))
    assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
    assert wait_for(lambda: released == [1])
