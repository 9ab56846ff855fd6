"""A real redis-server on 127.0.0.1 for the pool tests (see tests/redis_server.py)."""

from redis_server import dead_redis_url, own_redis, redis_binary, redis_prefix, redis_server, redis_url

__all__ = ["dead_redis_url", "own_redis", "redis_binary", "redis_prefix", "redis_server", "redis_url"]
