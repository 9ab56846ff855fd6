"""Stateful Responses through the middleware: chains, retrieval, deletion, two workers on one Redis."""

import json

import httpx
import openai
import pytest
from support import TEST_KEY, host_app

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.store import MemoryStore, RedisStore
from mimo_asgi.testing import Answer, ToolCall, serve_in_thread

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}


def gateway(fake_url, store, **kw):
    account = Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    return MimoMiddleware(host_app(), accounts=[account], api_key=None, seal_key="shared-secret", store=store, **kw)


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)


def test_chain_across_two_workers_sharing_redis(fake, fake_url, redis_url, redis_prefix):
    one = gateway(fake_url, RedisStore(redis_url, prefix=redis_prefix))
    two = gateway(fake_url, RedisStore(redis_url, prefix=redis_prefix))
    fake.queue(Answer(reasoning="Need to look it up.", tool_calls=[ToolCall("lookup", {"q": "tides"})]),
               Answer(text="High tide at noon."), Answer(text="You asked about tides."))
    with serve_in_thread(one) as url1, serve_in_thread(two) as url2:
        first = client(url1).responses.create(model="gpt-5.5", input="When is high tide?", tools=[TOOL])
        call = first.output[-1]
        assert call.type == "function_call"
        assert not any(getattr(i, "encrypted_content", None) for i in first.output)  # client did not ask
        second = client(url2).responses.create(
            model="gpt-5.5", previous_response_id=first.id, tools=[TOOL],
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}])
        assert second.output_text == "High tide at noon." and second.previous_response_id == first.id
        turn2 = fake.requests[-1].body
        assistant = next(m for m in turn2["messages"] if m["role"] == "assistant")
        assert assistant["reasoning_content"] == "Need to look it up."  # restored from the stored turn
        assert turn2["messages"][0] == {"role": "user", "content": "When is high tide?"}
        third = client(url1).responses.create(model="gpt-5.5", previous_response_id=second.id, input="What did I ask?")
        assert third.output_text == "You asked about tides."
        roles = [m["role"] for m in fake.requests[-1].body["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant", "user"]

        # retrieval and input items from the other worker
        fetched = client(url2).responses.retrieve(second.id)
        assert fetched.id == second.id and fetched.output_text == "High tide at noon."
        items = client(url2).responses.input_items.list(second.id)
        assert [i.type for i in items.data] == ["function_call_output"]
        # deletion, then the id is unknown: it passes to the host, which does not know it either
        assert httpx.delete(f"{url1}/v1/responses/{first.id}").json() == {"id": first.id, "object": "response",
                                                                         "deleted": True}
        assert httpx.get(f"{url2}/v1/responses/{first.id}").status_code in (404, 405)
        broken = httpx.post(url2 + "/v1/responses", json={"model": "gpt-5.5", "previous_response_id": second.id,
                                                           "input": "more"})
        assert broken.status_code == 404 and broken.json()["error"]["code"] == "previous_response_not_found"


def test_unknown_previous_response_is_404_and_store_false_is_not_stored(fake, fake_url):
    store = MemoryStore()
    with serve_in_thread(gateway(fake_url, store)) as url:
        response = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "x", "previous_response_id": "resp_nope"})
        assert response.status_code == 404 and response.json()["error"]["param"] == "previous_response_id"
        fake.queue(Answer(text="not kept"))
        unstored = client(url).responses.create(model="gpt-5.5", input="x", store=False)
        assert httpx.get(f"{url}/v1/responses/{unstored.id}").status_code in (404, 405)


def test_ttl_expiry(fake, fake_url):
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    with serve_in_thread(gateway(fake_url, store, store_ttl=60)) as url:
        fake.queue(Answer(text="short lived"))
        first = client(url).responses.create(model="gpt-5.5", input="x")
        assert httpx.get(f"{url}/v1/responses/{first.id}").status_code == 200
        now[0] += 61
        assert httpx.get(f"{url}/v1/responses/{first.id}").status_code in (404, 405)


def test_redis_down_is_503_for_requests_that_need_it_only(fake, fake_url, dead_redis_url):
    with serve_in_thread(gateway(fake_url, RedisStore(dead_redis_url))) as url:
        needs = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "x", "previous_response_id": "resp_1"})
        assert needs.status_code == 503 and needs.json()["error"]["code"] == "store_unavailable"
        assert "127.0.0.1" not in needs.text
        fake.queue(Answer(text="fine"), Answer(text="also fine"))
        # store: true still answers (storing is best effort), store: false never touches Redis, chat is unaffected
        assert client(url).responses.create(model="gpt-5.5", input="x").output_text == "fine"
        assert httpx.post(url + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": [
            {"role": "user", "content": "x"}]}).status_code == 200
        assert httpx.get(f"{url}/v1/responses/resp_abc").status_code == 503


@pytest.mark.parametrize("stream", [False, True])
def test_stored_copy_keeps_sealed_reasoning_and_include_returns_it(fake, fake_url, stream):
    store = MemoryStore()
    with serve_in_thread(gateway(fake_url, store)) as url:
        fake.queue(Answer(reasoning="private thoughts", text="ok"))
        body = {"model": "gpt-5.5", "input": "x", "stream": stream}
        response = httpx.post(url + "/v1/responses", json=body)
        rid = json.loads(response.text)["id"] if not stream else json.loads(
            [line for line in response.text.splitlines() if line.startswith("data: ")][0][6:])["response"]["id"]
        plain = httpx.get(f"{url}/v1/responses/{rid}").json()
        assert "encrypted_content" not in plain["output"][0]
        sealed = httpx.get(f"{url}/v1/responses/{rid}", params={"include[]": "reasoning.encrypted_content"}).json()
        blob = sealed["output"][0]["encrypted_content"]
        assert blob.startswith("mimo1:") and "private" not in blob
