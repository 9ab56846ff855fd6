"""Remote compaction over HTTP, as Codex 0.171's built-in provider does it: the trigger request
answered with exactly one sealed `compaction` item (streamed, or as JSON), the item expanded into
its summary on the next turn, the stored chain continued, and the older `/v1/responses/compact`."""

import json
from pathlib import Path

import httpx
import pytest
from support import TEST_KEY, wait_for

from mimo_asgi import Account
from mimo_asgi._sse import SSEDecoder
from mimo_asgi.testing import Answer, Usage
from mimo_asgi.translate._items import COMPACTED, COMPACTED_ELSEWHERE
from mimo_asgi.translate.compaction import SUMMARY_SYSTEM

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex-0.171"
SUMMARY = "## Goal\nPrint tok.\n## Decisions\nUse echo.\n## Files and commands\n`echo tok` printed tok.\n" \
          "## State\nDone.\n## Next steps\nSay what it printed."


def codex_trigger() -> dict:
    """Codex 0.171's compaction request over HTTP: the whole history, then the trigger."""
    return json.loads((CAPTURES / "http-compaction-request.json").read_text())["body"]


def events(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    decoder = SSEDecoder()
    return [json.loads(e.data) for e in decoder.feed(response.content) + decoder.close()]


@pytest.fixture
def usage_gateway(serve_gateway, fake_url):
    seen = []
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    url, mw = serve_gateway(accounts=[account], api_key=None, seal_key="test-seal-key", on_usage=seen.append)
    return url, seen


def test_the_trigger_is_answered_with_exactly_one_sealed_compaction_item(usage_gateway, fake):
    url, usage = usage_gateway
    fake.queue(Answer(text=SUMMARY, usage=Usage(prompt_tokens=900, completion_tokens=60)))
    body = codex_trigger()
    got = events(httpx.post(url + "/v1/responses", json=body, timeout=20))
    types = [e["type"] for e in got]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    items = [e["item"] for e in got if e["type"] == "response.output_item.done"]
    assert len(items) == 1 and items[0]["type"] == "compaction" and items[0]["id"].startswith("cmp_")
    blob = items[0]["encrypted_content"]
    assert isinstance(blob, str) and "tok" not in blob  # sealed, not readable
    final = got[-1]["response"]
    assert final["output"] == items and final["usage"]["input_tokens"] == 900

    sent = fake.requests[-1].body  # MiMo was asked for a summary: no tools, thinking off, bounded
    assert sent["model"] == "mimo-v2.5-pro" and "tools" not in sent
    assert sent["thinking"] == {"type": "disabled"} and sent["max_completion_tokens"] <= 8192
    assert sent["messages"][0] == {"role": "system", "content": SUMMARY_SYSTEM}
    assert "echo tok" in sent["messages"][1]["content"]  # the tool call of the history is in the transcript
    assert wait_for(lambda: usage)  # reported once the answer is complete
    assert usage[-1].route == "compaction" and usage[-1].usage["input_tokens"] == 900
    assert usage[-1].outcome == "completed"

    # Codex's next request: its kept messages, then the item exactly as returned.
    kept = [item for item in body["input"] if item.get("type") == "message"]
    fake.queue(Answer(text="It printed tok."))
    after = {**body, "input": [*kept, items[0]]}
    final = events(httpx.post(url + "/v1/responses", json=after, timeout=20))[-1]["response"]
    assert final["status"] == "completed" and final["output"][-1]["content"][0]["text"] == "It printed tok."
    messages = fake.requests[-1].body["messages"]
    assert messages[-1] == {"role": "system", "content": COMPACTED + SUMMARY}  # in its place: last


def test_a_non_stream_trigger_gets_one_item_as_json(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text=SUMMARY))
    answer = httpx.post(url + "/v1/responses", json={**codex_trigger(), "stream": False}, timeout=20)
    assert answer.status_code == 200
    output = answer.json()["output"]
    assert [item["type"] for item in output] == ["compaction"] and output[0]["encrypted_content"]


