"""examples/gateway.py (FastAPI) served by uvicorn: configured from the environment, and in demo mode."""

import logging

import httpx
from example_clients import mimo_env, sdk, sdk_mimo_round, short_circuits

from examples import gateway
from mimo_asgi.testing import serve_in_thread


def test_sdk_against_the_gateway_example(fake, fake_url):
    with serve_in_thread(gateway.build(mimo_env(fake_url))) as url:
        client = sdk(url)
        sdk_mimo_round(client)
        assert len(fake.requests) == 2

        host = client.chat.completions.create(model="claude-3", messages=[{"role": "user", "content": "hi"}])
        assert host.choices[0].message.content == "answered by the host app for 'claude-3', not by MiMo"
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        short_circuits(url, fake)
        assert len(fake.requests) == 6


def test_demo_mode_answers_from_the_in_process_fake_and_says_so(fake, caplog):
    with caplog.at_level(logging.INFO):
        app = gateway.build({})
        with serve_in_thread(app) as url:
            client = sdk(url)
            sdk_mimo_round(client)  # the demo fake's default answer
            host = client.chat.completions.create(model="claude-3", messages=[{"role": "user", "content": "hi"}])
            assert host.choices[0].message.content == "answered by the host app for 'claude-3', not by MiMo"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "demo mode" in warnings[0]
    assert fake.requests == []  # nothing left the process
