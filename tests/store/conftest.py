"""A real redis-server on 127.0.0.1 for the store tests (see tests/redis_server.py), and a clock."""

from __future__ import annotations

import pytest
from redis_server import dead_redis_url, own_redis, redis_binary, redis_prefix, redis_server, redis_url

__all__ = ["dead_redis_url", "own_redis", "redis_binary", "redis_prefix", "redis_server", "redis_url"]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
