"""Run any ASGI app under uvicorn on a free loopback port, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

STARTUP_TIMEOUT = 10.0
# Streams a test left stalled must not hold the shutdown: they are cancelled after this many
# seconds (whole seconds: uvicorn's setting is an int).
GRACEFUL_SHUTDOWN = 1
Lifespan = Literal["auto", "on", "off"]  # uvicorn's lifespan modes


@contextlib.asynccontextmanager
async def serve(app: Any, *, host: str = "127.0.0.1", lifespan: Lifespan = "auto",
                ws: str = "auto") -> AsyncIterator[str]:
    """Serve `app` in a task of the running asyncio loop; yields `http://HOST:PORT`.

    The app shares the test's event loop (so it may await the test's events). The server is
    stopped on exit; responses still running after `GRACEFUL_SHUTDOWN` seconds are cancelled.
    """
    server, sock, url = _prepare(app, host, lifespan, ws)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            await asyncio.sleep(0.005)
        yield url
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()  # uvicorn closes it on shutdown, but not when startup failed


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", lifespan: Lifespan = "auto",
                    ws: str = "auto") -> Iterator[str]:
    """Serve `app` from a daemon thread with its own event loop; yields `http://HOST:PORT`.

    For sync tests (the openai sync client, plain httpx.Client) and fixtures. Stopped on exit.
    """
    server, sock, url = _prepare(app, host, lifespan, ws)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed lifespan startup included
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn {url}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"uvicorn stopped before it started: {failure!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.005)
        yield url
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()  # uvicorn closes it on shutdown, but not when startup failed


def _prepare(app: Any, host: str, lifespan: Lifespan, ws: str) -> tuple[Any, socket.socket, str]:
    import uvicorn  # a test dependency: imported only when a server is wanted

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # leave Ctrl-C to the test runner

    config = uvicorn.Config(
        app,
        interface="asgi3",
        http="h11",
        ws=ws,  # "auto": uvicorn's WebSocket implementation when one is installed
        loop="asyncio",
        lifespan=lifespan,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then (else ~40 ms stalls)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    url = f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"
    return Server(config), sock, url
