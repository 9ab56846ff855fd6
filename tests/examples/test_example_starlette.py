"""examples/starlette_app.py served by uvicorn: MiMo short-circuits, the Starlette routes still answer."""

import httpx
from example_clients import mimo_env, sdk, sdk_mimo_round, short_circuits

from examples import starlette_app
from mimo_asgi.testing import serve_in_thread


def test_sdk_against_the_starlette_example(fake, fake_url):
    with serve_in_thread(starlette_app.build(mimo_env(fake_url))) as url:
        client = sdk(url)
        sdk_mimo_round(client)
        assert len(fake.requests) == 2

        host = client.chat.completions.create(model="claude-3", messages=[{"role": "user", "content": "hi"}])
        assert host.choices[0].message.content == "answered by the Starlette app for 'claude-3'"
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        assert len(fake.requests) == 2


def test_both_routes_short_circuit(fake, fake_url):
    with serve_in_thread(starlette_app.build(mimo_env(fake_url))) as url:
        short_circuits(url, fake)
        # Starlette's middleware runs before routing: the app has no /v1/responses route of its own,
        # so a model MiMo does not serve gets the router's 404.
        assert httpx.post(url + "/v1/responses", json={"model": "claude-3", "input": "hi"}).status_code == 404
