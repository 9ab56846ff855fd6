"""Scripted answers read raw: chat.completion bodies and chunk streams shaped like MiMo's."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import httpx
import pytest

from mimo_asgi.testing import Answer, FakeMimo, ToolCall, Usage

KEY = "sk-test-answers-0001"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}], **fields}


def post(fake: FakeMimo, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
            return await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"})

    return anyio.run(go)


def events(response: httpx.Response, prefix: str = "data: ") -> list[Any]:
    """The data of each SSE event: parsed JSON, or the literal `[DONE]`."""
    assert response.headers["content-type"] == "text/event-stream"
    blocks = response.text.split("\n\n")
    assert blocks[-1] == "", "every event ends with a blank line"
    out = []
    for block in blocks[:-1]:
        assert block.startswith(prefix) and "\n" not in block
        data = block[len(prefix) :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def stream(fake: FakeMimo, **fields: Any) -> list[Any]:
    return events(post(fake, chat(stream=True, **fields)))


def deltas(chunks: list[Any], field: str) -> str:
    return "".join(c["choices"][0]["delta"].get(field, "") for c in chunks if isinstance(c, dict) and c["choices"])


def scripted(*answers: Answer) -> FakeMimo:
    fake = FakeMimo()
    fake.queue(*answers)
    return fake


# --- non-stream ------------------------------------------------------------------------------


def test_default_completion_body() -> None:
    response = post(FakeMimo(), chat(model="mimo-v2.5"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert HEX32.match(body["id"]) and body["object"] == "chat.completion" and body["model"] == "mimo-v2.5"
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello from fake MiMo.",
        "reasoning_content": "Thinking briefly.",
        "tool_calls": None,
    }
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0


def test_thinking_off_means_null_reasoning() -> None:
    body = post(FakeMimo(), chat(thinking={"type": "disabled"})).json()
    assert body["choices"][0]["message"]["reasoning_content"] is None
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_non_stream_tool_calls() -> None:
    fake = scripted(Answer(tool_calls=[ToolCall("get_weather", {"city": "Paris"}), ToolCall("f", "{}", id="call_x")]))
    choice = post(fake, chat()).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    first, second = choice["message"]["tool_calls"]
    assert CALL_ID.match(first["id"])
    assert first["type"] == "function" and first["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert second["id"] == "call_x" and second["function"]["arguments"] == "{}"


def test_explicit_usage_and_finish_reason() -> None:
    fake = scripted(Answer(text="cut", finish_reason="length", usage=Usage(10, 5, cached_tokens=3, reasoning_tokens=2)))
    body = post(fake, chat()).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_web_search_annotations_non_stream() -> None:
    source = {"type": "url_citation", "url": "https://example.com", "title": "Ex", "summary": "s", "site_name": "ex"}
    body = post(scripted(Answer(annotations=[source])), chat(tools=[{"type": "web_search"}])).json()
    assert body["choices"][0]["message"]["annotations"] == [source]
    assert body["usage"]["web_search_usage"] == {"tool_usage": 1, "page_usage": 1}


# --- stream ----------------------------------------------------------------------------------


def test_default_stream_shape() -> None:
    chunks = stream(FakeMimo(), model="mimo-v2.5")
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in body}) == 1
    assert HEX32.match(body[0]["id"]) and body[0]["model"] == "mimo-v2.5"
    assert body[0]["object"] == "chat.completion.chunk"
    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    kinds = [next(iter(c["choices"][0]["delta"]), None) for c in body[1:]]
    assert kinds == sorted(kinds, key=["reasoning_content", "content", None].index), "reasoning, then text, then finish"
    assert deltas(body, "reasoning_content") == "Thinking briefly."
    assert deltas(body, "content") == "Hello from fake MiMo."
    assert body[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert all(c["choices"][0]["finish_reason"] is None for c in body[:-1])
    assert all("usage" not in c for c in body)


def test_usage_chunk_when_asked() -> None:
    chunks = stream(FakeMimo(), stream_options={"include_usage": True})
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["id"] == chunks[0]["id"]
    usage = usage_chunk["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"}
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"


def test_no_reasoning_deltas_when_thinking_is_off() -> None:
    chunks = stream(FakeMimo(), thinking={"type": "disabled"})
    assert deltas(chunks, "reasoning_content") == ""
    assert deltas(chunks, "content") == "Hello from fake MiMo."


def test_chunk_size_sets_delta_length() -> None:
    chunks = stream(scripted(Answer(text="abcdefg", reasoning="xyz", chunk_size=3)))
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:-1] if "content" in c["choices"][0]["delta"]] == [
        "",
        "abc",
        "def",
        "g",
    ]
    assert deltas(chunks, "reasoning_content") == "xyz"


def test_tool_calls_stream_as_fragments() -> None:
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("lookup", '{"q": "x"}', id="call_given")]
    chunks = stream(scripted(Answer(text="Checking.", tool_calls=calls, chunk_size=5)))
    fragments = [c["choices"][0]["delta"]["tool_calls"] for c in chunks[:-1] if "tool_calls" in c["choices"][0]["delta"]]
    assert all(len(f) == 1 for f in fragments)
    fragments = [f[0] for f in fragments]
    heads = [f for f in fragments if "id" in f]
    assert [h["index"] for h in heads] == [0, 1]
    assert CALL_ID.match(heads[0]["id"]) and heads[1]["id"] == "call_given"
    assert all(h["type"] == "function" and h["function"]["arguments"] == "" for h in heads)
    assert [h["function"]["name"] for h in heads] == ["get_weather", "lookup"]
    tails = [f for f in fragments if "id" not in f]
    assert all(set(t) == {"index", "function"} and set(t["function"]) == {"arguments"} for t in tails)
    assert all(len(t["function"]["arguments"]) <= 5 for t in tails)
    joined = {i: "".join(t["function"]["arguments"] for t in tails if t["index"] == i) for i in (0, 1)}
    assert joined == {0: '{"city":"Paris"}', 1: '{"q": "x"}'}
    assert deltas(chunks, "content") == "Checking."
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_whole_tool_calls_in_one_delta() -> None:
    chunks = stream(scripted(Answer(tool_calls=[ToolCall("f", {"a": 1}, index=3)], whole_tool_calls=True)))
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1] if "tool_calls" in c["choices"][0]["delta"]]
    assert len(fragments) == 1
    assert fragments[0]["index"] == 3 and fragments[0]["function"] == {"name": "f", "arguments": '{"a":1}'}


def test_annotations_ride_the_first_chunk() -> None:
    source = {"type": "url_citation", "url": "https://example.com", "title": "Ex"}
    chunks = stream(scripted(Answer(annotations=[source])), tools=[{"type": "web_search"}])
    assert chunks[0]["choices"][0]["delta"]["annotations"] == [source]
    assert all("annotations" not in c["choices"][0]["delta"] for c in chunks[1:-2])


def test_data_prefix_without_space() -> None:
    fake = FakeMimo(data_prefix="data:")
    response = post(fake, chat(stream=True))
    assert response.text.startswith('data:{"id"')
    assert events(response, prefix="data:")[-1] == "[DONE]"


def test_done_can_be_left_out() -> None:
    chunks = stream(scripted(Answer(done=False)))
    assert chunks[-1] != "[DONE]" and chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_only_reasoning_no_content() -> None:
    chunks = stream(scripted(Answer(text="", reasoning="the answer, misplaced")))
    assert deltas(chunks, "content") == "" and deltas(chunks, "reasoning_content") == "the answer, misplaced"


def test_each_event_is_its_own_body_message() -> None:
    async def go() -> list[dict[str, Any]]:
        body = json.dumps(chat(stream=True, stream_options={"include_usage": True})).encode()
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []
        done = anyio.Event()

        async def receive() -> dict[str, Any]:
            if incoming:
                return incoming.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [(b"api-key", KEY.encode())]}
        await FakeMimo()(scope, receive, send)
        return sent

    sent = anyio.run(go)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m["body"] for m in sent[1:]]
    assert bodies[-1] == b"" and not sent[-1]["more_body"]
    assert all(b.startswith(b"data: ") and b.endswith(b"\n\n") and b.count(b"\n\n") == 1 for b in bodies[:-1])
    assert bodies[-2] == b"data: [DONE]\n\n"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
def test_rate_limited_answer(streaming: bool) -> None:
    response = post(scripted(Answer.rate_limited(headers={"Retry-After": "2"})), chat(stream=streaming))
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": "429", "message": "Too many requests", "type": "limitation"}}


def test_token_plan_402_is_flat() -> None:
    response = post(scripted(Answer.insufficient_funds()), chat())
    assert response.status_code == 402
    assert response.json() == {"type": "server_error", "message": "Upstream request failed: Insufficient account funds"}


@pytest.mark.parametrize("status", [500, 503, 400, 403, 421])
def test_status_answers_use_mimo_shape(status: int) -> None:
    response = post(scripted(Answer.error_status(status)), chat())
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == str(status) and set(error) == {"code", "message", "param", "type"}


def test_status_answer_to_a_stream_is_sse_framed() -> None:
    response = post(scripted(Answer.error_status(500, "boom")), chat(stream=True))
    assert response.status_code == 500 and response.headers["content-type"] == "text/event-stream"
    assert response.content.startswith(b"data:{") and json.loads(response.content[5:])["error"]["message"] == "boom"


def test_custom_error_body() -> None:
    response = post(scripted(Answer.error_status(400, body={"error": {"message": "context too long"}})), chat())
    assert response.json() == {"error": {"message": "context too long"}}


def test_in_band_error_after_some_chunks() -> None:
    chunks = stream(scripted(Answer.in_band(after=3, message="overloaded")))
    assert len(chunks) == 5 and chunks[-1] == "[DONE]"
    assert all("choices" in c for c in chunks[:3])
    assert chunks[3] == {"error": {"code": "500", "message": "overloaded", "param": "", "type": "Internal Server Error"}}


def test_in_band_error_first_and_without_done() -> None:
    chunks = stream(scripted(Answer.in_band(done=False)))
    assert len(chunks) == 1 and "error" in chunks[0]


def test_in_band_error_to_a_non_stream_request_is_the_body() -> None:
    response = post(scripted(Answer.in_band(message="x")), chat())
    assert response.status_code == 200 and response.json()["error"]["message"] == "x"


# --- scripting -------------------------------------------------------------------------------


def test_queue_then_responder_then_default() -> None:
    fake = scripted(Answer("one"), Answer("two"))
    texts = [post(fake, chat()).json()["choices"][0]["message"]["content"] for _ in range(2)]
    fake.respond_with(lambda body: Answer(f"echo {body['messages'][-1]['content']}"))
    texts.append(post(fake, chat()).json()["choices"][0]["message"]["content"])
    fake.reset()
    texts.append(post(fake, chat()).json()["choices"][0]["message"]["content"])
    assert texts == ["one", "two", "echo hi", "Hello from fake MiMo."]


def test_async_responder() -> None:
    async def respond(body: dict[str, Any]) -> Answer:
        await anyio.sleep(0)
        return Answer(body["model"])

    fake = FakeMimo()
    fake.respond_with(respond)
    assert post(fake, chat(model="mimo-v2.5")).json()["choices"][0]["message"]["content"] == "mimo-v2.5"


def test_rejected_requests_do_not_consume_the_queue() -> None:
    fake = scripted(Answer("kept"))
    assert post(fake, chat(model="nope")).status_code == 400
    assert post(fake, chat()).json()["choices"][0]["message"]["content"] == "kept"


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Answer(chunk_size=0)
