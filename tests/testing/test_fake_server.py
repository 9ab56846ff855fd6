"""`serve` and `serve_in_thread`: uvicorn on a free 127.0.0.1 port, stopped on exit."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from mimo_asgi.testing import Answer, FakeMimo, serve, serve_in_thread

BODY = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def uvicorn_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("uvicorn "))


def test_serve_in_thread_binds_loopback_and_stops() -> None:
    fake = FakeMimo()
    before = uvicorn_threads()
    with serve_in_thread(fake) as url:
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
        assert uvicorn_threads() == before + 1
        response = httpx.get(url + "/v1/models", headers={"api-key": fake.api_key})
        assert response.status_code == 200
    assert uvicorn_threads() == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/models", headers={"api-key": fake.api_key})


def test_two_servers_get_different_ports() -> None:
    with serve_in_thread(FakeMimo()) as first, serve_in_thread(FakeMimo()) as second:
        assert first != second


def test_stopping_does_not_wait_for_a_stalled_stream() -> None:
    fake = FakeMimo()
    fake.queue(Answer(stall_after=(1, 60)))
    with contextlib.ExitStack() as server, httpx.Client(headers={"api-key": fake.api_key}) as client:
        url = server.enter_context(serve_in_thread(fake))
        with client.stream("POST", url + "/v1/chat/completions", json={**BODY, "stream": True}) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            started = time.monotonic()
            server.close()  # the client is still waiting inside the 60 s stall
            assert time.monotonic() - started < 5
            with pytest.raises(httpx.RemoteProtocolError):
                list(lines)


def test_startup_failure_is_raised() -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no"})

    with pytest.raises(RuntimeError, match="stopped before it started"):
        with serve_in_thread(broken, lifespan="on"):
            pass


@pytest.mark.anyio
async def test_serve_shares_the_running_loop() -> None:
    fake = FakeMimo()
    release = anyio.Event()

    async def held(body: dict[str, Any]) -> Answer:
        await release.wait()  # an event of the test's own loop
        return Answer("released")

    fake.respond_with(held)
    async with serve(fake) as url:
        assert urlsplit(url).hostname == "127.0.0.1"
        async with httpx.AsyncClient(base_url=url, headers={"api-key": fake.api_key}) as client:
            async with anyio.create_task_group() as group:
                results: list[httpx.Response] = []

                async def call() -> None:
                    results.append(await client.post("/v1/chat/completions", json=BODY))

                group.start_soon(call)
                while fake.in_flight == 0:
                    await anyio.sleep(0.01)
                assert results == []
                release.set()
        assert results[0].json()["choices"][0]["message"]["content"] == "released"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(url + "/v1/models")
