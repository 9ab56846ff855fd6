"""examples/litestar_app.py served by uvicorn, and the pitfall it avoids: Litestar's app-level
middleware never sees a POST /v1/responses that no Litestar handler routes."""

import httpx
from example_clients import RESPONSES, mimo_env, sdk, sdk_mimo_round, short_circuits
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from support import TEST_KEY

from examples import litestar_app
from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.testing import serve_in_thread


def test_sdk_against_the_litestar_example(fake, fake_url):
    with serve_in_thread(litestar_app.build(mimo_env(fake_url))) as url:
        client = sdk(url)
        sdk_mimo_round(client)
        assert len(fake.requests) == 2

        host = client.chat.completions.create(model="claude-3", messages=[{"role": "user", "content": "hi"}])
        assert host.choices[0].message.content == "answered by the Litestar app for 'claude-3'"
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        assert len(fake.requests) == 2


def test_both_routes_short_circuit_before_litestar_routes(fake, fake_url):
    with serve_in_thread(litestar_app.build(mimo_env(fake_url))) as url:
        short_circuits(url, fake)  # /v1/responses included, which Litestar has no handler for
        before = len(fake.requests)
        assert httpx.post(url + "/v1/responses", json={"model": "claude-3", "input": "hi"}).status_code == 404
        assert len(fake.requests) == before


class CountingMimo(MimoMiddleware):
    def __init__(self, app, *, seen, **options):
        super().__init__(app, **options)
        self.seen = seen

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await super().__call__(scope, receive, send)


def test_define_middleware_never_sees_an_unrouted_responses_request(fake, fake_url):
    seen = []
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    inside = Litestar(route_handlers=[health], middleware=[
        DefineMiddleware(CountingMimo, seen=seen, accounts=[account], api_key=None, seal_key="k")])
    with serve_in_thread(inside) as url:
        assert httpx.get(url + "/health").status_code == 200
        assert seen == [("GET", "/health")]  # the middleware is installed and runs for routed requests
        response = httpx.post(url + "/v1/responses", json=RESPONSES)
        assert response.status_code == 404
    assert seen == [("GET", "/health")] and fake.requests == []