def test_an_empty_summary_fails_the_response_rather_than_answering_no_item(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text=""))
    got = events(httpx.post(url + "/v1/responses", json=codex_trigger(), timeout=20))
    assert got[-1]["type"] == "response.failed"
    assert not [e for e in got if e["type"] == "response.output_item.done"]


def test_a_blob_that_does_not_open_is_never_forwarded(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Going on."))
    foreign = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAAABopenai-blob"}
    body = {"model": "gpt-5.5", "stream": True, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the bug."}]}, foreign]}
    assert events(httpx.post(url + "/v1/responses", json=body, timeout=20))[-1]["type"] == "response.completed"
    messages = fake.requests[-1].body["messages"]
    assert messages[-1] == {"role": "system", "content": COMPACTED_ELSEWHERE}
    assert "gAAAAAB" not in json.dumps(messages)


def test_the_compaction_fails_over_before_its_item_like_any_request(serve_gateway, fake, fake_url):
    accounts = [Account(name, TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
                for name in ("a", "b")]
    url, mw = serve_gateway(accounts=accounts, api_key=None, seal_key="k")
    fake.queue(Answer(status=500), Answer(text=SUMMARY))
    got = events(httpx.post(url + "/v1/responses", json=codex_trigger(), timeout=20))
    assert got[-1]["type"] == "response.completed" and len(fake.requests) == 2
    assert [e["item"]["type"] for e in got if e["type"] == "response.output_item.done"] == ["compaction"]
    assert wait_for(lambda: mw.pool.in_flight() == 0)


def test_a_stored_compaction_continues_with_previous_response_id(gateway, fake):
    """store: true and previous_response_id: the compacted chain starts afresh from the kept user
    messages and the item, so the history shrinks and the trigger is never replayed."""
    url, _ = gateway
    first = {"model": "gpt-5.5", "store": True, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Run echo tok."}]}]}
    fake.queue(Answer(text="I will."))
    r1 = httpx.post(url + "/v1/responses", json=first, timeout=20).json()
    fake.queue(Answer(text=SUMMARY))
    r2 = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "store": True, "previous_response_id": r1["id"],
                                                 "input": [{"type": "compaction_trigger"}]}, timeout=20).json()
    assert [item["type"] for item in r2["output"]] == ["compaction"]
    assert "I will." in fake.requests[-1].body["messages"][1]["content"]  # the stored turn was summarised
    fake.queue(Answer(text="Done."))
    r3 = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "store": True, "previous_response_id": r2["id"],
                                                 "input": "And now?"}, timeout=20).json()
    assert r3["status"] == "completed"
    messages = fake.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "system", "user"]
    assert messages[0]["content"] == "Run echo tok." and messages[1]["content"] == COMPACTED + SUMMARY
    assert messages[2]["content"] == "And now?"


def test_the_older_compact_endpoint(gateway, fake):
    """`POST /v1/responses/compact` ({model, input, instructions} -> {output}), which Codex before
    remote compaction v2 called: the user messages kept, then the one item."""
    url, _ = gateway
    fake.queue(Answer(text=SUMMARY))
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Run echo tok."}]}
    said = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "tok"}]}
    answer = httpx.post(url + "/v1/responses/compact", json={"model": "gpt-5.5", "input": [user, said],
                                                             "instructions": "You are Codex."}, timeout=20)
    assert answer.status_code == 200, answer.text
    output = answer.json()["output"]
    assert output[0] == user and [item["type"] for item in output[1:]] == ["compaction"]
    assert "tok" in fake.requests[-1].body["messages"][1]["content"]


def test_the_older_compact_endpoint_passes_other_models_to_the_host(gateway, fake):
    url, _ = gateway
    answer = httpx.post(url + "/v1/responses/compact", json={"model": "claude-3", "input": "x"}, timeout=20)
    assert answer.status_code == 404 and not fake.requests  # the host has no such route
