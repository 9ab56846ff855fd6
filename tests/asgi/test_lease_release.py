"""A lease whose `release()` returns an awaitable (a shared pool telling its store) is awaited:
the slot is free when the request ends, even when the request is cancelled mid-stream (a
server shutting down); and a resolver with `aclose()` is closed with the middleware."""

from __future__ import annotations

import anyio
import httpx
import pytest
from support import TEST_KEY, host_app

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.testing import Answer

pytestmark = pytest.mark.anyio


class SlowStore:
    """A lease pool whose releases take a while to reach their store."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.held = 0
        self.closed = False

    def __call__(self, request):
        if not self.account.upstream_model(request.model):
            return None
        self.held += 1
        store = self

        class Lease:
            account = store.account

            def release(self):
                async def tell_the_store():
                    await anyio.sleep(0.05)
                    store.held -= 1

                return tell_the_store()

        return Lease()

    async def aclose(self) -> None:
        self.closed = True


def _middleware(fake_url: str) -> tuple[MimoMiddleware, SlowStore]:
    store = SlowStore(Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"}))
    return MimoMiddleware(host_app(), resolver=store, api_key=None, seal_key="k"), store


async def test_an_awaitable_release_is_done_when_the_request_ends(fake, fake_url):
    mw, store = _middleware(fake_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://gw") as client:
        for path, body in (("/v1/chat/completions", {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}),
                           ("/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True})):
            response = await client.post(path, json=body)
            assert response.status_code == 200
            assert store.held == 0, path
    await mw.aclose()


async def test_a_cancelled_request_still_frees_its_slot(fake, fake_url):
    mw, store = _middleware(fake_url)
    fake.respond_with(lambda body: Answer(text="a slow answer " * 8, reasoning="", chunk_size=4, stall_after=(4, 30)))
    body = b'{"model": "gpt-5", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "headers": [(b"content-type", b"application/json")], "http_version": "1.1",
             "scheme": "http", "server": ("gw", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "asgi": {"version": "3.0"}}
    content = anyio.Event()
    messages = [{"type": "http.request", "body": body}]

    async def receive():
        if messages:
            return messages.pop()
        await anyio.sleep_forever()

    async def send(message):
        if b"a sl" in message.get("body", b""):
            content.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(mw, scope, receive, send)
        with anyio.fail_after(5):
            await content.wait()
        assert store.held == 1
        tg.cancel_scope.cancel()  # what a server does to its request tasks when it stops
    assert store.held == 0
    await mw.aclose()


async def test_a_resolver_with_aclose_is_closed_with_the_middleware(fake_url):
    mw, store = _middleware(fake_url)
    await mw.aclose()
    assert store.closed
    pool_mw = MimoMiddleware(host_app(), accounts=[store.account], api_key=None, seal_key="k")
    await pool_mw.aclose()  # the built-in pool has nothing to close
