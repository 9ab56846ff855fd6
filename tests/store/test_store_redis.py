"""RedisStore against a real redis-server: round trip, TTL, size cap, prefixes, Redis down."""

from __future__ import annotations

import logging
import time

import anyio
import pytest
from store_records import turn

from mimo_asgi.store import RedisStore, ResponseStore, StoreUnavailable, open_store, redis_client

pytestmark = pytest.mark.anyio


async def _eventually_missing(store, response_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await store.get(response_id) is None:
            return True
        await anyio.sleep(0.02)
    return False


async def test_put_get_delete_round_trip(redis_url, redis_prefix):
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        assert isinstance(store, ResponseStore)
        record = turn("resp_1", "hi", "hello", account="acct-7")
        assert await store.put(record, 60) is True
        assert await store.get("resp_1") == record
        assert await store.get("resp_missing") is None
        assert await store.delete("resp_1") is True
        assert await store.get("resp_1") is None
        assert await store.delete("resp_1") is False
    finally:
        await store.aclose()


async def test_keys_carry_the_prefix_and_a_ttl(redis_url, redis_prefix):
    client = redis_client(redis_url)
    store = RedisStore(client, prefix=redis_prefix)
    try:
        await store.put(turn("resp_k", "hi", "hello"), 120)
        assert await client.exists(f"{redis_prefix}resp:resp_k") == 1
        assert 0 < await client.pttl(f"{redis_prefix}resp:resp_k") <= 120_000
        other = RedisStore(client, prefix=redis_prefix + "other:")
        assert await other.get("resp_k") is None
        await store.aclose()  # a passed-in client is the caller's: still usable
        assert await client.ping()
    finally:
        await client.aclose()


async def test_short_ttl_expires(redis_url, redis_prefix):
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        await store.put(turn("resp_ttl", "hi", "hello"), 0.15)
        await store.put(turn("resp_long", "hi", "hello"), 60)
        assert await store.get("resp_ttl") is not None
        assert await _eventually_missing(store, "resp_ttl")
        assert await store.get("resp_long") is not None
    finally:
        await store.aclose()


async def test_touch_gives_a_fresh_ttl(redis_url, redis_prefix):
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        await store.put(turn("resp_t", "hi", "hello"), 0.3)
        await store.touch(["resp_t", "resp_absent"], 60)
        assert await store.client.pttl(f"{redis_prefix}resp:resp_t") > 30_000
        assert await store.client.exists(f"{redis_prefix}resp:resp_absent") == 0
    finally:
        await store.aclose()


async def test_oversize_record_is_not_stored(redis_url, redis_prefix, caplog):
    store = RedisStore(redis_url, prefix=redis_prefix, max_bytes_per_record=4096)
    try:
        with caplog.at_level(logging.WARNING, logger="mimo_asgi.store"):
            assert await store.put(turn("resp_big", "x" * 8192, "a"), 60) is False
        assert await store.get("resp_big") is None
        assert "resp_big" in caplog.text and "4096" in caplog.text
        assert await store.put(turn("resp_small", "x" * 100, "a"), 60) is True
    finally:
        await store.aclose()


async def test_unreadable_value_reads_as_missing(redis_url, redis_prefix):
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        await store.client.set(f"{redis_prefix}resp:resp_junk", b"not json")
        assert await store.get("resp_junk") is None
    finally:
        await store.aclose()


async def test_nothing_listening_raises_store_unavailable(dead_redis_url):
    store = RedisStore(dead_redis_url, timeout=0.5)
    try:
        for call in (store.get("resp_1"), store.put(turn("resp_1", "a", "b"), 60), store.delete("resp_1"),
                     store.touch(["resp_1"], 60)):
            with pytest.raises(StoreUnavailable) as info:
                await call
            assert "Redis is unavailable" in str(info.value)
    finally:
        await store.aclose()


async def test_redis_stopping_mid_use_raises_store_unavailable(own_redis):
    store = RedisStore(own_redis.url, timeout=0.5)
    try:
        await store.put(turn("resp_1", "a", "b"), 60)
        own_redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.get("resp_1")
    finally:
        await store.aclose()


async def test_error_never_shows_the_url_password(dead_redis_url):
    url = dead_redis_url.replace("redis://", "redis://user:hunter2-secret@")
    store = RedisStore(url, timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable) as info:
            await store.get("resp_1")
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(store)
    finally:
        await store.aclose()


def test_open_store_picks_the_backend(redis_url):
    from mimo_asgi.store import MemoryStore

    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory", max_items=5), MemoryStore)
    assert isinstance(open_store(redis_url, prefix="x:"), RedisStore)
    with pytest.raises(ValueError) as info:
        open_store("postgres://user:secret@host/db")
    assert "secret" not in str(info.value)


async def test_items_are_found_by_id_with_their_records_ttl(redis_url, redis_prefix):
    client = redis_client(redis_url)
    store = RedisStore(client, prefix=redis_prefix)
    try:
        await store.put(turn("resp_i", "hi", "hello"), 120)
        assert (await store.item("msg_out_resp_i"))["content"][0]["text"] == "hello"
        assert 0 < await client.pttl(f"{redis_prefix}item:msg_out_resp_i") <= 120_000
        assert await store.item("msg_nope") is None
        await store.delete("resp_i")
        assert await store.item("msg_out_resp_i") is None  # its record is gone
    finally:
        await client.aclose()
