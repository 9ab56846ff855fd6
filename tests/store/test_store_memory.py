"""MemoryStore: put/get/delete, TTL on an injected clock, LRU by count and bytes, size caps."""

from __future__ import annotations

import logging

import pytest
from store_records import turn

from mimo_asgi.store import MemoryStore, ResponseStore, StoredResponse

pytestmark = pytest.mark.anyio


async def test_put_get_delete_round_trip():
    store = MemoryStore()
    assert isinstance(store, ResponseStore)
    record = turn("resp_1", "hi", "hello")
    assert await store.put(record, 60) is True
    got = await store.get("resp_1")
    assert got == record
    assert await store.get("resp_missing") is None
    assert await store.delete("resp_1") is True
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False


async def test_stored_copy_is_isolated_from_callers():
    store = MemoryStore()
    record = turn("resp_1", "hi", "hello")
    await store.put(record, 60)
    record.response["output"].clear()
    got = await store.get("resp_1")
    assert got.response["output"][0]["content"][0]["text"] == "hello"
    got.input_items.clear()
    assert len((await store.get("resp_1")).input_items) == 1


async def test_ttl_expiry_on_the_injected_clock(clock):
    store = MemoryStore(default_ttl=30, clock=clock)
    await store.put(turn("resp_short", "a", "b"), 5)
    await store.put(turn("resp_default", "a", "b"))
    clock.advance(4.9)
    assert await store.get("resp_short") is not None
    clock.advance(0.2)
    assert await store.get("resp_short") is None
    assert await store.get("resp_default") is not None
    clock.advance(25)
    assert await store.get("resp_default") is None
    assert await store.delete("resp_default") is False  # expired reads as absent everywhere


async def test_touch_extends_live_records_only(clock):
    store = MemoryStore(clock=clock)
    await store.put(turn("resp_a", "a", "b"), 10)
    await store.put(turn("resp_b", "a", "b"), 1)
    clock.advance(2)
    await store.touch(["resp_a", "resp_b", "resp_none"], 60)
    clock.advance(30)
    assert await store.get("resp_a") is not None
    assert await store.get("resp_b") is None


async def test_lru_eviction_by_count_keeps_recently_read():
    store = MemoryStore(max_items=3)
    for i in range(3):
        await store.put(turn(f"resp_{i}", "q", "a"), 60)
    assert await store.get("resp_0") is not None  # now most recently used
    await store.put(turn("resp_3", "q", "a"), 60)
    assert len(store) == 3
    assert await store.get("resp_1") is None      # least recently used went first
    assert [await store.get(f"resp_{i}") is not None for i in (0, 2, 3)] == [True, True, True]


async def test_lru_eviction_by_total_bytes():
    size = len(turn("resp_0", "q" * 1000, "a").encode())
    store = MemoryStore(max_total_bytes=size * 2 + size // 2)
    for i in range(3):
        assert await store.put(turn(f"resp_{i}", "q" * 1000, "a"), 60)
    assert len(store) == 2
    assert await store.get("resp_0") is None
    assert await store.get("resp_2") is not None


async def test_replacing_a_record_keeps_one_copy():
    store = MemoryStore(max_items=2)
    await store.put(turn("resp_x", "q", "first"), 60)
    await store.put(turn("resp_x", "q", "second"), 60)
    await store.put(turn("resp_y", "q", "a"), 60)
    assert len(store) == 2
    assert (await store.get("resp_x")).response["output"][0]["content"][0]["text"] == "second"


async def test_oversize_record_is_not_stored_and_warns(caplog):
    store = MemoryStore(max_bytes_per_record=2048)
    with caplog.at_level(logging.WARNING, logger="mimo_asgi.store"):
        assert await store.put(turn("resp_big", "x" * 4096, "a"), 60) is False
    assert await store.get("resp_big") is None
    assert "resp_big" in caplog.text and "limit" in caplog.text
    assert "xxxx" not in caplog.text  # never the content


async def test_unencodable_record_is_not_stored(caplog):
    store = MemoryStore()
    record = StoredResponse(id="resp_bad", response={"id": "resp_bad", "n": 2**70}, input_items=[])
    with caplog.at_level(logging.WARNING, logger="mimo_asgi.store"):
        assert await store.put(record, 60) is False
    assert await store.get("resp_bad") is None
    assert "resp_bad" in caplog.text


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        MemoryStore(max_items=0)
    with pytest.raises(ValueError):
        MemoryStore(default_ttl=0)


async def test_items_are_found_by_id_while_their_record_lives(clock):
    store = MemoryStore(max_items=2, default_ttl=30, clock=clock)
    await store.put(turn("resp_1", "hi", "hello"), 30)
    assert (await store.item("msg_out_resp_1"))["content"][0]["text"] == "hello"
    assert await store.item("msg_nope") is None
    await store.put(turn("resp_2", "a", "b"), 30)
    await store.put(turn("resp_3", "c", "d"), 30)  # resp_1 leaves the LRU: so does its items' entry
    assert await store.item("msg_out_resp_1") is None and set(store._by_item.values()) == {"resp_2", "resp_3"}
    clock.advance(31)
    assert await store.item("msg_out_resp_3") is None  # expired with its record
