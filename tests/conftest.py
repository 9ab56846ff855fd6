"""Shared wiring: the fake MiMo and gateways served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib

import pytest
from support import TEST_KEY, host_app

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.testing import FakeMimo, serve_in_thread


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def fake_server():
    """One fake MiMo (PAYG host, accepting TEST_KEY) served for the whole session; reset per test."""
    fake = FakeMimo()
    with serve_in_thread(fake) as url:
        yield fake, url


@pytest.fixture
def fake(fake_server):
    fake_, _ = fake_server
    fake_.reset()
    yield fake_
    fake_.reset()


@pytest.fixture
def fake_url(fake_server):
    return fake_server[1] + "/v1"


@pytest.fixture
def serve_gateway():
    """serve_gateway(**middleware_options) -> (base_url, middleware); stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**options):
            mw = MimoMiddleware(host_app(), **options)
            url = stack.enter_context(serve_in_thread(mw))
            return url, mw

        yield start


@pytest.fixture
def gateway(serve_gateway, fake_url):
    """A gateway with one MiMo account mapping gpt-5* to mimo-v2.5-pro; returns (base_url, middleware)."""
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    return serve_gateway(accounts=[account], api_key=None, seal_key="test-seal-key")
