"""WebSocket wiring: frame clients on gateways served by uvicorn, and gateways in front of a
host app of the test's own."""

from __future__ import annotations

import contextlib

import pytest
from websocket.wsclient import Frames, ws_url
from websockets.sync.client import connect

from mimo_asgi import MimoMiddleware
from mimo_asgi.testing import serve_in_thread


@pytest.fixture
def open_ws():
    """open_ws(http_url, path=..., headers=...) -> Frames on a new socket; closed after the test."""
    with contextlib.ExitStack() as stack:

        def open_(http_url: str, path: str = "/v1/responses", headers: dict[str, str] | None = None) -> Frames:
            ws = stack.enter_context(connect(ws_url(http_url, path), additional_headers=headers, open_timeout=10,
                                             max_size=None))
            return Frames(ws)

        yield open_


@pytest.fixture
def serve_with_host():
    """serve_with_host(host_app, **middleware_options) -> (base_url, middleware)."""
    with contextlib.ExitStack() as stack:

        def start(host, **options):
            mw = MimoMiddleware(host, **options)
            return stack.enter_context(serve_in_thread(mw)), mw

        yield start
