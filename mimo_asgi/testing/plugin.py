"""pytest plugin of mimo_asgi (registered as the `mimo_asgi` pytest11 entry point).

Fixtures:
- `fake_mimo`: a fresh PAYG `FakeMimo` (script it with `queue` / `respond_with`, read
  `requests`; `fake_mimo.api_key` authenticates).
- `fake_mimo_url`: that fake served by uvicorn on 127.0.0.1, as its base URL ending in `/v1`.
- `mimo_gateway`: a factory building a host app wrapped by `MimoMiddleware`, pointed at a fake
  and served on 127.0.0.1; returns a `Gateway`.

Servers run in their own threads, so the fixtures work from sync tests (the openai sync
client) and async ones alike. Heavy imports happen inside the fixtures: loading the plugin
costs nothing for projects that never use them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mimo_asgi.testing import FakeMimo


@dataclass(frozen=True)
class Gateway:
    """A served gateway: `url` is its base URL ending in `/v1`, `app` the middleware-wrapped
    app, `fake` the upstream it talks to, `upstream_url` that fake's base URL."""

    url: str
    app: Any
    fake: FakeMimo
    upstream_url: str


@pytest.fixture
def fake_mimo() -> FakeMimo:
    """A fresh fake MiMo pay-as-you-go host (accepts `sk-` keys; `fake_mimo.api_key` is one)."""
    from mimo_asgi.testing import FakeMimo

    return FakeMimo()


@pytest.fixture
def fake_mimo_url(fake_mimo: FakeMimo) -> Iterator[str]:
    """`fake_mimo` served on 127.0.0.1 by uvicorn in a thread: `http://127.0.0.1:PORT/v1`."""
    from mimo_asgi.testing import serve_in_thread

    with serve_in_thread(fake_mimo) as url:
        yield url + "/v1"


@pytest.fixture
def mimo_gateway(request: pytest.FixtureRequest) -> Iterator[Callable[..., Gateway]]:
    """Factory: `mimo_gateway(app=None, *, fake=None, **options) -> Gateway`.

    Wraps `app` (default: a host app answering 404 to everything) in
    `MimoMiddleware(app, **options)` and serves it on 127.0.0.1. The upstream is `fake`
    (default: the `fake_mimo` fixture), served too (upstream first, stopped last). Unless given in `options`, `base_url`
    points at that fake, and `api_key` is `fake.api_key` when neither `accounts` nor
    `resolver` is given. Everything stops at the end of the test.
    """
    from mimo_asgi.testing import serve_in_thread

    with contextlib.ExitStack() as stack:

        def build(app: Any = None, *, fake: FakeMimo | None = None, **options: Any) -> Gateway:
            import mimo_asgi  # looked up at call time: the plugin loads without the middleware
            if fake is None:
                fake = request.getfixturevalue("fake_mimo")
            upstream = stack.enter_context(serve_in_thread(fake)) + "/v1"
            options.setdefault("base_url", upstream)
            if not {"accounts", "resolver", "api_key"} & options.keys():
                options["api_key"] = fake.api_key
            wrapped = mimo_asgi.MimoMiddleware(app if app is not None else not_found_app, **options)
            url = stack.enter_context(serve_in_thread(wrapped)) + "/v1"
            return Gateway(url=url, app=wrapped, fake=fake, upstream_url=upstream)

        yield build


async def not_found_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The smallest host app: 404 JSON to every HTTP request, lifespan acknowledged."""
    if scope["type"] == "lifespan":
        from mimo_asgi.testing._reply import lifespan

        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = b'{"detail":"Not Found"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
