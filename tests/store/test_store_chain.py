"""previous_response_id chains: normalising input, rebuilding history, and the 404/503 paths."""

from __future__ import annotations

import pytest
from store_records import turn

from mimo_asgi._seal import ReasoningSealer
from mimo_asgi.store import (
    MemoryStore,
    RedisStore,
    StoredResponse,
    chain,
    normalise_input,
    rebuild_input,
    resume,
)
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_request import chat_request_from_responses

pytestmark = pytest.mark.anyio


def _texts(items):
    out = []
    for item in items:
        content = item.get("content")
        if isinstance(content, list):
            out.append((item["role"], content[0]["text"]))
        else:
            out.append((item["type"], item.get("output") or item.get("name")))
    return out


def test_normalise_string_and_list_forms():
    items = normalise_input("hello")
    assert items == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}],
                      "id": items[0]["id"]}]
    assert items[0]["id"].startswith("msg_")
    assert normalise_input("") == []

    given = [{"role": "assistant", "content": "earlier answer"},
             {"type": "function_call_output", "call_id": "call_1", "output": "42"},
             {"type": "message", "id": "msg_keep", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
             {"type": "local_shell_call_output", "output": "no call id"}]
    out = normalise_input(given)
    assert out[0]["type"] == "message" and out[0]["id"].startswith("msg_")
    assert out[0]["content"] == [{"type": "output_text", "text": "earlier answer", "annotations": []}]
    assert out[1]["id"].startswith("fco_")
    assert out[2]["id"] == "msg_keep"
    assert "id" not in out[3]  # its id would stand in for the missing call id
    assert "id" not in given[0] and given[0]["content"] == "earlier answer"  # the request is not mutated
    assert normalise_input(out) == out  # idempotent

    with pytest.raises(OpenAIError) as info:
        normalise_input(42)
    assert info.value.status == 400 and info.value.param == "input"


async def test_three_turns_rebuilt_by_a_second_worker(redis_url, redis_prefix):
    worker_a = RedisStore(redis_url, prefix=redis_prefix)
    worker_b = RedisStore(redis_url, prefix=redis_prefix)
    try:
        await worker_a.put(turn("resp_1", "first question", "first answer"), 60)
        await worker_b.put(turn("resp_2", "second question", "second answer", previous="resp_1"), 60)
        await worker_a.put(turn("resp_3", "third question", "third answer", previous="resp_2"), 60)

        body = {"model": "gpt-5.5", "previous_response_id": "resp_3", "input": "fourth question"}
        items = await rebuild_input(worker_b, body)
        assert _texts(items) == [
            ("user", "first question"), ("assistant", "first answer"),
            ("user", "second question"), ("assistant", "second answer"),
            ("user", "third question"), ("assistant", "third answer"),
            ("user", "fourth question"),
        ]
        assert [t.id for t in await chain(worker_a, "resp_3")] == ["resp_1", "resp_2", "resp_3"]
    finally:
        await worker_a.aclose()
        await worker_b.aclose()


async def test_without_previous_response_id_only_the_request_input():
    items = await rebuild_input(MemoryStore(), {"input": [{"role": "user", "content": "solo"}]})
    assert _texts(items) == [("user", "solo")]


async def test_tool_call_turn_continues_with_its_output():
    store = MemoryStore()
    response = {"id": "resp_tc", "previous_response_id": None, "output": [
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "add", "arguments": "{\"a\":1}",
         "status": "completed"}]}
    await store.put(StoredResponse.from_response(response, normalise_input("add one")), 60)
    items = await rebuild_input(store, {"previous_response_id": "resp_tc", "input": [
        {"type": "function_call_output", "call_id": "call_1", "output": "2"}]})
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]


async def test_sealed_reasoning_reaches_mimo_on_the_next_turn():
    sealer = ReasoningSealer("test-seal-key")
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": sealer.seal("I thought hard")}
    store = MemoryStore()
    first = turn("resp_r", "question", "answer", reasoning=reasoning)
    tool_turn = StoredResponse.from_response(
        {"id": "resp_r2", "previous_response_id": "resp_r", "output": [
            reasoning | {"id": "rs_2", "encrypted_content": sealer.seal("call the tool")},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": "{}"}]},
        normalise_input("look it up"))
    await store.put(first, 60)
    await store.put(tool_turn, 60)
    body = {"model": "gpt-5.5", "previous_response_id": "resp_r2",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "found"}],
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]}
    stateless = {**body, "input": await rebuild_input(store, body), "previous_response_id": None}
    translation = chat_request_from_responses(stateless, upstream_model="mimo-v2.5-pro", sealer=sealer)
    messages = translation.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "tool"]
    assert messages[3]["reasoning_content"] == "call the tool"
    assert messages[3]["tool_calls"][0]["id"] == "call_1"
    assert messages[4]["content"] == "found"


