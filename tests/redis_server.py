"""A real redis-server on 127.0.0.1 for tests (scripts/redis.sh installs it), and its fixtures.

A conftest.py that wants them imports them: `from redis_server import redis_server, ...`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

_CANDIDATES = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")


def _binary() -> str | None:
    found = shutil.which("redis-server")
    return found or next((p for p in _CANDIDATES if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server subprocess: no persistence, loopback only, stopped by `stop()`;
    `start()` after `stop()` brings it back on the same port (empty)."""

    def __init__(self, binary: str, workdir: str) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        again = bool(self.port)  # back on its own port, which may take a moment to be free
        for _ in range(50 if again else 3):  # a fresh free port may be taken between probe and bind
            if not again:
                self.port = free_port()
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.workdir, "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _pings(self.port):
                    return self
                time.sleep(0.02)
            self.stop()
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = _binary()
    if binary is None:
        pytest.skip("redis-server not found on this machine; run scripts/redis.sh to install it")
    return binary


@pytest.fixture(scope="session")
def redis_server(redis_binary, tmp_path_factory):
    """One Redis for the session; tests keep apart by key prefix (`redis_prefix`)."""
    server = RedisServer(redis_binary, str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def own_redis(redis_binary, tmp_path):
    """A Redis of the test's own, which the test may stop (and start again on its port)."""
    server = RedisServer(redis_binary, str(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
def dead_redis_url() -> str:
    """A loopback port nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"
