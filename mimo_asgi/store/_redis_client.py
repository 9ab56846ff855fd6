"""Creating a redis-py asyncio client, and mapping its failures to `StoreUnavailable`.

redis-py is imported only here, and only when used: it is the optional `redis` extra.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import Any

from ._record import StoreUnavailable

DEFAULT_TIMEOUT = 1.0  # seconds to connect, and to wait for one reply


def redis_client(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """A `redis.asyncio.Redis` for `redis://`, `rediss://` or `unix://` URLs: short connect and
    read timeouts, one immediate retry (a pooled connection may be stale after a Redis restart)."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("RedisStore needs redis-py: pip install 'mimo_asgi[redis]'") from exc
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          retry=Retry(NoBackoff(), 1), decode_responses=False)


@cache
def _errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError
    return (RedisError, OSError, TimeoutError)


@contextlib.contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Re-raise Redis connection errors, timeouts and server errors as `StoreUnavailable`.

    The message names the error class and redis-py's text (host and port, never the URL's
    password, which redis-py does not put in its messages).
    """
    try:
        yield
    except _errors() as exc:
        raise StoreUnavailable(f"Redis is unavailable ({type(exc).__name__}: {str(exc)[:200]})") from exc


async def close_client(client: Any) -> None:
    close = getattr(client, "aclose", None) or client.close
    await close()