async def test_unknown_id_is_404():
    with pytest.raises(OpenAIError) as info:
        await rebuild_input(MemoryStore(), {"previous_response_id": "resp_nope", "input": "hi"})
    err = info.value
    assert (err.status, err.param, err.code) == (404, "previous_response_id", "previous_response_not_found")
    assert "resp_nope" in err.message


async def test_expired_ancestor_is_404_naming_it(clock):
    store = MemoryStore(clock=clock)
    await store.put(turn("resp_old", "a", "b"), 5)
    await store.put(turn("resp_new", "c", "d", previous="resp_old"), 60)
    clock.advance(10)
    with pytest.raises(OpenAIError) as info:
        await rebuild_input(store, {"previous_response_id": "resp_new", "input": "e"})
    assert info.value.status == 404 and "resp_old" in info.value.message and "resp_new" in info.value.message


async def test_refresh_ttl_keeps_the_whole_chain_alive(clock):
    store = MemoryStore(clock=clock)
    await store.put(turn("resp_1", "a", "b"), 10)
    await store.put(turn("resp_2", "c", "d", previous="resp_1"), 10)
    clock.advance(8)
    await rebuild_input(store, {"previous_response_id": "resp_2", "input": "e"}, refresh_ttl=10)
    clock.advance(8)  # 16 s after the first put: alive only because it was refreshed
    assert len(await rebuild_input(store, {"previous_response_id": "resp_2", "input": "e"})) == 5


async def test_depth_and_cycle_guards():
    store = MemoryStore()
    for i in range(5):
        await store.put(turn(f"resp_{i}", "q", "a", previous=f"resp_{i - 1}" if i else None), 60)
    assert len(await chain(store, "resp_4", max_depth=5)) == 5
    with pytest.raises(OpenAIError) as info:
        await chain(store, "resp_4", max_depth=4)
    assert (info.value.status, info.value.code) == (400, "previous_response_chain_too_long")

    await store.put(turn("resp_x", "q", "a", previous="resp_y"), 60)
    await store.put(turn("resp_y", "q", "a", previous="resp_x"), 60)
    with pytest.raises(OpenAIError) as info:
        await chain(store, "resp_x")
    assert (info.value.status, info.value.code) == (500, "previous_response_chain_invalid")


async def test_bad_previous_response_id_type_is_400():
    with pytest.raises(OpenAIError) as info:
        await rebuild_input(MemoryStore(), {"previous_response_id": 7, "input": "x"})
    assert info.value.status == 400 and info.value.param == "previous_response_id"


async def test_store_down_is_503(dead_redis_url):
    store = RedisStore(dead_redis_url, timeout=0.5)
    try:
        with pytest.raises(OpenAIError) as info:
            await rebuild_input(store, {"previous_response_id": "resp_1", "input": "hi"})
        err = info.value
        assert (err.status, err.code, err.type) == (503, "store_unavailable", "server_error")
        assert err.headers == {"retry-after": "1"}
        assert "127.0.0.1" not in err.message  # the client is not told where Redis lives
    finally:
        await store.aclose()


async def test_resume_gives_own_items_and_parent_for_affinity():
    store = MemoryStore()
    await store.put(turn("resp_1", "a", "b", account="acct-9"), 60)
    resumed = await resume(store, {"previous_response_id": "resp_1", "input": "next"})
    assert resumed.parent.id == "resp_1" and resumed.parent.account == "acct-9"
    assert resumed.input[-1] is resumed.own_items[0]  # the same ids in history and in the new record
    assert len(resumed.own_items) == 1 and resumed.own_items[0]["id"].startswith("msg_")
    fresh = await resume(store, {"input": "solo"})
    assert fresh.parent is None and fresh.input == fresh.own_items
