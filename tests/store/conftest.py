"""A real redis-server on 127.0.0.1 for the store tests (see tests/redis_server.py), and a clock."""

from __future__ import annotations

import pytest
from pool_support import FakeClock
from redis_server import dead_redis_url, own_redis, redis_binary, redis_prefix, redis_server, redis_url

__all__ = ["dead_redis_url", "own_redis", "redis_binary", "redis_prefix", "redis_server", "redis_url"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
